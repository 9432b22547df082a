"""The thread policy: how many torch threads captioning uses, and the helpers that apply it.

Captioning runs on every core this process may use, unless ``IGCAP_THREADS`` (read by
``igcap.config.Settings``) fixes a number. On a quiet 2-core machine two threads beat one even for a
single photo (the benchmark's one photo × four distinct models: 2.09 s on two threads, 2.78 s on one).
On a CPU that other programs keep busy the opposite holds — a waiting thread loses its core at each of
the thousands of tiny int8 products (one photo: 4.9 s on two threads, 0.8 s on one) — so busy or shared
hosts should set ``IGCAP_THREADS=1``. The policy is applied to every loaded model, int8 or not
(``run_generate_on``), to captioning and to every model load (``ModelCache``; ``torch_threads``); tiny
models (training the demo) use one thread (``torch_threads(1)``). Outside those blocks every thread runs on
``process_threads()`` (the count the process started with).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading

THREADS_ENV = "IGCAP_THREADS"  # "auto" (default) or a fixed number of torch threads for captioning


def allowed_cores() -> int:
    """The cores this process may run on (containers often allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def caption_threads(fixed: int | None = None, cores: int | None = None) -> int:
    """torch threads for captioning: ``fixed`` (IGCAP_THREADS) if set, else every allowed core."""
    return fixed if fixed is not None else cores or allowed_cores()


_START: list[int] = []  # the count torch gave this process before the first block changed it
_START_LOCK = threading.Lock()


def process_threads() -> int:
    """The torch threads a thread of this process runs on outside ``torch_threads``, and starts with: the
    count torch chose before igcap's first block (``OMP_NUM_THREADS`` when set, else torch's own default),
    kept for the process. (Every allowed core was put back instead, which overrode OMP_NUM_THREADS=1 for the
    rest of the process after the first caption.)"""
    import torch

    with _START_LOCK:
        if not _START:
            _START.append(torch.get_num_threads())
        return _START[0]


def parse_threads(raw: str | None) -> int | None:
    """IGCAP_THREADS's value: None for auto (or unset), else a whole number of at least 1."""
    setting = (raw or "auto").strip().lower() or "auto"
    if setting == "auto":
        return None
    try:
        return max(1, int(setting))
    except ValueError:
        raise ValueError(f"{THREADS_ENV} must be auto or a whole number, not {raw!r}") from None


_BLOCKS = threading.local()  # how many torch_threads blocks the calling thread is inside


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run the block on ``n`` torch threads, then give the count back. For tiny models ``n=1``: more threads
    mostly wait on each other (on 2 busy cores a training step took 300 ms with 2 threads and 40 ms with 1).

    ``torch.set_num_threads`` sets the calling thread's count and also the count every thread started later
    begins with. So a block inside another gives the outer block's count back, and the outermost gives
    ``process_threads()`` (the process's starting count) back, never the count the thread had before: a caption lane entered while another
    lane had set 1 read 1 as its "before" and, ending last, left every later thread (script runs, model
    loads, the warm-up) on one thread. While a block runs, threads started meanwhile may begin on its count:
    work that needs a count enters its own block (captioning, model loads)."""
    import torch

    depth = getattr(_BLOCKS, "depth", 0)
    process_threads()  # the process's own count, noted before the first block changes it
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    _BLOCKS.depth = depth + 1
    try:
        yield
    finally:
        _BLOCKS.depth = depth
        torch.set_num_threads(before if depth else process_threads())


def run_generate_on(model, threads: int):
    """Make ``model.generate`` run on ``threads`` torch threads (the image encoder inside it too)."""
    generate = model.generate

    @functools.wraps(generate)
    def generate_on_threads(*args, **kwargs):
        with torch_threads(threads):
            return generate(*args, **kwargs)

    model.generate = generate_on_threads
    return model


def limit_to_allowed_cores() -> None:
    """Never more torch threads than the cores this process may run on (torch counts the machine's)."""
    import torch

    allowed = allowed_cores()
    if torch.get_num_threads() > allowed:
        torch.set_num_threads(allowed)
