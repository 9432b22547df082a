"""Database failures a person can act on get a message naming the problem and what to do (issue 12 item 6):
a damaged file and a read-only file used to say "Something went wrong (DatabaseError)" and
"busy or unreachable… try again"."""

from __future__ import annotations

import shutil

import pytest

from tests.pages.conftest import APP, TIMEOUT, no_exceptions, open_page, set_rater, shown


@pytest.fixture
def damaged_db(tmp_path, monkeypatch):
    path = tmp_path / "damaged.sqlite3"
    path.write_bytes(b"this is not a database\n" * 500)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    return path


def test_a_damaged_database_file_is_named_with_what_to_do(app_env, damaged_db):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(at)
    messages = [shown(e.value) for e in at.error]
    assert messages and all("damaged" in m and str(damaged_db) in m and "backup" in m for m in messages)
    at = open_page(at, "gallery.py")
    no_exceptions(at)
    assert any("damaged" in shown(e.value) for e in at.error)


def test_a_read_only_database_file_says_read_only_not_busy(saved, app_env, db_url, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    path = tmp_path / "read-only.sqlite3"
    shutil.copyfile(db_url.removeprefix("sqlite:///"), path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    at = set_rater(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "Alex")
    at = open_page(at, "gallery.py")
    no_exceptions(at)
    at.feedback(key=f"stars.{saved['Blue sky']}.Alex").set_value(3).run()
    no_exceptions(at)
    messages = [shown(e.value) for e in at.error]
    assert any("read-only" in m and "writable" in m for m in messages), messages
    assert not any("busy" in m for m in messages)
