"""Beam search for transformers models through igcap's own loop (igcap.beam_search), with ``generate`` as
its reference.

The app's default preset decodes with beam search, which ``generate`` runs through its model call every
step: input preparation, masks, a cache object per layer reordered (cross-attention included) after every
step, and the image keys and values computed for every beam. ``beam_search.beam_search`` does generate's
bookkeeping (ported from transformers 5.24) around ``lean_decoding.DecoderStep`` on a preallocated cache,
the image keys and values once per photo. It serves igcap's light models and, through this module,
transformers models: ``beam_plan`` reads the configuration ``generate`` itself would use for the request
(ours over the model's own over the defaults) and turns it into a ``BeamRequest`` when the loop gives
generate's ids, else None (the caller then uses ``generate``); ``beam_search.beam_search`` decodes it.

tests/igcap/test_lean_beam.py checks the ids against generate (int8 and fp32, the presets, several photos,
variants, length penalties, early stopping).
"""

from __future__ import annotations

import copy

from igcap import lean_decoding
from igcap.beam_search import BeamRequest

ALLOWED = {**lean_decoding.NEUTRAL_OPTIONS}
ALLOWED.pop("num_return_sequences")  # beam search returns several sequences (the variants)


def beam_plan(model, gen_config, extras: dict | None = None) -> BeamRequest | None:
    """The request for ``model.generate(pixel_values=…, generation_config=gen_config, **extras)`` with beam
    search, or None when the loop would not give generate's ids."""
    config = lean_decoding.prepared_config(model, copy.deepcopy(gen_config), extras, "BEAM_SEARCH", ALLOWED)
    if config is None or config.low_memory:
        return None
    options, returned = lean_decoding.plan_options(config), config.num_return_sequences or 1
    if options is None or returned > config.num_beams:
        return None
    try:
        return BeamRequest(**options, num_beams=int(config.num_beams), num_return_sequences=int(returned),
                           length_penalty=float(config.length_penalty), early_stopping=config.early_stopping)
    except (TypeError, ValueError):  # an option the request cannot hold: generate decodes
        return None
