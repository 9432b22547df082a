"""The Gallery's edit box in real headless Chromium: a saved hashtag set added to the text being edited,
then saved."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from db import hashtag_sets, make_engine, repo, transaction, upgrade
from tests import builders
from tests.e2e.test_browser import go_to, open_create_page, settle, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_hashtag_set_is_added_to_a_gallery_edit_and_saved(app_server, browser_page, screenshots):
    from igcap.images import load_photo
    from igcap.study import store_photo

    url, db_url = app_server
    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(engine) as session:
        row = store_photo(session=session, photo=load_photo(builders.photo_bytes(), "beach.jpg"))
        caption = repo.add_caption(session=session, photo=row, model_key="manual", text="Sunset #sea")
        hashtag_sets.save_set(session=session, name="travel", tags=["#travel", "#wanderlust"])
    page = browser_page
    open_create_page(page, url)
    go_to(page, "Gallery")
    page.get_by_text("Edit caption").click()
    box = page.get_by_label("Caption text", exact=True)
    box.fill("Sunset over the bay #sea")  # typed, not yet saved: the set is added to this text
    # the app takes typed text when the box loses focus; wait for that run to end before the set's click,
    # so the click never races the text's commit (it did, twice in full runs on two busy cores)
    box.blur()
    settle(page)
    expect(box).to_have_value("Sunset over the bay #sea")
    choose_set(page, page.locator('[data-testid="stSelectbox"]').filter(has_text="Add a hashtag set"))
    settle(page)
    expect(box).to_have_value("Sunset over the bay #sea #travel #wanderlust")
    page.get_by_text("3 / 5 hashtags").wait_for()
    shot(page, screenshots, "16-gallery-edit-hashtag-set.png")
    page.get_by_role("button", name="Save changes").click()
    settle(page)
    with transaction(engine, write=False) as session:
        saved = repo.get_caption(session=session, caption_id=caption.id)
        assert saved.text == "Sunset over the bay #sea #travel #wanderlust"
    engine.dispose()


def test_a_hashtag_set_is_added_to_a_generated_caption_on_the_create_page(app_server, browser_page, tmp_path):
    url, db_url = app_server
    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(engine) as session:
        hashtag_sets.save_set(session=session, name="travel", tags=["#travel", "#wanderlust"])
    engine.dispose()
    page = browser_page
    open_create_page(page, url)
    photo = tmp_path / "beach.jpg"
    photo.write_bytes(builders.photo_bytes())
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.locator('[data-testid="stFileChipName"]', has_text="beach.jpg").wait_for()
    page.locator('[data-testid="stFileChipIconSpinner"]').wait_for(state="detached")
    settle(page)
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Done:").wait_for(timeout=120_000)
    settle(page)
    cards = page.get_by_label("Caption", exact=True)
    cards.nth(3).wait_for(timeout=30_000)
    cards.first.fill("Golden hour #sea")
    cards.first.blur()  # the text is taken when the box loses focus: let that run end before the popover opens
    settle(page)
    choosers = page.locator('[data-testid="stSelectbox"]').filter(has_text="Add a hashtag set")
    assert choosers.count() == 5  # the hand-written box's (drawn first on the page), then one per card
    choose_set(page, choosers.nth(1))
    settle(page)
    expect(cards.first).to_have_value("Golden hour #sea #travel #wanderlust")


def choose_set(page, chooser, option: str = "travel: #travel #wanderlust") -> None:
    """Pick a saved set in a caption's chooser. The list opens on the click, or (when that click only moved
    the focus while a run redrew the page) on the arrow key."""
    box = chooser.get_by_role("combobox")
    box.click()
    if not page.get_by_role("option", name=option).is_visible():
        box.press("ArrowDown")
    page.get_by_role("option", name=option).click()
