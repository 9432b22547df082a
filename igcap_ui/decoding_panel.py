"""The decoding panel: a style (preset) and a length picker, the creator knobs (Start with…, Emoji), and an
"Advanced" expander with every other DecodingSettings knob, all generated from the knobs' metadata; a knob the
chosen strategy does not read (temperature under beam search, variants under greedy decoding) is greyed out, as
it would change nothing, and a line under them says why. Strategies are named in words (STRATEGY_WORDS).

Advanced widget keys include the preset's name (and a chosen length), so picking another starts every
advanced knob from it; the creator knobs keep what the person typed.
Validation stays in DecodingSettings: the panel only shows its DecodingError message.
"""

from __future__ import annotations

import streamlit as st

from igcap.decoding import (DEFAULT_PRESET, KNOBS, PRESETS, STRATEGY_WORDS, DecodingError, DecodingSettings, Knob,
                            unused_knobs)
from igcap.lengths import LENGTHS
from igcap_ui.plain import plain

PRESET_KEY = "decoding.preset"
LENGTH_KEY = "decoding.length"
STYLE_LENGTH = "style"  # the length the chosen style sets
KEEP = "session"  # Streamlit keeps these values while the person visits other pages (persist_state)


def decoding_panel() -> DecodingSettings | None:
    """Draw the panel; return valid settings, or None after showing why the chosen ones cannot work."""
    names = list(PRESETS)
    preset = st.selectbox("Style", names, index=names.index(DEFAULT_PRESET), key=PRESET_KEY,
                          format_func=str.capitalize, persist_state=KEEP,
                          help="Balanced: safe beam search. Creative: varied sampled captions, three each. "
                               "Precise: short literal captions. Fast: one greedy pass.")
    length = st.selectbox("Length", [STYLE_LENGTH, *LENGTHS], key=LENGTH_KEY,
                          format_func=lambda n: "As the style sets it" if n == STYLE_LENGTH else LENGTHS[n].label,
                          help="Token limits for the caption; the characters are an estimate (about 4 per token).",
                          persist_state=KEEP)
    base = PRESETS[preset] if length == STYLE_LENGTH else LENGTHS[length].apply(PRESETS[preset])
    values = {}
    creator = {name: knob for name, knob in KNOBS.items() if knob.creator}  # kept when the style changes
    for column, (name, knob) in zip(st.columns(len(creator)), creator.items()):
        with column:
            values[name] = _widget(knob, getattr(base, name), f"decoding.{name}")
    # Advanced keys name the style (and a chosen length): picking another starts every knob from it.
    prefix = f"decoding.{preset}." if length == STYLE_LENGTH else f"decoding.{preset}.{length}."
    with st.expander("Advanced decoding settings"):
        advanced = [(name, knob) for name, knob in KNOBS.items() if not knob.creator]
        for i, (name, knob) in enumerate(advanced):  # the strategy first: a knob it does not read is greyed out
            if i % 2 == 0:  # a row per pair: on a phone the rows stack in order (two columns stacked whole put
                columns = st.columns(2)  # Beams seven boxes below Strategy)
            with columns[i % 2]:
                unused = bool(unused_knobs(values.get("strategy", base.strategy), [name]))
                values[name] = _widget(knob, getattr(base, name), prefix + name, disabled=unused,
                                       words=STRATEGY_WORDS if name == "strategy" else None)
        strategy = values.get("strategy", base.strategy)
        if strategy in STRATEGY_WORDS and unused_knobs(strategy, [name for name, _ in advanced]):
            st.caption(f"Greyed out: {STRATEGY_WORDS[strategy]} does not use these.")
    try:
        return DecodingSettings(**values)
    except DecodingError as err:
        st.error(f"These decoding settings cannot work: {plain(err)}", icon="⚠️")
        return None


def _widget(knob: Knob, default, key: str, disabled: bool = False, words: dict[str, str] | None = None):
    """The widget a Knob describes: a select box, a checkbox, a text box or a number input (``disabled``: shown
    greyed out, for a knob the chosen strategy does not read; ``words``: what a select box shows for each
    choice, the value staying the choice)."""
    label, help_text = knob.label, knob.help
    if knob.type is str and not knob.choices:
        return st.text_input(label, value=default, key=key, help=help_text, max_chars=int(knob.high or 1000),
                             placeholder=knob.placeholder, persist_state=KEEP, disabled=disabled)
    if knob.choices:
        return st.selectbox(label, knob.choices, index=knob.choices.index(default), key=key, help=help_text,
                            format_func=lambda choice: (words or {}).get(choice, choice), persist_state=KEEP,
                            disabled=disabled)
    if knob.type is bool:
        return st.checkbox(label, value=default, key=key, help=help_text, persist_state=KEEP, disabled=disabled)
    if knob.optional:
        value = st.number_input(label, value=default, min_value=knob.low, max_value=knob.high, step=1, key=key,
                                help=help_text, placeholder=knob.placeholder, persist_state=KEEP, disabled=disabled)
        return None if value is None else knob.type(value)
    if knob.type is int:
        return int(st.number_input(label, value=default, step=1, key=key, help=help_text, persist_state=KEEP,
                                   disabled=disabled))
    return float(st.number_input(label, value=float(default), step=knob.step or 0.05, format="%.2f",
                                 key=key, help=help_text, persist_state=KEEP, disabled=disabled))
