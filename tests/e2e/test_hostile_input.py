"""Hostile input in real headless Chromium: file names that are Markdown stay plain text (issue 12 item 2)."""

from __future__ import annotations

import pytest

from tests import builders
from tests.e2e.test_browser import open_create_page, settle

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
