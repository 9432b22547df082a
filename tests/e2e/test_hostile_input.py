"""Hostile input in real headless Chromium: file names that are Markdown stay plain text (issue 12 item 2)."""

from __future__ import annotations

import re

import pytest

from tests import builders
from tests.e2e.test_browser import go_to, open_create_page, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TRACKER = "![p](https:127.0.0.1:9).jpg"
PHISH = "[phish](https:evil.example) photo.jpg"
BOLD = "**b**.png"


def test_markdown_file_names_make_no_image_link_or_bold(app_server, browser_page):
    url, _ = app_server
    page = browser_page
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    open_create_page(page, url)
    files = [{"name": name, "mimeType": "image/jpeg", "buffer": builders.photo_bytes(colour=colour)}
             for name, colour in [(TRACKER, "red"), (PHISH, "blue"), (BOLD, "green")]]
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files)
    page.locator('[data-testid="stFileChipIconSpinner"]').first.wait_for(state="detached")
    settle(page)
    captions = page.locator('[data-testid="stImageCaption"]')
    captions.nth(2).wait_for()
    assert [c.strip() for c in captions.all_inner_texts()] == [f"{n} · 64×48" for n in (TRACKER, PHISH, BOLD)]
    assert captions.locator("img, a, strong, b, em").count() == 0
    assert page.locator('img[src*="127.0.0.1:9"], a[href*="evil.example"]').count() == 0
    assert not [u for u in fetched if "127.0.0.1:9" in u or "evil.example" in u]


LINKY = "log in again at https://evil.example/login or www.evil.example — or mail ana@evil.example"


def linky_study(db_url: str) -> set[str]:
    """A study whose photo name and two captions hold a web address, a www. name and an e-mail address; the
    captions' ids."""
    from db import make_engine, studies, transaction, upgrade
    from igcap.images import load_photo
    from igcap.study import store_photo

    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(engine) as s:
        photo = store_photo(session=s, photo=load_photo(builders.photo_bytes(colour="red"), "www.evil.example.jpg"))
        study = studies.create_study(session=s, name="Links", models=["vit-gpt2-all", "nlpconnect-all"],
                                     settings={"strategy": "greedy"}, photo_ids=[photo.id])
        ids = {str(studies.save_study_caption(session=s, study=study, photo_id=photo.id, model_key=key, text=LINKY).id)
               for key in study.models}
    engine.dispose()
    return ids


def test_addresses_in_user_text_are_not_links(app_server, browser_page):
    """Streamlit's Markdown links web and e-mail addresses in the text after escapes are resolved: a photo named
    www.evil.example.jpg was a link under its picture, a caption's address a link on the Rate and Arena pages.
    And the widgets' keys, which the browser gets as st-key-… classes, hold no caption id (ids told which
    model wrote a caption)."""
    url, db_url = app_server
    page = browser_page
    caption_ids = linky_study(db_url)
    links = page.locator('a[href*="evil.example"]')
    open_create_page(page, url)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([
        {"name": "www.evil.example.jpg", "mimeType": "image/jpeg", "buffer": builders.photo_bytes(colour="red")},
        {"name": "ana@evil.example.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"}])
    page.locator('[data-testid="stFileChipIconSpinner"]').first.wait_for(state="detached")
    settle(page)
    page.locator('[data-testid="stImageCaption"]', has_text="evil").wait_for()
    page.locator('[data-testid="stAlertContentError"]', has_text="evil").wait_for()
    assert links.count() == 0, [links.nth(i).get_attribute("href") for i in range(links.count())]
    name_box = page.get_by_label("Your name (for ratings)", exact=True)
    name_box.fill("Browser Rater")
    name_box.press("Enter")
    settle(page)
    for title, waiting in (("Rate", "0 of 2 rated by you"), ("Arena", "0 of 1 pairs judged by you")):
        go_to(page, title)
        page.get_by_text(waiting).wait_for()
        classes = page.locator('[class*="st-key-"]').evaluate_all("els => els.map(e => e.className)")
        keys = [key for c in classes for key in re.findall(r"st-key-(\S+)", c)]
        assert keys and not caption_ids & {w for k in keys for w in re.split(r"[^0-9A-Za-z]+", k)}, keys
        shown = page.locator('[data-testid="stMain"]').inner_text()
        assert LINKY in shown, shown  # the caption exactly as written
        assert links.count() == 0, [links.nth(i).get_attribute("href") for i in range(links.count())]
