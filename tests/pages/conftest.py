"""AppTest harness: the real app file, tiny models in the process HF cache, a fresh SQLite file per test."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 120  # seconds for one script run: generation loads tiny models on 2 shared cores


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'igcap-test.sqlite3'}"


@pytest.fixture
def app_env(monkeypatch, tmp_path, hub_cache, db_url):
    """Environment for one app process: tiny hub models, this test's database, nothing cached before."""
    import streamlit as st

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("IGCAP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IGCAP_DEMO_MODELS_DIR", str(tmp_path / "no-demo-models"))
    st.cache_resource.clear()
    server_address("localhost")  # as `make run`: no sign-in needed on this computer
    yield
    server_address(None)
    st.cache_resource.clear()


def server_address(address: str | None) -> None:
    """Where the (simulated) server listens: the sign-in gate treats loopback as this computer only."""
    from streamlit import config

    config.set_option("server.address", address)


@pytest.fixture
def app(app_env):
    """The app, run once (the Create page is the default)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    return at.run()


def open_page(at, name: str):
    return at.switch_page(str(ROOT / "app_pages" / name)).run()


def shown(source: str) -> str:
    """What a person reads where Streamlit renders ``source`` as Markdown: the text, escapes resolved."""
    import html
    import re

    from markdown_it import MarkdownIt

    return html.unescape(re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").render(source))).strip()


def no_exceptions(at) -> None:
    """No exception escaped, and none was caught by the app's last-resort guard either."""
    assert not at.exception, [e.value for e in at.exception]
    unexpected = [e.value for e in at.error if e.value.startswith("Something went wrong")]
    assert not unexpected, unexpected


@pytest.fixture
def saved(app_env, db_url):
    """A database with two photos: three model captions and one hand-written caption (no ratings)."""
    from db import make_engine, repo, transaction, upgrade
    from igcap.images import load_photo, resized_jpeg, thumbnail_jpeg
    from tests import builders

    engine = make_engine(db_url)
    upgrade(engine)
    ids = {}
    with transaction(engine) as session:
        for colour, captions in [("red", [("vit-gpt2-all", "Red square #shapes"), ("manual", "My red one")]),
                                 ("blue", [("vit-gpt2-last-block", "Blue sky"), ("nlpconnect-all", "A blue thing")])]:
            photo = load_photo(builders.photo_bytes(colour=colour), f"{colour}.jpg")
            row = repo.save_photo(session=session, sha256=photo.sha256, name=photo.name, width=photo.width,
                                  height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                                  thumbnail_jpeg=thumbnail_jpeg(photo.image))
            for key, text in captions:
                generated = None if key == "manual" else text
                ids[text] = repo.add_caption(session=session, photo=row, model_key=key, text=text,
                                             generated_text=generated, favourite=True).id
    engine.dispose()
    return ids


def set_rater(at, name: str):
    """Type a name in the sidebar box. Call on the first run: AppTest (1.67) drops the main script's
    sidebar elements from its tree after switch_page, though the real app keeps them."""
    at.text_input(key="rater_name_input").set_value(name).run()
    return at
