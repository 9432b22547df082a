"""One fair line for caption generation, shared by every session of the process.

At most ``jobs_at_once`` jobs generate at a time; the others wait first come, first served, whichever
session they come from. A waiting job knows its place and an estimate of its wait (from the last jobs'
seconds per photo × model), and can be cancelled; a running job can be asked to stop, which the
captioner honours between batches. Only ``finish`` gives a running job's slot back: its thread calls it when
the work has ended, never another thread while the work goes on. One session (an owner) may have only a few jobs queued or running,
and a job asking for more captions than one job may write is refused before it queues, with the limit
named.

The queue hands out turns; the job's own thread does the work (Streamlit draws a session's results
from that session's thread). ``run`` is the whole cycle for callers that just wait::

    queue.run(owner, JobSize(photos=3, models=4, variants=1), lambda job: captioner.caption(...))
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

WAITING, RUNNING, FINISHED, CANCELLED = "waiting", "running", "finished", "cancelled"
RECENT_JOBS = 20  # the estimate averages the seconds per photo × model of this many latest jobs


class JobRefused(Exception):
    """A job the queue will not take; ``message`` says why and what to do instead."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class JobCancelled(Exception):
    """The job was cancelled before its turn came."""


@dataclass(frozen=True)
class QueueLimits:
    jobs_at_once: int = 1  # jobs generating at the same time (one already uses every core of a CPU)
    jobs_per_owner: int = 2  # jobs one session may have queued or running
    captions_per_job: int = 100  # photos × models × variants one job may ask for
    stale_after: float = 30.0  # a waiting job nobody has asked about for this long is dropped (waiters ask twice a second)
    # A waiting job nobody has asked about for this long lets the next job whose waiter is still asking take
    # a free slot (it keeps its place for the slot after, until stale_after): a person on another page, or a
    # tab being closed, does not hold up everyone behind them.
    present_within: float = 3.0

    def __post_init__(self):
        for name in ("jobs_at_once", "jobs_per_owner", "captions_per_job"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


def limits_from_settings(settings, device: str) -> QueueLimits:
    """The queue's limits from igcap.config.Settings; ``device`` is where models run (cpu, cuda, mps).

    By default one job at a time on a CPU (one generation already keeps every core busy; two at once
    only share them and hold two jobs' memory), two on a GPU (one job leaves it idle between steps)."""
    at_once = settings.jobs_at_once or (1 if device == "cpu" else 2)
    return QueueLimits(jobs_at_once=at_once, jobs_per_owner=settings.jobs_per_session,
                       captions_per_job=settings.max_captions_per_job)


@dataclass(frozen=True)
class JobSize:
    photos: int
    models: int
    variants: int = 1

    @property
    def captions(self) -> int:
        return self.photos * self.models * self.variants

    @property
    def units(self) -> int:
        """What the time estimate scales with: each photo through each model (variants share a pass)."""
        return max(1, self.photos * self.models)

    def describe(self) -> str:
        parts = [f"{self.photos} photo(s)", f"{self.models} model(s)"]
        if self.variants > 1:
            parts.append(f"{self.variants} variants")
        return " × ".join(parts)


@dataclass(frozen=True)
class Place:
    """Where a waiting job stands: ``ahead`` jobs start before it (0: it starts next)."""

    ahead: int
    seconds: float | None  # estimated wait until it starts; None before any job has finished

    def describe(self) -> str:
        where = f"{ordinal(self.ahead + 1)} in line"
        if self.seconds is None:
            return where
        return f"{where}, about {rough_duration(self.seconds)}"


class Job:
    """One request's turn in the queue. Made by GenerationQueue.submit."""

    def __init__(self, queue: GenerationQueue, number: int, owner: str, size: JobSize):
        self.queue, self.number, self.owner, self.size = queue, number, owner, size
        self.state = WAITING
        self.submitted = self.seen = queue.clock()
        self.started: float | None = None
        self.ended: float | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"Job({self.number}, {self.owner!r}, {self.state})"

    @property
    def stop_requested(self) -> bool:
        """True once cancel() was called: a running job should stop at its next step."""
        return self._stop.is_set()

    def wait_turn(self, timeout: float | None = None, may_start: Callable[[], bool] | None = None) -> bool:
        """Block until this job may run (True; it is then running), or ``timeout`` seconds (False).
        ``may_start``: asked (under the queue's lock) before this call starts the job; False leaves it
        waiting (the caller is no longer the one to run it).

        Raises JobCancelled if it was cancelled (by its owner, or dropped as abandoned)."""
        return self.queue._wait_turn(self, timeout, may_start)

    def place(self) -> Place | None:
        """Its place while waiting; None once it runs or ended."""
        return self.queue._place(self)

    def cancel(self) -> None:
        """Leave the line if waiting; if running, ask the work to stop at its next step."""
        self.queue._cancel(self)

    def finish(self) -> None:
        """The job's work ended (normally or not): its place goes to the next job."""
        self.queue._finish(self)


class GenerationQueue:
    def __init__(self, limits: QueueLimits = QueueLimits(), clock: Callable[[], float] = time.monotonic):
        self.limits, self.clock = limits, clock
        self._changed = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []
        self._seconds_per_unit: deque[float] = deque(maxlen=RECENT_JOBS)
        self._numbers = itertools.count(1)

    # ------------------------------------------------------------ taking jobs

    def check(self, owner: str, size: JobSize) -> None:
        """Raise JobRefused if this job would not be taken now (too large, or the owner has too many)."""
        with self._changed:
            self._check(owner, size)

    def _check(self, owner: str, size: JobSize) -> None:
        limit = self.limits.captions_per_job
        if size.captions > limit:
            raise JobRefused(f"That asks for {size.captions:,} captions ({size.describe()}); one generation "
                             f"may write at most {limit:,}. Choose fewer photos, models or variants, or "
                             "generate in several goes.")
        # a job asked to stop still holds its turn until its batch ends, but no longer counts as one of the
        # owner's: with jobs_per_owner = 1, a click that stopped a generation refused the next one
        mine = sum(job.owner == owner and not job.stop_requested for job in (*self._waiting, *self._running))
        if mine >= self.limits.jobs_per_owner:
            raise JobRefused(f"You already have {mine} generation(s) waiting or running (at most "
                             f"{self.limits.jobs_per_owner} at once). Wait for one to finish, or cancel one.")

    def submit(self, owner: str, size: JobSize) -> Job:
        """Queue a job at the back of the line (raises JobRefused)."""
        with self._changed:
            self._drop_abandoned()
            self._check(owner, size)
            job = Job(self, next(self._numbers), owner, size)
            self._waiting.append(job)
            self._changed.notify_all()
            return job

    def run(self, owner: str, size: JobSize, work: Callable[[Job], T],
            on_wait: Callable[[Place], None] | None = None, poll: float = 0.5) -> T:
        """Queue, wait for the turn (telling ``on_wait`` the place every ``poll`` seconds), do ``work(job)``,
        and give the turn back whatever happens (an exception in the work propagates after that)."""
        job = self.submit(owner, size)
        try:
            while not job.wait_turn(poll):
                if on_wait is not None:
                    place = job.place()
                    if place is not None:
                        on_wait(place)
            return work(job)
        finally:
            job.finish()

    # ------------------------------------------------------------ what callers see

    def waiting(self) -> int:
        with self._changed:
            return len(self._waiting)

    def running(self) -> int:
        with self._changed:
            return len(self._running)

    def seconds_per_unit(self) -> float | None:
        """Recent seconds per photo × model, or None before any job finished."""
        with self._changed:
            return self._rate()

    # ------------------------------------------------------------ the jobs' side

    def _wait_turn(self, job: Job, timeout: float | None, may_start: Callable[[], bool] | None = None) -> bool:
        deadline = None if timeout is None else self.clock() + timeout
        with self._changed:
            while True:
                job.seen = self.clock()
                self._drop_abandoned()
                if job.state == RUNNING:
                    return True
                if job.state != WAITING:
                    raise JobCancelled(f"job {job.number} was cancelled")
                if (self._first_present() is job and len(self._running) < self.limits.jobs_at_once
                        and (may_start is None or may_start())):
                    self._waiting.remove(job)
                    job.state, job.started = RUNNING, self.clock()
                    self._running.append(job)
                    self._changed.notify_all()  # the next one may have a free slot too
                    return True
                left = None if deadline is None else deadline - self.clock()
                if left is not None and left <= 0:
                    return False
                # wake now and then even without news, so a waiter that is still here stays fresh
                fresh = self.limits.present_within / 3
                self._changed.wait(min(left, fresh) if left is not None else fresh)

    def _first_present(self) -> Job | None:
        """The first waiting job whose waiter asked lately: it takes the next free slot."""
        now = self.clock()
        return next((j for j in self._waiting if now - j.seen <= self.limits.present_within), None)

    def _place(self, job: Job) -> Place | None:
        with self._changed:
            job.seen = self.clock()
            self._drop_abandoned()
            if job.state != WAITING:
                return None
            ahead = list(itertools.takewhile(lambda j: j is not job, self._waiting))
            return Place(len(ahead), self._estimate(ahead))

    def _estimate(self, ahead: list[Job]) -> float | None:
        """Seconds until a slot is free for the job after ``ahead``: each slot frees when its running job
        ends (by the recent rate), then takes the next job in line."""
        rate = self._rate()
        if rate is None:
            return None
        now = self.clock()
        slots = [max(0.0, job.size.units * rate - (now - job.started)) for job in self._running]
        slots += [0.0] * (self.limits.jobs_at_once - len(slots))
        heapq.heapify(slots)
        for job in ahead:
            heapq.heappush(slots, heapq.heappop(slots) + job.size.units * rate)
        return slots[0]

    def _rate(self) -> float | None:
        return sum(self._seconds_per_unit) / len(self._seconds_per_unit) if self._seconds_per_unit else None

    def _cancel(self, job: Job) -> None:
        with self._changed:
            job._stop.set()
            if job.state == WAITING:
                self._waiting.remove(job)
                job.state, job.ended = CANCELLED, self.clock()
                self._changed.notify_all()

    def _finish(self, job: Job) -> None:
        with self._changed:
            if job.state == WAITING:
                self._waiting.remove(job)
                job.state = CANCELLED
            elif job.state == RUNNING:
                self._running.remove(job)
                job.state = FINISHED
                if not job.stop_requested:  # a job cut short says little about how long jobs take
                    self._seconds_per_unit.append((self.clock() - job.started) / job.size.units)
            else:
                return
            job.ended = self.clock()
            self._changed.notify_all()

    def _drop_abandoned(self) -> None:
        """Waiting jobs whose waiter stopped asking (a closed browser tab) give their place up."""
        now = self.clock()
        for job in [j for j in self._waiting if now - j.seen > self.limits.stale_after]:
            self._waiting.remove(job)
            job.state, job.ended = CANCELLED, now
            job._stop.set()
            self._changed.notify_all()


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def rough_duration(seconds: float) -> str:
    """20 s, 1 min, 3 min: a wait as a person reads it (rounded up to 5 s, then to whole minutes)."""
    if seconds < 55:
        return f"{max(5, 5 * -(-int(seconds) // 5))} s"
    return f"{-(-int(seconds) // 60)} min"
