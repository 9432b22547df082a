"""Two runs of one Create session holding one generation (Streamlit's fast reruns: a click stops the running
script and starts the next run on another thread), driven through igcap_ui.generation's real waiting code
with a stand-in for Streamlit's elements that raises StopException once a run is stopped."""

from __future__ import annotations

import threading
import time
import types

import pytest

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


class _Session:
    """One browser session's stand-in: session state shared by its runs, and each run (a thread) with its own
    stop flag, as Streamlit's elements raise StopException in a run that was stopped."""

    def __init__(self):
        self.session_state = {}
        self._run = threading.local()

    def stop_flag(self) -> threading.Event:
        return self._run.stopped

    def start_run(self, body) -> tuple[threading.Thread, threading.Event]:
        stopped = threading.Event()

        def run():
            self._run.stopped = stopped
            try:
                body()
            except StopException:
                pass

        thread = threading.Thread(target=run)
        thread.start()
        return thread, stopped

    def empty(self):
        return _Element(self.stop_flag())

    def status(self, *args, **kwargs):
        return _Element(self.stop_flag())

    def info(self, *args, **kwargs):
        _Element(self.stop_flag())._check()

    def error(self, message, **kwargs):
        raise AssertionError(f"refused: {message}")


def test_a_stopped_run_keeps_the_slot_until_its_own_work_ends(monkeypatch):
    """Run A writes its captions (a model's photos: seconds of torch work, no element touched meanwhile); a
    click stops A and starts run B, which resumes the page. The job stays running, holding its slot, until A's
    work ends and A gives it back: B used to finish it at once, and another session's job started beside A's."""
    queue = GenerationQueue(QueueLimits(jobs_at_once=1))
    session = _Session()
    monkeypatch.setattr(generation, "st", session)
    monkeypatch.setattr(generation, "draw_results", lambda *args, **kwargs: None)
    job = queue.submit("me", JobSize(4, 1))
    pending = generation.Pending(job, [], ["m"], None, {})
    session.session_state[generation._PENDING] = pending
    working, release = threading.Event(), threading.Event()

    def caption(pending, status):
        working.set()
        assert release.wait(10)
        status.update(label="done")  # the first element after the model: a stopped run ends here

    monkeypatch.setattr(generation, "_caption", caption)
    run_a, stop_a = session.start_run(lambda: generation._take_turn(pending))
    try:
        assert working.wait(10)
        stop_a.set()  # the click
        run_b, _ = session.start_run(generation.resume_generation)
        run_b.join(10)
        assert job.stop_requested  # A's work is asked to stop at its next step...
        assert job.state == "running" and queue.running() == 1  # ...and keeps its slot meanwhile
        other = queue.submit("another session", JobSize(8, 4))
        assert not other.wait_turn(0.2)
    finally:
        release.set()
    run_a.join(10)
    assert not run_a.is_alive() and job.state == "finished" and queue.running() == 0
    assert other.wait_turn(1)
    other.finish()


@pytest.mark.parametrize("per_owner", [2, 1])  # 1: the stopping job was counted, and the next click refused
def test_a_burst_of_regenerate_clicks_never_computes_more_than_jobs_at_once(monkeypatch, per_owner):
    """One session clicks "Regenerate all" four times while its generation runs: each click stops the current
    run (it notices only at its next element, after the model) and starts a new one calling generate(). The
    old generation keeps its slot until its work ends, so the new ones wait in line: one job computes at a
    time, as the queue says (four used to compute at once while the queue counted one)."""
    queue = GenerationQueue(QueueLimits(jobs_at_once=1, jobs_per_owner=per_owner))
    session = _Session()
    monkeypatch.setattr(generation, "st", session)
    monkeypatch.setattr(generation, "draw_results", lambda *args, **kwargs: None)
    monkeypatch.setattr(generation, "store", lambda: {})
    monkeypatch.setattr(generation, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(generation, "resources",
                        types.SimpleNamespace(generation_queue=lambda: queue, session_owner=lambda: "me"))
    computing, peak, lock = [0], [0], threading.Lock()
    started = threading.Semaphore(0)

    def caption(pending, status):  # one model over the photos: no element touched while it computes
        with lock:
            computing[0] += 1
            peak[0] = max(peak[0], computing[0])
        started.release()
        time.sleep(0.6)
        with lock:
            computing[0] -= 1
        status.update(label="done")

    monkeypatch.setattr(generation, "_caption", caption)
    photos = [types.SimpleNamespace(sha256="p1")]
    settings = types.SimpleNamespace(num_variants=1)
    click = lambda: generation.generate(photos, ["m"], settings, regenerate_all=True)  # noqa: E731
    runs = [session.start_run(click)]
    assert started.acquire(timeout=10)
    for _ in range(3):
        time.sleep(0.1)
        runs[-1][1].set()  # the click stops the current run...
        runs.append(session.start_run(click))  # ...and starts the next at once (fast reruns)
    for thread, _ in runs:
        thread.join(15)
        assert not thread.is_alive()
    assert started.acquire(timeout=0)  # the last click's generation ran, after the first one's ended
    assert peak[0] == 1
    assert queue.running() == 0 and queue.waiting() == 0
