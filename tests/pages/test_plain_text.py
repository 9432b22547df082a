"""User text (file names, captions) is shown as plain text on every page, never as Markdown or HTML.

Streamlit renders Markdown in st.image captions, st.error, st.markdown and st.caption: a legal file name like
``![p](https:127.0.0.1:9).jpg`` made every visitor's browser fetch that address (issue 12 item 2).
Each shown source is rendered here with a CommonMark renderer: no link, image or emphasis may come out,
the visible text must be the name itself, and no URL scheme may stay unescaped (GitHub-style autolinks).
"""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from db import make_engine, repo, transaction, upgrade
from igcap.images import load_photo, resized_jpeg, thumbnail_jpeg
from igcap_ui.plain import plain
from tests import builders
from tests.pages.conftest import no_exceptions, open_page

HOSTILE = ["![p](https:127.0.0.1:9).jpg", "[phish](http:evil.example) photo.jpg", "**b**.png",
           "<img src=x onerror=alert(1)>.jpg", ":red[alarm] www.evil.example $x^2$ &amp; `code`.jpg"]
_MD = MarkdownIt("commonmark")


def rendered(source: str) -> str:
    return _MD.render(source)


def assert_plain(source: str, text: str, forbidden: str = "a|img|strong|em|code|script") -> None:
    """source renders with text in it as plain text: none of the forbidden tags, no autolink."""
    out = rendered(source)
    assert not re.search(rf"<({forbidden})\b", out), out
    assert text in html.unescape(re.sub(r"<[^>]+>", "", out)), out
    assert not re.search(r"(https?:|www\.)", source), source  # escaped, "http\:" cannot become a link


@pytest.mark.parametrize("text", HOSTILE + ["line one\n    indented\n\n    code?", "#1 photo", "- item", "1. first"])
def test_plain_renders_as_the_text_itself(text):
    out = rendered(plain(text))
    assert not re.search(r"<(a|img|strong|em|code|pre|h1|ul|ol|script)\b", out), out
    visible = html.unescape(re.sub(r"<[^>]+>", "", out)).replace("\u00a0", " ")
    assert " ".join(visible.split()) == " ".join(text.split())


def test_hostile_file_names_are_plain_text_on_the_create_page(app):
    files = [(name, builders.photo_bytes(colour=c), "image/jpeg") for name, c in zip(HOSTILE, builders.COLOURS)]
    files.append(("[bad](http:evil.example).jpg", b"not a photo at all", "image/jpeg"))
    app.file_uploader(key="create.upload").set_value(files).run()
    no_exceptions(app)
    captions = [c for image in app.image for c in image.captions]
    assert len(captions) == len(HOSTILE)
    for name, caption in zip(HOSTILE, captions):
        assert_plain(caption, name)
    [refused] = [e.value for e in app.error]
    assert_plain(refused, "[bad](http:evil.example).jpg", forbidden="a|img|em|code|script")  # the name is bold


def test_hostile_names_and_captions_are_plain_text_in_the_gallery(app_env, db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(engine) as session:
        photo = load_photo(builders.photo_bytes(), HOSTILE[0])
        row = repo.save_photo(session=session, sha256=photo.sha256, name=photo.name, width=photo.width,
                              height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                              thumbnail_jpeg=thumbnail_jpeg(photo.image))
        repo.add_caption(session=session, photo=row, model_key="vit-gpt2-all", text=HOSTILE[1],
                         generated_text=HOSTILE[2])
    engine.dispose()
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "gallery.py")
    no_exceptions(at)
    [caption] = [c for image in at.image for c in image.captions]
    assert_plain(caption, HOSTILE[0])
    # Caption text is drawn with st.text (issue 13 item 12): no Markdown at all, the text exactly as posted.
    texts = [t.value for t in at.text]
    assert HOSTILE[1] in texts and HOSTILE[2] in texts
    assert any(c.value.startswith("Model wrote") for c in at.caption)
