"""glibc's allocation policy while big transient buffers come and go (loading, packing int8 matrices)."""

from __future__ import annotations

import functools
import threading

_ACTIVE = [0]  # blocks inside lean_malloc now (a load and the background packer may overlap)
_LOCK = threading.Lock()


class lean_malloc:
    """While loading, glibc hands big blocks straight back to the system when freed.

    Each float tensor read during loading lives briefly; from the heap, the freed blocks stay counted
    in the process's memory (fragmentation: about +50% per model here). Blocks of 256 KB and more are
    mapped and unmapped directly meanwhile; afterwards blocks of 32 MB and more still are (glibc's own
    upper bound for its moving threshold), and the heap is trimmed. 256 KB, not 1 MB: an int8 cache load
    reads a model's 768 × 768 matrices (576 KB) in reader threads, and the packer frees them in another
    thread once packed; from the readers' heaps, those freed blocks stayed counted until the last pack
    (about 50 MB per model, the ~200 MB jump of four loads' packing; issue 15).
    Does nothing where glibc is absent (macOS, musl). Nested or overlapping uses (a load while the
    background packer runs) keep the policy until the last one ends.

    Setting a threshold switches glibc's moving thresholds off for good, trimming's included: left at
    its initial 128 KB, every activation freed at the top of the heap (a 19 MB GELU output in the image
    encoder) went back to the system and its pages were faulted in again by the next layer, thousands
    of times per caption (eight photos × four models: 4.6 s → 3.3 s once kept; issue 15). So afterwards
    the heap keeps up to ``KEEP_FREED`` free, and ``caption_heap`` hands it back when captioning pauses.
    """

    M_MMAP_THRESHOLD, M_TRIM_THRESHOLD = -3, -1
    LOADING, AFTER = 256 << 10, 32 << 20  # after loading: only blocks ≥ 32 MB (glibc's dynamic maximum) mapped
    KEEP_FREED = 256 << 20  # above a batch of eight photos' working memory (about 200 MB)

    def __enter__(self):
        self.libc = _glibc()
        with _LOCK:
            _ACTIVE[0] += 1
            if self.libc is not None and _ACTIVE[0] == 1:
                self.libc.mallopt(self.M_MMAP_THRESHOLD, self.LOADING)
        return self

    def __exit__(self, *exc):
        with _LOCK:
            _ACTIVE[0] -= 1
            if self.libc is not None and _ACTIVE[0] == 0:
                self.libc.mallopt(self.M_MMAP_THRESHOLD, self.AFTER)
                self.libc.mallopt(self.M_TRIM_THRESHOLD, self.KEEP_FREED)
                self.libc.malloc_trim(0)


_CAPTIONING = [0]  # caption_heap blocks running now, in any thread


class caption_heap:
    """Around a captioning job: when the last job running ends, the heap's free memory goes back to
    the system (``malloc_trim``), so an idle process holds only what is live. Within a job, freed
    activations stay for the next layer (see ``lean_malloc``). Does nothing without glibc."""

    def __enter__(self):
        with _LOCK:
            _CAPTIONING[0] += 1
        return self

    def __exit__(self, *exc):
        with _LOCK:
            _CAPTIONING[0] -= 1
            last = _CAPTIONING[0] == 0
        libc = _glibc()
        if last and libc is not None:
            libc.malloc_trim(0)


@functools.cache
def _glibc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_between_models() -> None:
    """Between two models of a captioning job: when no other job is running, the heap's free memory goes
    back to the system now rather than when the job ends.

    A model's working memory (eight photos at full size: 116 MB of image keys and values, the encoder's
    activations) is freed when it ends. Kept for the next model, its same-sized blocks did not always land
    in that room (other blocks live on between models: results, the encoder memo), and the heap grew by
    both: eight photos × four distinct models, in-process peak 1,621 / 1,610 / 1,601 MiB, with this
    1,603 / 1,541 / 1,550 (issue 15; the next model faults its pages in again, within the noise of its time).
    Another job running would lose its kept activations to the trim, so then it waits for ``caption_heap``."""
    with _LOCK:
        alone = _CAPTIONING[0] == 1
    libc = _glibc()
    if alone and libc is not None:
        libc.malloc_trim(0)
