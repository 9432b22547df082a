"""The decoding panel: a preset picker plus an "Advanced" expander with every DecodingSettings knob.

Widget keys include the preset's name, so picking another preset starts every knob from that preset.
Validation stays in DecodingSettings: the panel only shows its DecodingError message.
"""

from __future__ import annotations

import streamlit as st

from igcap.decoding import DEFAULT_PRESET, KNOBS, PRESETS, DecodingError, DecodingSettings, Knob

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
        for i, (name, knob) in enumerate(KNOBS.items()):
            with columns[i % 2]:
                values[name] = _widget(knob, getattr(base, name), f"decoding.{preset}.{name}")
    try:
        return DecodingSettings(**values)
    except DecodingError as err:
        st.error(f"These decoding settings cannot work: {err}", icon="⚠️")
        return None


def _widget(knob: Knob, default, key: str):
    """The widget a Knob describes: a select box, a checkbox, or a number input."""
    label, help_text = knob.label, knob.help
    if knob.choices:
        return st.selectbox(label, knob.choices, index=knob.choices.index(default), key=key, help=help_text)
    if knob.type is bool:
        return st.checkbox(label, value=default, key=key, help=help_text)
    if knob.optional:
        value = st.number_input(label, value=default, min_value=knob.low, step=1, key=key, help=help_text,
                                placeholder="empty = new captions each time")
        return None if value is None else knob.type(value)
    if knob.type is int:
        return int(st.number_input(label, value=default, step=1, key=key, help=help_text))
    return float(st.number_input(label, value=float(default), step=knob.step or 0.05, format="%.2f",
                                 key=key, help=help_text))
