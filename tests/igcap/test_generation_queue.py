"""The shared generation queue under threads: order, limits, cancelling, place in line, failures."""

import random
import threading
import time

import pytest

from igcap.generation_queue import (GenerationQueue, JobCancelled, JobRefused, JobSize, Place, QueueLimits,
                                    ordinal, rough_duration)

ONE = JobSize(photos=1, models=1)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def start_all(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck: the queue wedged"


@pytest.mark.parametrize("at_once", [1, 2])
def test_jobs_start_first_come_first_served_and_never_more_than_n_at_once(at_once):
    queue = GenerationQueue(QueueLimits(jobs_at_once=at_once, jobs_per_owner=10))
    lock, running, peak, started = threading.Lock(), [0], [0], []
    jobs = [queue.submit(f"session-{i % 3}", ONE) for i in range(9)]  # three sessions, interleaved

    def work(job):
        job.wait_turn()
        with lock:
            started.append(job.number)
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        job.finish()

    threads = [threading.Thread(target=work, args=(job,)) for job in reversed(jobs)]  # waiters arrive in any order
    start_all(threads)
    assert peak[0] == at_once
    if at_once == 1:
        assert started == [job.number for job in jobs]
    else:  # two at a time: a job never starts before one submitted ahead of it has started
        assert all(started.index(a.number) <= started.index(b.number) + 1 for a, b in zip(jobs, jobs[1:]))
    assert queue.waiting() == 0 and queue.running() == 0


def test_many_sessions_through_run_all_complete_in_submission_order():
    queue = GenerationQueue(QueueLimits(jobs_at_once=1, jobs_per_owner=1))
    order, refused, lock = [], [], threading.Lock()

    def session(i):
        for _ in range(3):
            try:
                queue.run(f"s{i}", ONE, lambda job: (order.append(job.number), time.sleep(random.random() / 200)),
                          poll=0.01)
            except JobRefused:  # noqa: PERF203 - cannot happen: one job per session at a time
                with lock:
                    refused.append(i)

    start_all([threading.Thread(target=session, args=(i,)) for i in range(8)])
    assert not refused and len(order) == 24 and order == sorted(order)  # numbers are handed out at submit


def test_a_session_cannot_queue_more_than_its_share():
    queue = GenerationQueue(QueueLimits(jobs_per_owner=2))
    first, _second = queue.submit("me", ONE), queue.submit("me", ONE)
    with pytest.raises(JobRefused, match="at most 2"):
        queue.submit("me", ONE)
    queue.submit("someone else", ONE)  # others are not held back by my share
    first.wait_turn(0)
    first.finish()
    queue.submit("me", ONE)  # a place freed up


def test_a_very_large_request_is_refused_up_front_naming_the_limit():
    queue = GenerationQueue(QueueLimits(captions_per_job=100))
    with pytest.raises(JobRefused) as refused:
        queue.submit("me", JobSize(photos=50, models=4, variants=5))
    assert "1,000 captions" in refused.value.message and "at most 100" in refused.value.message
    assert "50 photo(s) × 4 model(s) × 5 variants" in refused.value.message
    assert queue.waiting() == 0
    queue.check("me", JobSize(photos=25, models=4, variants=1))  # exactly the limit is fine


def test_a_waiting_job_can_be_cancelled_and_the_line_moves_up():
    queue = GenerationQueue()
    running, leaving, behind = (queue.submit(o, ONE) for o in ("a", "b", "c"))
    assert running.wait_turn(0)
    assert behind.place().ahead == 1
    cancelled = []

    def wait_for_leaving():
        try:
            leaving.wait_turn()
        except JobCancelled:
            cancelled.append(True)

    waiter = threading.Thread(target=wait_for_leaving)
    waiter.start()
    leaving.cancel()
    waiter.join(timeout=10)
    assert cancelled == [True] and leaving.place() is None
    assert behind.place().ahead == 0
    running.finish()
    assert behind.wait_turn(5)


def test_cancelling_a_running_job_asks_it_to_stop():
    queue = GenerationQueue()
    job = queue.submit("a", ONE)
    assert job.wait_turn(0) and not job.stop_requested
    job.cancel()
    assert job.stop_requested and queue.running() == 1  # it stops at its next step, then gives the turn back
    job.finish()
    assert queue.running() == 0


def test_a_failing_job_does_not_wedge_the_queue():
    queue = GenerationQueue()

    def boom(job):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        queue.run("a", ONE, boom)
    assert queue.run("b", ONE, lambda job: "done", poll=0.01) == "done"
    assert queue.running() == 0 and queue.waiting() == 0


def test_failures_in_several_threads_leave_the_queue_usable():
    queue = GenerationQueue(QueueLimits(jobs_per_owner=5))
    outcomes, lock = [], threading.Lock()

    def session(i):
        def work(job):
            if i % 2:
                raise ValueError(i)
            return i

        try:
            result = queue.run(f"s{i}", ONE, work, poll=0.01)
        except ValueError:
            result = "failed"
        with lock:
            outcomes.append(result)

    start_all([threading.Thread(target=session, args=(i,)) for i in range(10)])
    assert sorted(o for o in outcomes if o != "failed") == [0, 2, 4, 6, 8] and outcomes.count("failed") == 5
    assert queue.run("after", ONE, lambda job: "still works", poll=0.01) == "still works"


def test_place_in_line_and_estimate_from_recent_jobs():
    clock = FakeClock()
    queue = GenerationQueue(QueueLimits(jobs_at_once=1, jobs_per_owner=5), clock=clock)
    first = queue.submit("a", JobSize(photos=2, models=1))
    assert first.wait_turn(0)
    waiting = queue.submit("b", ONE)
    assert waiting.place() == Place(ahead=0, seconds=None)  # nothing finished yet: no estimate
    assert waiting.place().describe() == "1st in line"
    clock.now += 10
    first.finish()  # 2 photo × model in 10 s: 5 s each
    assert queue.seconds_per_unit() == 5
    assert waiting.wait_turn(0)
    big = queue.submit("c", JobSize(photos=2, models=2))  # 4 units: 20 s
    small = queue.submit("d", ONE)
    clock.now += 2
    # waiting (1 unit, started 2 s ago) has 3 s left; big starts then and takes 20 s
    assert big.place() == Place(0, 3.0)
    assert small.place() == Place(1, 23.0)
    assert small.place().describe() == "2nd in line, about 25 s"


def test_with_two_slots_the_estimate_takes_the_first_free_slot():
    clock = FakeClock()
    queue = GenerationQueue(QueueLimits(jobs_at_once=2, jobs_per_owner=9), clock=clock)
    warm = queue.submit("x", ONE)
    warm.wait_turn(0)
    clock.now += 4
    warm.finish()  # 4 s per unit
    long, short = queue.submit("a", JobSize(5, 1)), queue.submit("b", JobSize(1, 1))
    long.wait_turn(0), short.wait_turn(0)
    nxt, after = queue.submit("c", ONE), queue.submit("d", ONE)
    assert nxt.place() == Place(0, 4.0)  # short ends first
    assert after.place() == Place(1, 8.0)  # then nxt takes that slot: long (20 s) still runs


def test_an_abandoned_waiting_job_gives_its_place_up():
    clock = FakeClock()
    queue = GenerationQueue(QueueLimits(stale_after=60, jobs_per_owner=5), clock=clock)
    running = queue.submit("a", ONE)
    running.wait_turn(0)
    gone, here = queue.submit("closed tab", ONE), queue.submit("c", ONE)
    clock.now += 50
    assert not here.wait_turn(0)  # asking keeps "here" fresh
    clock.now += 20  # gone was last seen 70 s ago
    assert here.place().ahead == 0
    with pytest.raises(JobCancelled):
        gone.wait_turn(0)


def test_a_waiter_who_stopped_asking_does_not_hold_a_free_slot_from_those_still_asking():
    """The head of the line left (another page, a closing tab): a free slot waited up to 30 s for it while
    the person behind kept asking. Now the first job still asked about takes it; the absent one keeps its
    place for the slot after, until it is dropped as abandoned."""
    clock = FakeClock()
    queue = GenerationQueue(QueueLimits(jobs_per_owner=5), clock=clock)
    running = queue.submit("a", ONE)
    running.wait_turn(0)
    away, here, later = queue.submit("away", ONE), queue.submit("here", ONE), queue.submit("later", ONE)
    clock.now += 1
    running.finish()
    assert not here.wait_turn(0)  # "away" asked 1 s ago: still present, it starts next
    clock.now += 3  # "away" last asked 4 s ago
    assert not later.wait_turn(0)  # not the first one asking: "here" is
    assert here.wait_turn(0) and queue.running() == 1
    assert away.place().ahead == 0  # back now: first in line for the next slot, ahead of "later"
    here.finish()
    assert not later.wait_turn(0) and away.wait_turn(0)


def test_a_waiter_asking_through_a_blocking_wait_stays_present():
    # wait_turn(None) wakes often enough to keep its job fresh, so a job behind never overtakes it.
    queue = GenerationQueue(QueueLimits(jobs_per_owner=5, present_within=0.3))
    running = queue.submit("a", ONE)
    running.wait_turn(0)
    first, second = queue.submit("first", ONE), queue.submit("second", ONE)
    order = []
    threads = [threading.Thread(target=lambda j=j: (j.wait_turn(None), order.append(j.owner), time.sleep(0.2),
                                                    j.finish())) for j in (second, first)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # both wait well past present_within
    running.finish()
    for t in threads:
        t.join(timeout=30)
    assert order == ["first", "second"]


@pytest.mark.parametrize("n, word", [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"),
                                     (13, "13th"), (21, "21st"), (22, "22nd"), (101, "101st"), (111, "111th")])
def test_ordinals(n, word):
    assert ordinal(n) == word


@pytest.mark.parametrize("seconds, words", [(0, "5 s"), (3.2, "5 s"), (20, "20 s"), (21, "25 s"), (54, "55 s"),
                                            (55, "1 min"), (61, "2 min"), (180, "3 min")])
def test_rough_durations(seconds, words):
    assert rough_duration(seconds) == words


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="jobs_at_once"):
        QueueLimits(jobs_at_once=0)


def test_limits_come_from_the_settings():
    from igcap.config import Settings
    from igcap.generation_queue import limits_from_settings

    default = Settings.from_env({})
    assert limits_from_settings(default, "cpu") == QueueLimits(jobs_at_once=1, jobs_per_owner=2, captions_per_job=100)
    assert limits_from_settings(default, "cuda").jobs_at_once == 2
    assert default.max_batch_rows == 16
    chosen = Settings.from_env({"IGCAP_JOBS_AT_ONCE": "3", "IGCAP_JOBS_PER_SESSION": "1",
                                "IGCAP_MAX_CAPTIONS_PER_JOB": "40", "IGCAP_MAX_BATCH_ROWS": "8"})
    assert limits_from_settings(chosen, "cpu") == QueueLimits(jobs_at_once=3, jobs_per_owner=1, captions_per_job=40)
    assert chosen.max_batch_rows == 8 and Settings.from_env({"IGCAP_JOBS_AT_ONCE": "auto"}).jobs_at_once is None


@pytest.mark.parametrize("key, value", [("IGCAP_JOBS_AT_ONCE", "0"), ("IGCAP_JOBS_PER_SESSION", "many"),
                                        ("IGCAP_MAX_CAPTIONS_PER_JOB", "-5"), ("IGCAP_MAX_BATCH_ROWS", "0")])
def test_bad_queue_settings_name_the_key(key, value):
    from igcap.config import ConfigError, Settings

    with pytest.raises(ConfigError, match=key):
        Settings.from_env({key: value})


def test_a_waiter_that_may_not_start_the_job_leaves_it_waiting():
    queue = GenerationQueue(QueueLimits(jobs_per_owner=5))
    job = queue.submit("me", ONE)
    assert not job.wait_turn(0, may_start=lambda: False) and job.state == "waiting" and queue.running() == 0
    assert job.wait_turn(0, may_start=lambda: True) and job.state == "running"


def test_a_job_asked_to_stop_no_longer_counts_against_its_owner():
    """It keeps its turn until its work ends, but with one job per person a click that stopped a generation
    made the next one "You already have 1 generation(s) waiting or running"."""
    queue = GenerationQueue(QueueLimits(jobs_at_once=1, jobs_per_owner=1))
    first = queue.submit("ana", JobSize(1, 1, 1))
    assert first.wait_turn(1)
    with pytest.raises(JobRefused):
        queue.submit("ana", JobSize(1, 1, 1))
    first.cancel()  # running: asked to stop, still holding its turn
    second = queue.submit("ana", JobSize(1, 1, 1))
    assert queue.running() == 1 and not second.wait_turn(0.05)  # waits for the stopping one
    first.finish()
    assert second.wait_turn(1)
