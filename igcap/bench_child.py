"""What every benchmark child process shares: the report it writes, the photos it captions and its own
peak memory.

Importable without igcap's heavy imports, and without the ``igcap`` package at all: the ONNX Runtime
peer (``igcap/bench_peer.py``) runs in its own virtual environment, whose transformers differs, and
loads this file by its path. So: the standard library at the top, numpy and PIL inside the function
that makes the photos, and nothing from igcap.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field

PHOTO_SIZE = (640, 480)


@dataclass
class ChildReport:
    """What one child process measured; the parent adds wall-clock cold time and peak RSS."""

    path: str
    load_seconds: float = 0.0
    first_caption_at: float = 0.0  # time.time() when the first caption was ready
    imports_done_at: float = 0.0  # time.time() when the path's libraries were imported (part of "cold")
    one_photo_seconds: float = 0.0
    eight_photos_seconds: float = 0.0
    one_photo_tokens: int = 0
    eight_photos_tokens: int = 0
    threads: int = 0
    captions: list[str] = field(default_factory=list)  # the warm one-photo captions, model order
    variant: dict = field(default_factory=dict)
    peak_rss_mb: float = 0.0  # this process's own peak resident memory (VmHWM), read as it ends
    peak_source: str = ""  # where peak_rss_mb came from (VmHWM, or getrusage where /proc is absent)
    # of the resident memory as the process ended, the pages of files it maps (RssFile + RssShmem: its libraries,
    # mostly); how many a fault maps depends on the host's page cache, so this part of a peak varies between runs
    # of the very same code (docs/performance.md, issue 15's ninth round); None where /proc is absent
    file_pages_mb: float | None = None
    transformers_imported: bool | None = None  # whether the path had imported transformers when it ended


def bench_photos(n: int = 8):
    """Deterministic synthetic photos (smooth colour fields with noise), 640 × 480 like a phone upload."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:PHOTO_SIZE[1], 0:PHOTO_SIZE[0]]
    photos = []
    for _ in range(n):
        a, b, c = rng.uniform(0.002, 0.02, 3)
        base = np.stack([np.sin(xs * a + ys * b), np.cos(ys * c), np.sin((xs + ys) * b)], axis=-1)
        pixels = (base * 100 + 128 + rng.normal(0, 12, base.shape)).clip(0, 255).astype("uint8")
        photos.append(Image.fromarray(pixels, "RGB"))
    return photos


def own_peak_rss_mb() -> tuple[float, str]:
    """This process's peak resident memory in MiB, and where the figure came from.

    ``VmHWM`` in /proc/self/status is the high-water mark of this process's own address space, which
    exec starts afresh. The parent's view (``ru_maxrss`` from ``wait4``) is not: on Linux a child
    starts from the high-water mark its parent had when it forked, so a big parent (one that has just
    built the checkpoints) shows up in every child's figure. Elsewhere (no /proc) getrusage is the
    best there is, and is labelled so.
    """
    kb = _status_kb("VmHWM")
    if kb:
        return kb[0] / 1024, "VmHWM"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak / 2**20 if sys.platform == "darwin" else peak / 1024), "getrusage"


def file_pages_mb() -> float | None:
    """The part of this process's resident memory that maps files, in MiB: ``RssFile`` (shared libraries,
    mostly) and ``RssShmem`` (files in tmpfs, shared memory); None where /proc is absent. Pages of a library
    count once mapped, and a fault may map its neighbours already in the page cache, so the figure depends on
    the host as much as on the program."""
    kb = _status_kb("RssFile", "RssShmem")
    return sum(kb) / 1024 if kb else None


def _status_kb(*fields: str) -> list[int]:
    """The values (kB) of those of ``fields`` that /proc/self/status holds; none where /proc is absent."""
    prefixes = tuple(f"{name}:" for name in fields)
    try:
        with open("/proc/self/status") as f:
            return [int(line.split()[1]) for line in f if line.startswith(prefixes)]
    except OSError:
        return []


def finish(report: ChildReport) -> ChildReport:
    """What a child adds to its report as it ends, whatever its path: its own peak memory, the file pages in
    it, and whether it had imported transformers."""
    report.peak_rss_mb, report.peak_source = own_peak_rss_mb()
    report.file_pages_mb = file_pages_mb()
    report.transformers_imported = "transformers" in sys.modules
    return report


def time_scenarios(report: ChildReport, caption_all, images) -> ChildReport:
    """The timed scenarios, the same for every path: the first caption of the first photo (its time is
    the end of "cold"), then one photo × every model, then all the photos × every model.

    ``caption_all(photos, on_caption=None)`` captions the photos with every model and returns (texts,
    new tokens); ``on_caption`` is called after each model's captions."""
    first = []
    caption_all(images[:1], on_caption=lambda: first or first.append(time.time()))
    report.first_caption_at = first[0]
    t = time.perf_counter()
    report.captions, report.one_photo_tokens = caption_all(images[:1])
    report.one_photo_seconds = time.perf_counter() - t
    t = time.perf_counter()
    _, report.eight_photos_tokens = caption_all(images)
    report.eight_photos_seconds = time.perf_counter() - t
    return report
