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


RTL = "مرحبا بالعالم"


def _ink_columns(element) -> tuple[float, float]:
    """Where the text's ink starts and ends across the element, as fractions of its width."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(element.screenshot())).convert("L")
    width, height = image.size
    pixels = image.load()
    # the box's resize grip (bottom right) is no ink
    inked = [x for x in range(4, width - 16) if any(pixels[x, y] < 110 for y in range(4, height - 4))]
    return inked[0] / width, inked[-1] / width


def test_right_to_left_captions_read_right_to_left(app_server, browser_page, tmp_path):
    """Arabic or Hebrew caption text was laid out left to right in the boxes and the "as Instagram shows it"
    preview. Each paragraph now takes its direction from its text (left-to-right text stays as it was)."""
    url, _ = app_server
    page = browser_page
    open_create_page(page, url)
    photo = tmp_path / "rtl.jpg"
    photo.write_bytes(builders.photo_bytes(colour="white"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.locator('[data-testid="stFileChipIconSpinner"]').wait_for(state="detached")
    settle(page)
    box = page.get_by_label("Write your own caption").last  # the new photo comes last (earlier tests left theirs)
    box.fill(RTL)
    box.blur()
    settle(page)
    page.get_by_text("Preview and copy").last.click()
    preview = page.locator('[data-testid="stText"]').filter(has_text=RTL).first
    preview.wait_for()
    copy = page.locator('[data-testid="stCode"] pre').filter(has_text=RTL).first
    page.screenshot(path=str(tmp_path / "rtl.png"), full_page=True)
    for element in (box, preview, copy):
        start, end = _ink_columns(element)
        assert start > 0.2 and end > 0.8, f"{element}: ink from {start:.2f} to {end:.2f} of the width"
    box.fill("Left to right")
    box.blur()
    settle(page)
    start, _ = _ink_columns(box)
    assert start < 0.1
