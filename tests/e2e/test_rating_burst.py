"""Stars clicked in a burst in real Chromium are all stored (issue 12 item 3: clicking stars on eight captions
≤ 50 ms apart lost 13 of 112 ratings while the page showed them all).

Still open in the real browser: 48 clicks on 8 captions 30 ms apart end with the page showing the last
click on every caption while 2 of the 8 stored ratings are an earlier click (before the callback fix: 4 of
8). The mechanism AppTest reproduces (tests/pages/test_rating_burst.py) is fixed; what remains differs (the
stored value is an older click, not a missing one) and is not yet explained. It is timing-dependent: on a quiet
machine the burst sometimes stores every click (seen once after the one-click-save change of issue 13), so the
expected-failure marker is not strict (a strict one would fail the suite whenever the race is won). Issue 12
stays open for it; the reports (XFAIL / XPASS) say which way each run went."""

from __future__ import annotations

import pytest

from db import make_engine, repo, transaction, upgrade
from tests.e2e.test_browser import go_to, open_create_page, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CAPTIONS = 8
ROUNDS = 6


@pytest.fixture(scope="module")
def eight_captions(app_server):
    from igcap.images import load_photo, resized_jpeg, thumbnail_jpeg
    from tests import builders

    _, db_url = app_server
    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(engine) as session:
        photo = load_photo(builders.photo_bytes(), "burst.jpg")
        row = repo.save_photo(session=session, sha256=photo.sha256, name=photo.name, width=photo.width,
                              height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                              thumbnail_jpeg=thumbnail_jpeg(photo.image))
        ids = [repo.add_caption(session=session, photo=row, model_key="manual", text=f"Caption {i}").id
               for i in range(CAPTIONS)]
    engine.dispose()
    return ids[::-1]  # the gallery shows the newest first


@pytest.mark.xfail(strict=False, reason="issue 12 item 3 (open): in a real browser some burst ratings can be stored "
                   "as an earlier click; timing-dependent")
def test_stars_clicked_in_a_burst_are_all_stored(app_server, browser_page, eight_captions):
    url, db_url = app_server
    page = browser_page
    open_create_page(page, url)
    page.get_by_role("textbox", name="Your name (for ratings)").fill("Burst")
    page.keyboard.press("Enter")
    settle(page)
    go_to(page, "Gallery")
    widgets = page.locator('[data-testid="stFeedback"]')
    widgets.nth(CAPTIONS - 1).wait_for()
    last = {}
    for round_ in range(ROUNDS):
        for i in range(CAPTIONS):
            stars = 1 + (i + round_ * 3) % 5
            widgets.nth(i).get_by_role("radio", name=f"{stars} out of 5 stars").click(no_wait_after=True)
            last[i] = stars
            page.wait_for_timeout(30)
    settle(page)
    page.wait_for_timeout(2000)
    settle(page)
    shown = {}
    for i in range(CAPTIONS):
        checked = widgets.nth(i).locator('[role="radio"][aria-checked="true"]')
        shown[i] = int(checked.get_attribute("aria-label").split()[0]) if checked.count() else None
    with transaction(make_engine(db_url), write=False) as session:
        stored = {i: next((r.stars for r in repo.ratings_for_caption(session=session, caption_id=cid)
                           if r.rater == "Burst"), None) for i, cid in enumerate(eight_captions)}
    print(f"\nclicks: {ROUNDS * CAPTIONS}; shown {shown}; stored {stored}")
    assert shown == last
    assert stored == shown
