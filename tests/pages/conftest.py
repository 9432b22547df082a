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
    yield
    st.cache_resource.clear()


@pytest.fixture
def app(app_env):
    """The app, run once (the Create page is the default)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    return at.run()


def open_page(at, name: str):
    return at.switch_page(str(ROOT / "pages" / name)).run()


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
