"""Sessions opening the app while the database cannot be reached: one waits for the connection time-out, the
others get the same answer at once for a short while (they queued behind one another, 10 s each)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from db.engine import DatabaseUnavailableError


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers (a server that hangs, a firewall that swallows)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(100)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for conn in accepted:
        conn.close()


def test_sessions_do_not_queue_behind_an_unreachable_database(app_env, monkeypatch, silent_server, db_url):
    import streamlit as st

    from igcap_ui import resources

    from db import engine as db_engine

    port, accepted = silent_server
    monkeypatch.setattr(db_engine, "CONNECT_TIMEOUT_S", 2)  # the rule, not the 10 s: a queue would take 8 s
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:p@127.0.0.1:{port}/igcap")
    st.cache_resource.clear()
    start, answers = time.monotonic(), {}

    def session(i):
        try:
            resources.db_engine()
        except Exception as err:  # noqa: BLE001 - what each session was told, and when
            answers[i] = (time.monotonic() - start, err)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(4)]  # four sessions open the app at once
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(answers) == 4 and all(isinstance(err, DatabaseUnavailableError) for _, err in answers.values())
    assert max(seconds for seconds, _ in answers.values()) < 5, answers  # one time-out (2 s), not four (8 s)
    assert len(accepted) == 1

    monkeypatch.setenv("DATABASE_URL", db_url)  # another database is tried at once, not refused as the last one
    st.cache_resource.clear()
    with resources.db_engine().connect():
        pass


def test_each_session_gets_its_own_copy_of_a_remembered_failure(app_env, monkeypatch):
    """Every session raised the one remembered object: its traceback grew with each session's frames (8, 13, 18,
    23 …), keeping them alive, and threads rewrote it at once."""
    import streamlit as st

    from db.engine import DatabaseConfigError
    from igcap_ui import resources

    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")  # refused at once: a failure to remember
    st.cache_resource.clear()
    raised = []
    for _ in range(4):
        try:
            resources.db_engine()
        except DatabaseConfigError as err:
            raised.append(err)
    assert len({id(err) for err in raised}) == 4 and len({str(err) for err in raised}) == 1

    def depth(err):
        tb, n = err.__traceback__, 0
        while tb is not None:
            tb, n = tb.tb_next, n + 1
        return n

    assert depth(raised[3]) <= depth(raised[1])  # no growth from one session to the next
