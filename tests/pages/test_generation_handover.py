"""Two runs of one Create session holding one generation (Streamlit's fast reruns: a click stops the running
script and starts the next run on another thread), driven through igcap_ui.generation's real waiting code
with a stand-in for Streamlit's elements that raises StopException once a run is stopped."""

from __future__ import annotations

import threading
import time
import types

from streamlit.runtime.scriptrunner_utils.exceptions import StopException

import igcap_ui.generation as generation
from igcap.generation_queue import GenerationQueue, JobSize, QueueLimits


class _Element:
    def __init__(self, stopped: threading.Event):
        self.stopped = stopped

    def _check(self):
        if self.stopped.is_set():
            raise StopException()

    def button(self, *args, **kwargs):
        self._check()
        return False

    def empty(self):
        self._check()

    def update(self, *args, **kwargs):
        self._check()


def _streamlit(stopped: threading.Event):
    return types.SimpleNamespace(session_state={}, empty=lambda: _Element(stopped),
                                 status=lambda *a, **k: _Element(stopped))


def test_a_run_handed_over_never_starts_the_job_and_leaves_it_running(monkeypatch):
    """Run A waits; a click stops it and run B claims the job, then B is stopped too (another click, another
    page) before it starts it; the slot frees while A is still inside wait_turn. A started the job and left it
    'running' with nobody writing its captions: every session of the process waited behind it for good."""
    queue = GenerationQueue(QueueLimits(jobs_at_once=1, jobs_per_owner=5))
    other = queue.submit("another session", JobSize(1, 1))
    assert other.wait_turn(0)
    job = queue.submit("me", JobSize(1, 1))
    pending = generation.Pending(job, [], ["m"], None, {})
    written = []
    monkeypatch.setattr(generation, "_caption", lambda pending, status: written.append(pending))
    monkeypatch.setattr(generation, "draw_results", lambda *args, **kwargs: None)

    stop_a = threading.Event()
    monkeypatch.setattr(generation, "st", _streamlit(stop_a))
    run_a = threading.Thread(target=generation._take_turn, args=(pending,))
    run_a.start()
    time.sleep(0.2)  # run A waits in job.wait_turn
    stop_a.set()
    stop_b = threading.Event()
    stop_b.set()
    monkeypatch.setattr(generation, "st", _streamlit(stop_b))
    try:
        generation._take_turn(pending)  # claims the job, and is stopped at its first element
    except StopException:
        pass
    other.finish()  # the slot frees while run A is still inside wait_turn
    run_a.join(timeout=10)
    assert not run_a.is_alive() and written == []
    assert job.state == "waiting" and queue.running() == 0  # nobody started it: nobody is writing its captions
    behind = queue.submit("a third person", JobSize(1, 1))
    deadline = time.monotonic() + 10
    while not behind.wait_turn(0.2):  # the job nobody asks about lets them through within present_within
        assert time.monotonic() < deadline, "the abandoned job held the slot"
