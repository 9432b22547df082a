"""One card per photo per model: editable text, Instagram counters, preview, copy view, save, regenerate."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from igcap.text import CAPTION_LIMIT, HASHTAG_LIMIT, instagram_stats
from igcap_ui.errors import shown_errors
from igcap_ui.plain import plain
from igcap_ui.results import Card, saved

def caption_card(card: Card, label: str, on_save: Callable, on_regenerate: Callable) -> None:
    """Draw card; on_save(card, result, text) -> (caption id, stored again after a delete),
    on_regenerate(card) replaces it."""
    with st.container(border=True):
        st.markdown(f"**{plain(label)}**")
        if card.failure is not None:
            st.error(f"{card.failure.message} {card.failure.hint or ''}".strip(), icon="⚠️")
        elif not card.results:
            st.info("This model wrote nothing for this photo; try another style.")
        for result in card.results:
            _variant(card, result, len(card.results), on_save)
        if st.button("🔄 Regenerate", key=f"card{card.number}.regenerate",
                     help="Write this model's caption again with the current decoding settings."):
            on_regenerate(card)


def _variant(card: Card, result, count: int, on_save: Callable) -> None:
    key = card.text_key(result.variant)
    title = f"Variant {result.variant + 1}" if count > 1 else "Caption"
    text = st.text_area(title, value=card.text(result), key=key, height=100, on_change=_remember_edit,
                        args=(card, result.variant, key))
    counters(text, result.seconds)
    with st.expander("Preview and copy"):
        st.markdown(f"**Under the photo:** {plain(instagram_stats(text).preview)}")
        st.code(text, language=None, wrap_lines=True)
    done = saved().get(key)
    label = "⭐ Update saved caption" if done else "⭐ Save as favourite"
    if st.button(label, key=f"{key}.save", help="Store the photo and this caption (as edited) in the gallery."):
        with shown_errors():
            saved()[key], again = on_save(card, result, text)
            if again:
                st.toast("The caption saved before had been deleted; it is saved again as a new one.", icon="⭐")
            else:
                st.toast("Saved to the gallery.", icon="⭐")
    if saved().get(key):
        st.caption("✅ Saved in the gallery")


def _remember_edit(card: Card, variant: int, key: str) -> None:
    # Streamlit forgets a widget's value on pages that do not draw it; the card keeps the edit.
    card.edits[variant] = st.session_state[key]


def counters(text: str, seconds: float | None = None) -> None:
    """Characters against 2,200 and hashtags against 30, red when over."""
    stats = instagram_stats(text)
    chars = f"{stats.chars:,} / {CAPTION_LIMIT:,} characters"
    tags = f"{stats.hashtags} / {HASHTAG_LIMIT} hashtags"
    parts = [f":red[{chars}]" if stats.over_chars else chars, f":red[{tags}]" if stats.over_hashtags else tags]
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    st.caption(" · ".join(parts))

