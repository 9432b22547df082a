"""More captions like one the person liked: the same decoding settings, sampled again with a new seed.

Greedy decoding and beam search give the same caption every time, so "more like this" samples: every
other setting (length, repetition controls, start words, emoji, temperature, top-k, top-p) stays.
"""

from __future__ import annotations

import secrets

from igcap.decoding import SEED_MAX

MORE_LIKE_THIS = 3


def more_like_this(settings, count: int = MORE_LIKE_THIS, seed: int | None = None):
    """DecodingSettings for ``count`` new variants; the seed is recorded so they can be written again."""
    seed = secrets.randbelow(SEED_MAX + 1) if seed is None else seed
    return settings.replace(strategy="sample", num_variants=count, seed=seed)
