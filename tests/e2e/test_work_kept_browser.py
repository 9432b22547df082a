"""Work on the Create page and in the Gallery survives what the browser does to it, in real headless Chromium.

Clicking a sidebar link while a caption box has focus: Streamlit (1.67) runs the page that was open again
and the browser draws it afresh, every widget from its default (the uploader empty). The boxes must show
the text (not an empty box), and the photo, its cards and the edits must never be lost for good (issue:
the next click dropped them all and the draft was rewritten empty)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests import builders
from tests.e2e.conftest import serve_app
from tests.e2e.test_browser import open_create_page, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CAPTIONS = 'textarea[aria-label="Caption"]'


def _upload_and_generate(page, tmp_path, name: str = "red.jpg") -> None:
    photo = tmp_path / name
    photo.write_bytes(builders.photo_bytes(colour="red"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.locator('[data-testid="stFileChipName"]', has_text=name).wait_for()
    page.locator('[data-testid="stFileChipIconSpinner"]').wait_for(state="detached")
    settle(page)
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Done:").wait_for(timeout=120_000)
    settle(page)
    page.locator(CAPTIONS).nth(3).wait_for(timeout=30_000)


def _type_then_click_sidebar(page, box, typed: str, link: str) -> None:
    """Type into ``box`` and, while it has focus, click a sidebar link; wait until the page is quiet."""
    box.click()
    box.press("Control+End")
    page.keyboard.type(typed, delay=5)
    page.locator('[data-testid="stSidebarNavLink"]', has_text=link).click()
    for _ in range(2):
        page.wait_for_timeout(800)
        settle(page)


def _lost_click(page, box, typed: str, link: str, here: str, read) -> object:
    """Type into ``box`` and click ``link`` until Streamlit runs the page ``here`` again instead (it did 4 times
    in 4 for the reviewer, and about 10 in 12 here); returns ``read()`` from before the last try. When the
    click does reach the other page the typed text may never leave the browser (Streamlit's own race, seen
    2 times in 24), so that try does not count: the test goes back and types again."""
    for _ in range(5):
        before = read()
        _type_then_click_sidebar(page, box, typed, link)
        if not page.get_by_role("heading", name=link).count():
            return before
        page.locator('[data-testid="stSidebarNavLink"]', has_text=here).click()
        settle(page)
        page.get_by_role("heading", name=here).wait_for()
        settle(page)
    pytest.skip(f"the click on {link} reached its page five times: nothing to test")


def _shown_texts(page) -> list[str]:
    return [box.input_value() for box in page.locator(CAPTIONS).all()]


def _draft(work) -> dict:
    [path] = (work / "data" / "drafts").glob("*/draft.json")
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_click_on_the_sidebar_while_typing_loses_no_work(hub_cache, browser_page, tmp_path):
    page = browser_page
    with serve_app(tmp_path, hub_cache) as (url, _):
        open_create_page(page, url)
        _upload_and_generate(page, tmp_path)
        before = _lost_click(page, page.locator(CAPTIONS).first, " my edit", "Gallery", "Create captions",
                             lambda: _shown_texts(page))
        page.locator(CAPTIONS).nth(3).wait_for()
        # Every box shows its text, the edit included (they were drawn empty while the counters counted it).
        assert _shown_texts(page) == [before[0] + " my edit", *before[1:]]
        page.screenshot(path=str(tmp_path / "after-sidebar-click.png"), full_page=True)

        second = page.locator(CAPTIONS).nth(1)  # keep working: edit another card, click elsewhere
        second.click()
        second.press("Control+End")
        page.keyboard.type(" second edit", delay=5)
        page.get_by_role("heading", name="Create captions").click()
        settle(page)
        page.wait_for_timeout(800)
        settle(page)
        page.screenshot(path=str(tmp_path / "after-second-edit.png"), full_page=True)
        assert not page.get_by_text("Something went wrong").count()
        put_back = page.get_by_role("button", name="Put back")
        if put_back.count():  # the browser's empty uploader took the photo away: one click brings it back
            expect(page.get_by_text("red.jpg").first).to_be_visible()
            put_back.click()
            settle(page)
        page.locator(CAPTIONS).nth(3).wait_for()
        edited = [before[0] + " my edit", before[1] + " second edit", *before[2:]]
        assert _shown_texts(page) == edited
        assert page.locator('[data-testid="stImage"]').count() == 1

        draft = _draft(tmp_path)
        assert len(draft["photos"]) == 1 and len(next(iter(draft["cards"].values()))) == 4
        page.reload()  # and the draft brings it all back
        page.get_by_role("heading", name="Create captions").wait_for(timeout=60_000)
        page.locator(CAPTIONS).nth(3).wait_for(timeout=60_000)
        settle(page)
        assert _shown_texts(page) == edited

        # Photos restored from a draft: the same click once more ended in "Something went wrong (TypeError)".
        edited = _lost_click(page, page.locator(CAPTIONS).nth(2), " third", "Gallery", "Create captions",
                             lambda: _shown_texts(page))
        page.locator(CAPTIONS).nth(3).wait_for()
        assert _shown_texts(page) == [edited[0], edited[1], edited[2] + " third", edited[3]]
        page.locator(CAPTIONS).nth(3).click()
        page.locator(CAPTIONS).nth(3).press("Control+End")
        page.keyboard.type(" fourth", delay=5)
        page.get_by_role("heading", name="Create captions").click()
        settle(page)
        page.wait_for_timeout(800)
        settle(page)
        page.screenshot(path=str(tmp_path / "restored-then-sidebar-click.png"), full_page=True)
        assert not page.get_by_text("Something went wrong").count()
        assert _shown_texts(page) == [edited[0], edited[1], edited[2] + " third", edited[3] + " fourth"]


def test_a_click_on_the_sidebar_while_editing_in_the_gallery_loses_no_text(hub_cache, browser_page, tmp_path):
    from db import make_engine, repo, transaction, upgrade
    from igcap.images import load_photo
    from igcap.study import store_photo

    page = browser_page
    with serve_app(tmp_path, hub_cache) as (url, db_url):
        engine = make_engine(db_url)
        upgrade(engine)
        with transaction(engine) as session:
            row = store_photo(session=session, photo=load_photo(builders.photo_bytes(), "beach.jpg"))
            repo.add_caption(session=session, photo=row, model_key="manual", text="Sunset #sea")
        engine.dispose()
        open_create_page(page, url)
        page.locator('[data-testid="stSidebarNavLink"]', has_text="Gallery").click()
        settle(page)
        page.get_by_text("Edit caption").click()
        box = page.get_by_label("Caption text", exact=True)

        def opened_box() -> str:
            if not box.is_visible():
                page.get_by_text("Edit caption").click()
            return box.input_value()

        before = _lost_click(page, box, " and sky", "Evaluation", "Gallery", opened_box)
        page.screenshot(path=str(tmp_path / "gallery-after-sidebar-click.png"), full_page=True)
        stars = page.locator('[data-testid="stSelectbox"]').filter(has_text="Minimum stars")
        expect(stars.get_by_role("combobox")).to_have_value("Any")  # not "Choose an option"
        assert opened_box() == before + " and sky"  # not an empty box


def _four_photos_generating(page, tmp_path) -> None:
    """Upload four photos, press Generate and wait for the first model's cards (one per photo); skip the test
    when the whole generation is over by then."""
    files = []
    for colour in ("red", "blue", "green", "yellow"):
        files.append(tmp_path / f"{colour}.jpg")
        files[-1].write_bytes(builders.photo_bytes(colour=colour))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(f) for f in files])
    for f in files:
        page.locator('[data-testid="stFileChipName"]', has_text=f.name).wait_for()
    page.locator('[data-testid="stFileChipIconSpinner"]').first.wait_for(state="detached")
    settle(page)
    page.get_by_role("button", name="Generate").click()
    page.locator(CAPTIONS).nth(3).wait_for(timeout=120_000)
    if page.get_by_text("Done:").count():
        pytest.skip("the generation ended before the page changed: nothing to test")


def test_a_reload_during_generate_keeps_the_captions_already_shown(hub_cache, browser_page, tmp_path):
    """Four photos, Generate, a reload once the first model's cards show: they came back as nothing (the
    draft was written only at the end of a run that finished), with no word."""
    page = browser_page
    with serve_app(tmp_path, hub_cache) as (url, _):
        open_create_page(page, url)
        _four_photos_generating(page, tmp_path)
        shown = page.locator(CAPTIONS).count()
        texts = _shown_texts(page)
        page.reload()
        page.get_by_role("heading", name="Create captions").wait_for(timeout=60_000)
        page.locator(CAPTIONS).nth(shown - 1).wait_for(timeout=60_000)
        settle(page)
        assert page.locator('[data-testid="stImage"]').count() == 4
        assert set(texts) <= set(_shown_texts(page))


def test_removing_a_photo_during_generate_says_the_generation_stopped(hub_cache, browser_page, tmp_path):
    """The stopped run's note could never appear (it read st.session_state in the stopped run, which raised
    again): the generation ended without a word."""
    page = browser_page
    with serve_app(tmp_path, hub_cache) as (url, _):
        open_create_page(page, url)
        _four_photos_generating(page, tmp_path)
        page.get_by_role("button", name="Remove yellow.jpg").click()
        page.get_by_text("Generation stopped when the page changed").wait_for(timeout=60_000)
        settle(page)
        page.screenshot(path=str(tmp_path / "stopped-note.png"), full_page=True)
