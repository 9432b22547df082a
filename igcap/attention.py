"""The decoder's attention, computed on one thread: captions that do not depend on the number of threads.

PyTorch's CPU attention kernel (SDPA) computes a query of one or two tokens — every decoding step —
through a matrix-vector path whose rounding depends on how many threads run it: the same inputs give
results that differ in the last bits on one thread and on two (tests/igcap/test_attention.py, at the
full-size model's shapes). That is enough to change a greedy caption now and then: on the benchmark's
full-size models, two of four models' captions of eight photos changed between one and two threads.
Every other operator of a decoding step gives the same bits on any number of threads here (int8
products, layer norms, the rescored head; longer queries such as the image encoder's 197 patches: tested).

So igcap's decoders compute the attention of a small batch — at most ``ONE_THREAD_ROWS`` rows: a photo
with its beams, a few photos greedy — on one thread (``ONE_THREAD_SDPA``): such a caption is then the same
on one thread or two, alone or beside other models (the captioner's lanes, which run two models at once on
one thread each for exactly these batches, rely on it). It costs nothing there (one photo × four
full-size models 1.94 s pinned against 1.92 s, in process; per call a step's self-attention 21 → 14 µs,
its cross-attention 43 → 45 µs). Larger batches keep every thread: pinned, eight photos × four models took
7.40 s against 6.28 s (the image keys and values of eight photos, 116 MB a step, read by one core); their
captions may still change with ``IGCAP_THREADS``, as a batch's captions change with its photos (the int8
products quantize a batch's activations together).

For transformers models the implementation is registered with transformers (``AttentionInterface`` and
its mask) under ``ONE_THREAD_SDPA``, so ``generate`` and the lean loops do the same arithmetic; igcap's
light models name it in their config. A model whose decoder uses another implementation (eager, a GPU
kernel) keeps it.
"""

from __future__ import annotations

import threading

ONE_THREAD_SDPA = "igcap_sdpa"  # the decoder's attention implementation in every model igcap loads (CPU)
ONE_THREAD_ROWS = 5  # batches of at most this many rows (photos × beams) attend on one thread

_REGISTERED = False
_REGISTER_LOCK = threading.Lock()


def on_one_thread(rows: int) -> bool:
    """Whether a batch of ``rows`` rows (photos × beams) attends on one thread: the rule, in one place."""
    return rows <= ONE_THREAD_ROWS


def one_thread_sdpa_forward(module, query, *args, **kwargs):
    """transformers' SDPA attention forward, on one torch thread for at most ONE_THREAD_ROWS rows."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from igcap.threads import torch_threads

    if not on_one_thread(query.shape[0]):
        return sdpa_attention_forward(module, query, *args, **kwargs)
    with torch_threads(1):
        return sdpa_attention_forward(module, query, *args, **kwargs)


def register() -> str:
    """Make ``ONE_THREAD_SDPA`` known to transformers (its attention function and its mask: SDPA's); once."""
    global _REGISTERED
    with _REGISTER_LOCK:
        if not _REGISTERED:
            from transformers import AttentionInterface
            from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

            AttentionInterface.register(ONE_THREAD_SDPA, one_thread_sdpa_forward)
            AttentionMaskInterface.register(ONE_THREAD_SDPA, sdpa_mask)
            _REGISTERED = True
    return ONE_THREAD_SDPA


def use_one_thread_attention(model) -> None:
    """A transformers captioner on the CPU whose decoder attends through SDPA: through ``ONE_THREAD_SDPA``
    from now on (the same values but for the thread-dependent rounding). Anything else is left as it is."""
    decoder = getattr(model, "decoder", None)
    config = getattr(decoder, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return
    if any(p.device.type != "cpu" for p in decoder.parameters()):
        return
    config._attn_implementation = register()
