"""The decoding panel: a preset picker plus an "Advanced" expander with every DecodingSettings knob.

Widget keys include the preset's name, so picking another preset starts every knob from that preset.
Validation stays in DecodingSettings: the panel only shows its DecodingError message.
"""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from igcap.decoding import DEFAULT_PRESET, FIELD_HELP, PRESETS, STRATEGIES, DecodingError, DecodingSettings

LABELS = {
    "strategy": "Strategy", "num_beams": "Beams", "temperature": "Temperature", "top_k": "Top-k", "top_p": "Top-p",
    "repetition_penalty": "Repetition penalty", "no_repeat_ngram_size": "No-repeat n-gram size",
    "length_penalty": "Length penalty", "min_new_tokens": "Minimum length (tokens)",
    "max_new_tokens": "Maximum length (tokens)", "num_variants": "Variants per model", "seed": "Seed",
    "drop_fragment": "Drop an unfinished last sentence",
}
FLOAT_STEP = {"temperature": 0.05, "top_p": 0.01, "repetition_penalty": 0.05, "length_penalty": 0.1}
PRESET_KEY = "decoding.preset"


def decoding_panel() -> DecodingSettings | None:
    """Draw the panel; return valid settings, or None after showing why the chosen ones cannot work."""
    names = list(PRESETS)
    preset = st.selectbox("Style", names, index=names.index(DEFAULT_PRESET), key=PRESET_KEY,
                          format_func=str.capitalize,
                          help="Balanced: safe beam search. Creative: varied sampled captions, three each. "
                               "Precise: short literal captions. Fast: one greedy pass.")
    base = PRESETS[preset]
    values = {}
    with st.expander("Advanced decoding settings"):
        columns = st.columns(2)
        for i, f in enumerate(fields(DecodingSettings)):
            with columns[i % 2]:
                values[f.name] = _knob(f.name, getattr(base, f.name), f"decoding.{preset}.{f.name}")
    try:
        return DecodingSettings(**values)
    except DecodingError as err:
        st.error(f"These decoding settings cannot work: {err}", icon="⚠️")
        return None


def _knob(name: str, default, key: str):
    label, help_text = LABELS.get(name, name), FIELD_HELP.get(name)
    if name == "strategy":
        return st.selectbox(label, STRATEGIES, index=STRATEGIES.index(default), key=key, help=help_text)
    if name == "seed":
        value = st.number_input(label, value=default, min_value=0, step=1, key=key, help=help_text,
                                placeholder="empty = new captions each time")
        return None if value is None else int(value)
    if isinstance(default, bool):
        return st.checkbox(label, value=default, key=key, help=help_text)
    if isinstance(default, int):
        return int(st.number_input(label, value=default, step=1, key=key, help=help_text))
    return float(st.number_input(label, value=float(default), step=FLOAT_STEP.get(name, 0.05), format="%.2f",
                                 key=key, help=help_text))
