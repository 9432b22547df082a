"""User text (file names, captions) is shown as plain text on every page, never as Markdown or HTML.

Streamlit renders Markdown in st.image captions, st.error, st.markdown and st.caption: a legal file name like
``![p](https:127.0.0.1:9).jpg`` made every visitor's browser fetch that address (issue 12 item 2).
Each shown source is rendered here with a CommonMark renderer: no link, image or emphasis may come out,
the visible text must be the name itself, and no URL scheme may stay unescaped (GitHub-style autolinks).
Streamlit's renderer (remark-gfm) also links web and e-mail addresses found in the text *after* escapes are
resolved: nothing in the visible text may match its patterns (:data:`GFM_AUTOLINKS`).
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
# remark-gfm's literal autolinks, as Streamlit 1.67's bundle writes them (mdast-util-gfm-autolink-literal): a web
# address after a space or punctuation, an e-mail address (ASCII word characters, as JavaScript's \w)
GFM_AUTOLINKS = [re.compile(r"(https?://|www(?=\.))[-.\w]+", re.I | re.A),
                 re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.A)]
WORD_JOINER = "\u2060"  # invisible: what plain puts where an autolink would start


def rendered(source: str) -> str:
    return _MD.render(source)


def visible(source: str) -> str:
    """The text a person reads where ``source`` is rendered as Markdown."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered(source)))


def assert_plain(source: str, text: str, forbidden: str = "a|img|strong|em|code|script") -> None:
    """source renders with text in it as plain text: none of the forbidden tags, no autolink."""
    out = rendered(source)
    assert not re.search(rf"<({forbidden})\b", out), out
    assert text in visible(source).replace(WORD_JOINER, ""), out
    assert not re.search(r"(https?:|www\.)", source), source  # escaped, "http\:" cannot become a link
    assert not any(p.search(visible(source)) for p in GFM_AUTOLINKS), visible(source)


@pytest.mark.parametrize("text", HOSTILE + ["line one\n    indented\n\n    code?", "#1 photo", "- item", "1. first"])
def test_plain_renders_as_the_text_itself(text):
    out = rendered(plain(text))
    assert not re.search(r"<(a|img|strong|em|code|pre|h1|ul|ol|script)\b", out), out
    seen = visible(plain(text)).replace("\u00a0", " ").replace(WORD_JOINER, "")
    assert " ".join(seen.split()) == " ".join(text.split())


@pytest.mark.parametrize("text", ["log in again at https://evil.example/login", "www.evil.example.jpg",
                                  "WWW.Evil.Example", "http://www.evil.example", "mail ana@evil.example",
                                  "(ana.b+c@evil.example)", "ftp://x.example and mailto:ana@evil.example"])
def test_plain_leaves_no_web_or_mail_address_to_link(text):
    """remark-gfm links addresses in the text after the escapes are resolved, so escaping punctuation left
    www.evil.example.jpg a link in an image caption; a word joiner (invisible) now stands where one would start."""
    seen = visible(plain(text))
    assert not any(p.search(seen) for p in GFM_AUTOLINKS), seen
    assert seen.replace(WORD_JOINER, "").strip() == text


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


HOSTILE_LABEL = "**Bold** ![img](https:127.0.0.1:9/x.png) _em_ `code`"
HOSTILE_SOURCE = "/nonexistent/[site](http:evil.example)/_models_"


def test_model_labels_and_sources_from_the_models_file_are_plain_text(app_env, tmp_path, monkeypatch):
    """The operator's IGCAP_MODELS_FILE names labels and sources; they reached st.subheader, st.warning and
    the spinners as Markdown (an image every visitor's browser fetched), and a backtick broke the code span."""
    models = tmp_path / "models.toml"
    models.write_text(f"[models.vit-gpt2-all]\nlabel = '{HOSTILE_LABEL}'\nsource = '{HOSTILE_SOURCE}'\n", encoding="utf-8")
    monkeypatch.setenv("IGCAP_MODELS_FILE", str(models))
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    create = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(create)
    [warning] = [w.value for w in create.warning if "Not available now" in w.value]
    assert_plain(warning, HOSTILE_LABEL, forbidden="a|img|em|code|script")  # the label is bold on purpose
    assert HOSTILE_SOURCE in html.unescape(re.sub(r"<[^>]+>", "", rendered(warning)))

    at = open_page(create, "models.py")
    at.button(key="models.check_all").click().run()
    no_exceptions(at)
    shown = [e.value for kind in ("subheader", "markdown", "caption", "warning", "error", "info")
             for e in getattr(at, kind)]
    assert any(HOSTILE_LABEL in html.unescape(re.sub(r"<[^>]+>", "", rendered(v))) for v in shown)
    for value in shown:
        if "evil.example" in value or "127.0.0.1" in value or "_em_" in value or "_models_" in value:
            assert_plain(value, "", forbidden="a|img|em|strong|code|script")


def test_a_hashtag_set_refused_quotes_what_was_typed_as_plain_text(app):
    typed = "#ok ![x](https:evil.example/p.png)"
    from tests.pages.test_create import add_set

    add_set(app, "travel", typed)
    [refused] = [e.value for e in app.error]
    assert_plain(refused, "![x](https:evil.example/p.png)")
