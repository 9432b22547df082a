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


class _StoppingState(dict):
    """Streamlit's session state: every access is a yield point, and raises StopException in a stopped run."""

    def __init__(self, session: "_StrictSession"):
        super().__init__()
        self._session = session

    def _yield(self):
        stopped = getattr(self._session._run, "stopped", None)
        if stopped is not None and stopped.is_set():
            raise StopException()

    def __getitem__(self, key):
        self._yield()
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        self._yield()
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self._yield()
        super().__delitem__(key)

    def __contains__(self, key):
        self._yield()
        return super().__contains__(key)

    def get(self, key, default=None):
        self._yield()
        return super().get(key, default)

    def pop(self, key, *default):
        self._yield()
        return super().pop(key, *default)

    def setdefault(self, key, default=None):
        self._yield()
        return super().setdefault(key, default)


class _StrictSession(_Session):
    """A session whose state is a yield point too, and which records what its runs say (st.info)."""

    def __init__(self):
        super().__init__()
        self.session_state = _StoppingState(self)
        self.said = []

    def info(self, message, **kwargs):
        super().info(message)
        self.said.append(message)


@pytest.mark.parametrize("next_run_starts", ["while the stopped run computes", "after the stopped run ended"])
def test_a_generation_stopped_by_a_change_on_the_page_says_so_on_the_next_run(monkeypatch, next_run_starts):
    """Removing a photo during a Generate stopped it without a word: the stopped run wrote its note in its
    except branch, reading st.session_state, itself a yield point, which raised StopException again, so the
    note (and the job's cancel) never happened. The job records what finished as it goes; the next run says it."""
    from collections import defaultdict

    from igcap.captioner import CaptionResult, ModelRun
    from igcap_ui import results

    queue = GenerationQueue(QueueLimits(jobs_at_once=1))
    session = _StrictSession()
    for module in (generation, results):
        monkeypatch.setattr(module, "st", session)
    monkeypatch.setattr(generation, "draw_results", lambda *args, **kwargs: defaultdict(lambda: None))
    monkeypatch.setattr(generation, "_draw_card", lambda *args: session.empty())  # an element: a yield point
    monkeypatch.setattr(generation, "drafts", types.SimpleNamespace(save=lambda: session.session_state.get("x")))
    working, release = threading.Event(), threading.Event()

    class Captioner:
        def caption(self, images, keys, settings, on_result, on_progress, should_stop):
            on_result(ModelRun("m1", (CaptionResult("m1", 0, 0, "A dog", "a dog", 2, 0.1, True),)))
            working.set()  # the second model computes: no element touched meanwhile
            assert release.wait(10)
            return []

    monkeypatch.setattr(generation, "resources", types.SimpleNamespace(
        generation_queue=lambda: queue, session_owner=lambda: "me", captioner=Captioner, registry=dict))
    job = queue.submit("me", JobSize(1, 2))
    settings = types.SimpleNamespace(to_dict=dict, num_variants=1)
    pending = generation.Pending(job, [types.SimpleNamespace(sha256="p1", image=None)], ["m1", "m2"], settings,
                                 {"p1": ["m1", "m2"]})
    session.session_state[generation._PENDING] = pending
    run_a, stop_a = session.start_run(lambda: generation._take_turn(pending))
    assert working.wait(10)
    stop_a.set()  # a photo removed: Streamlit stops run A...
    if next_run_starts == "after the stopped run ended":
        release.set()
        run_a.join(10)
    run_b, _ = session.start_run(generation.resume_generation)  # ...and runs the page again
    run_b.join(10)
    release.set()
    run_a.join(10)
    assert not run_a.is_alive() and not run_b.is_alive()
    assert [s for s in session.said if "Generation stopped" in s] == [
        "Generation stopped when the page changed: 1 of 2 model(s) had finished. Press Generate for the rest."]
    assert job.stop_requested and job.state == "finished" and queue.running() == 0
    run_c, _ = session.start_run(generation.resume_generation)  # said once
    run_c.join(10)
    assert len([s for s in session.said if "Generation stopped" in s]) == 1
