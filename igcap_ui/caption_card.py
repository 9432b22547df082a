"""One card per photo per model: editable text, Instagram counters, preview, copy view, save, regenerate.

Caption text is shown as plain text (st.text / st.code), exactly as it will be posted: never as Markdown, so
``:rainbow:`` stays ``:rainbow:`` and line breaks stay. Counters follow the text box's committed value:
st.text_area (Streamlit 1.67) commits on blur or Ctrl+Enter and has no per-keystroke option.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from db import repo
from igcap.instagram import InstagramStats, instagram_stats
from igcap.variants import MORE_LIKE_THIS
from igcap_ui import resources, run_order, text_boxes
from igcap_ui.errors import show_failure, shown_errors
from igcap_ui.hashtag_sets import set_buttons
from igcap_ui.plain import plain
from igcap_ui.results import Card
from igcap_ui.text_boxes import text_box

COMMIT_HINT = "Counts update when you click outside the box or press Ctrl+Enter."
SAVED_NOTES = "create.saved_notes"  # text box key → (stored again, stats) of a save, said on the run after it


def caption_card(card: Card, label: str, on_save: Callable, on_regenerate: Callable, on_more: Callable,
                 stored: dict | None = None) -> None:
    """Draw card; on_save(card, result, text) -> (caption id, stored again after a delete), on_regenerate(card)
    replaces it, on_more(card) adds three variants written with the card's own settings and a new seed.
    ``stored``: caption id → the text the gallery holds now (a deleted one missing), None when unknown."""
    with st.container(border=True):
        st.markdown(f"**{plain(label)}**")
        if card.failure is not None:
            show_failure(card.failure)
        elif not card.results:
            st.info("This model wrote nothing for this photo; try another style.")
        if card.note:
            st.info(card.note, icon="🔁")
        for result in card.results:
            _variant(card, result, len(card.results), on_save, stored)
        regenerate, more = st.columns(2)
        if regenerate.button("🔄 Regenerate", key=f"card{card.number}.regenerate",
                             help="Write this model's caption again with the current decoding settings. "
                                  "Balanced, Precise and Fast are deterministic (same photo, same caption); "
                                  "for another caption use Creative or \"more like this\"."):
            on_regenerate(card)
        if card.settings and more.button(f"🎲 {MORE_LIKE_THIS} more like this", key=f"card{card.number}.more",
                                         help="Three more captions from this model with this card's settings, "
                                              "sampled with a new seed (greedy and beam search would repeat "
                                              "themselves)."):
            on_more(card)


def _variant(card: Card, result, count: int, on_save: Callable, stored: dict | None) -> None:
    key = card.text_key(result.variant)
    title = f"Variant {result.variant + 1}" if count > 1 else "Caption"
    if result.variant in card.more_settings:
        title += " (more like this)"
    # Once drawn, the box's text is its widget state (the card's text seeds it again on a page that did not
    # draw it); a hashtag set's button writes that state, which the browser then shows (igcap_ui.text_boxes).
    text = text_box(title, key, card.text(result), height=100, on_change=_remember_edit,
                    args=(card, result.variant, key))
    stats = card_tools(text, result.seconds)
    set_buttons(key, current=lambda: st.session_state.get(key, card.text(result)),
                apply=lambda new: _replace_text(card, result.variant, key, new))
    done = result.variant in card.saved_ids
    label = "⭐ Update saved caption" if done else "⭐ Save as favourite"
    saved_notes = st.session_state.setdefault(SAVED_NOTES, {})
    if st.button(label, key=f"{key}.save", help="Store the photo and this caption (as edited) in the gallery."):
        with shown_errors():
            saved_notes[key] = (save_card(card, result, text, on_save), stats)
            st.rerun()  # drawn again with what is now true of it: "Update saved caption", "Saved in the gallery"
    if (note := saved_notes.pop(key, None)) is not None:
        again, saved_stats = note
        if again:
            st.toast("The caption saved before had been deleted; it is saved again as a new one.", icon="⭐")
        else:
            st.toast("Saved to the gallery.", icon="⭐")
        warn_over_limits(saved_stats)
    if result.variant in card.saved_ids:
        st.caption(saved_label(card.saved_texts.get(result.variant), text,
                               None if stored is None else stored.get(card.saved_ids[result.variant], _DELETED)))


_DELETED = object()  # a saved caption the gallery no longer holds


def saved_label(saved: str | None, text: str, now) -> str:
    """What a card says of the caption it saved: ``saved`` is the text it saved (or last saw), ``text`` the
    box's, ``now`` the gallery's (_DELETED; None when unknown: then the card goes by what it saved)."""
    if now is _DELETED:
        return "🗑️ Deleted from the gallery since you saved it: saving stores it again."
    if (saved if now is None else now) == text:
        return "✅ Saved in the gallery"
    if now is not None and now != saved:
        return ("✏️ Changed in the Gallery or in another tab since you saved it: the gallery holds other text now. "
                "Saving shows it first, a second press replaces it.")
    return "✏️ Unsaved changes: the gallery still holds the earlier text. Save again to update it."


def _replace_text(card: Card, variant: int, key: str, text: str) -> None:
    # In a callback: the card keeps the text, and the widget's state is set to it. (Dropping the state so the
    # widget started again from the card's text worked in AppTest, but a browser keeps the text it shows:
    # the widget's identity is its key, so a new default never reaches it.)
    card.edits[variant] = text
    text_boxes.write(key, text)


def save_card(card: Card, result, text: str, on_save) -> bool:
    """Save one variant of a card through ``on_save`` (igcap_ui.saving.save_generated); True when a caption
    saved before had been deleted and was stored again.

    In click order for the browser session (igcap_ui.run_order): a double click starts a second run while
    the first is still saving; without the lock both found no saved id on the card and stored the caption
    twice. The second run now waits, finds the first one's id and updates that caption."""
    with run_order.in_click_order():
        card.edits[result.variant] = text
        try:
            card.saved_ids[result.variant], again = on_save(card, result, text)
        except repo.CaptionChangedError as err:
            # Edited elsewhere since this card saved it: nothing was saved, and the person has now seen the
            # new text (the message quotes it), so pressing Save again replaces it.
            card.saved_texts[result.variant] = err.current
            raise
        card.saved_texts[result.variant] = text
    return again


def _remember_edit(card: Card, variant: int, key: str) -> None:
    # Streamlit forgets a widget's value on pages that do not draw it; the card keeps the edit.
    card.edits[variant] = st.session_state[key]


def caption_stats(text: str) -> InstagramStats:
    """text against the configured Instagram limits (igcap.instagram, IGCAP_INSTAGRAM_* settings)."""
    return instagram_stats(text, resources.settings().instagram)


def card_tools(text: str, seconds: float | None = None) -> InstagramStats:
    """What every caption box gets, generated or hand-written: counters, the preview and a copy view."""
    stats = counters(text, seconds)
    with st.expander("Preview and copy"):
        st.caption("Under the photo (collapsed, as Instagram shows it):")
        st.text(stats.preview, width="stretch")
        st.caption("Copy (line breaks kept):")
        st.code(text, language=None, wrap_lines=True)
    return stats


def counters(text: str, seconds: float | None = None) -> InstagramStats:
    """Characters, hashtags and (when there are any) @mentions against Instagram's limits ("6 / 5 hashtags"), red
    when over; the stats."""
    stats = caption_stats(text)
    chars = f"{stats.chars:,} / {stats.limits.max_chars:,} characters"
    tags = f"{stats.hashtags} / {stats.limits.max_hashtags} hashtags"
    parts = [f":red[{chars}]" if stats.over_chars else chars, f":red[{tags}]" if stats.over_hashtags else tags]
    if stats.mentions:
        mentions = f"{stats.mentions} / {stats.limits.max_mentions} @mentions"
        parts.append(f":red[{mentions}]" if stats.over_mentions else mentions)
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    st.caption(" · ".join(parts), help=COMMIT_HINT)
    return stats


def warn_over_limits(stats: InstagramStats) -> None:
    """After a save: say which of Instagram's limits the saved caption breaks (it is saved all the same)."""
    if stats.warning():
        st.warning(f"Saved, but {stats.warning()}", icon="⚠️")
