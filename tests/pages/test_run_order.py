"""igcap_ui.run_order: one session's saves one at a time, other sessions never waiting on them (threads,
as Streamlit runs sessions and, with fast reruns, two runs of one session)."""

from __future__ import annotations

import threading
import time

import pytest

from igcap_ui import run_order


@pytest.fixture
def sessions(monkeypatch):
    """Each thread says which browser session it runs for."""
    local = threading.local()
    monkeypatch.setattr(run_order, "_session_id", lambda: local.session)
    return local


def overlap(sessions, session_ids: list[str], hold: float = 0.2) -> list[tuple[float, float]]:
    """Enter in_click_order from one thread per session id at once; (entered, left) per thread."""
    spans, barrier = [None] * len(session_ids), threading.Barrier(len(session_ids))

    def run(i: int, session: str) -> None:
        sessions.session = session
        barrier.wait()
        with run_order.in_click_order():
            entered = time.monotonic()
            time.sleep(hold)
        spans[i] = (entered, time.monotonic())

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(session_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return spans


def test_two_runs_of_one_session_save_one_after_the_other(sessions):
    spans = sorted(overlap(sessions, ["alice", "alice", "alice"]))
    for (_, left), (entered, _) in zip(spans, spans[1:]):
        assert entered >= left  # never two inside at once


def test_other_sessions_do_not_wait(sessions):
    spans = overlap(sessions, ["alice", "bob", "carol"], hold=0.5)
    assert max(e for e, _ in spans) < min(left for _, left in spans)  # all three were inside together


def test_a_lock_is_dropped_once_no_run_holds_it(sessions):
    overlap(sessions, ["dora", "dora"], hold=0.01)
    assert "dora" not in run_order._LOCKS
