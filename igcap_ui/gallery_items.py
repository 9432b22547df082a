"""Gallery widgets: one photo with its saved captions; stars saved at once, edit (with the saved hashtag
sets, as on the Create page), favourite, delete.

Stars and the favourite switch are saved twice over, on purpose. Their on_change callbacks run first,
before the page reads the gallery, so counts are fresh and a caption deleted elsewhere is reported. But
Streamlit cuts a callback short when the browser's next click arrives while callbacks run (the first
st.session_state access raises its rerun exception, which it swallows) and never calls it again: in a
burst of clicks some ratings were lost while the page showed them (issue 12 item 3). So every drawn
widget is also compared, in the script body, with what this session last stored for it, and a
difference is stored there; a failure is said beside the widget.

That record is marked "unknown" before each save and set only after it: Streamlit can cut a callback
short right after its save committed (the next click's rerun, raised at the next st.* call), and a
record left at the value before would match a later click back to that value, whose callback Streamlit
may skip, so the page would show it while the database kept the cut-short save. And saves go in click
order, although Streamlit can run two script runs of one session at once (igcap_ui.run_order). Both
were seen in Chromium (tests/e2e/test_rating_burst.py).

Edit, favourite and delete are drawn only for what the person may change (their own, or anything for
the owner role), and the queries check it again (``owner=``), so a stale page cannot change others' rows.
"""

from __future__ import annotations

import streamlit as st

from db import repo, transaction
from igcap_ui import access, resources, run_order, text_boxes
from igcap_ui.caption_card import caption_stats, card_tools, warn_over_limits
from igcap_ui.errors import show_error, shown_errors
from igcap_ui.filters import model_label
from igcap_ui.hashtag_sets import set_buttons
from igcap_ui.plain import plain
from igcap_ui.photos import photo_row
from igcap_ui.text_boxes import text_box

CONFIRM_KEY = "gallery.confirm_delete"
_STORED = "gallery.stored"  # widget key → the value this session last stored (or read) for it
_SHOWN = "gallery.shown_text"  # stars widget key → the caption text drawn beside it by the last run
WARNINGS_KEY = "gallery.limit_warnings"  # caption id → stats of the text just saved, shown after the rerun
_EDIT_BASE = "gallery.edit_base"  # caption id → the text its edit box started from (or saved, or was shown)
_EDIT_REFUSED = "gallery.edit_refused"  # caption id → why its last save was refused, shown beside it
CONFIRM_CAPTION_KEY = "gallery.confirm_delete_caption"


def photo_block(items: list, rater: str) -> None:
    """items: GalleryItems of one photo (newest caption first)."""
    photo = items[0].photo
    identity = access.current()
    with photo_row(photo.thumbnail_jpeg, photo) as (left, right):
        with left:
            if photo.owner != identity.id:  # only the owner role sees others' photos
                st.text(f"Uploaded by {photo.owner}")
            if identity.may_change(photo.owner):
                _delete_controls(photo)
        with right:
            for i, item in enumerate(items):
                if i:
                    st.divider()
                caption_row(item, rater)


def caption_row(item, rater: str) -> None:
    caption = item.caption
    identity = access.current()
    mine = identity.may_change(caption.author)
    head = f"**{plain(model_label(caption.model_key))}**"
    if item.rating_count:
        head += f" · ★ {item.mean_stars:.1f} from {item.rating_count} rating(s)"
    st.markdown(head)
    if caption.text:
        st.text(caption.text, width="stretch")  # plain text, exactly as it will be posted (never Markdown)
    else:
        st.caption("(empty)")
    if caption.edited:
        st.caption("Model wrote:")
        st.text(caption.generated_text or "", width="stretch")
    if caption.study_id is not None:  # a study's caption: rated blind on the Rate page, changed nowhere
        st.caption("A study caption: rated blind on the Rate page, not here.")
        return
    cols = st.columns([2, 1])
    with cols[0]:
        key = f"stars.{caption.id}.{rater}"
        stored = None if item.my_stars is None else item.my_stars - 1  # the widget counts from 0
        shown = st.feedback("stars", key=key, default=stored, disabled=not rater, on_change=_rate,
                            args=(caption.id, rater, key, caption.text))
        if rater:
            texts = st.session_state.setdefault(_SHOWN, {})
            seen = texts.get(key, caption.text)  # the text beside the stars when they were clicked (the last run's)
            _store_if_changed(key, shown, stored, lambda: _save_stars(caption.id, rater, shown, seen))
            texts[key] = caption.text
    with cols[1]:
        key = f"fav.{caption.id}"
        shown = st.toggle("Favourite", value=caption.favourite, key=key, on_change=_favourite,
                          args=(caption.id, key), disabled=not mine)
        if mine:
            _store_if_changed(key, shown, caption.favourite, lambda: _save_favourite(caption.id, shown))
    if mine:
        if (refused := st.session_state.setdefault(_EDIT_REFUSED, {}).pop(caption.id, None)) is not None:
            show_error(refused)  # here, beside its caption (the save's callback would draw it atop the page)
        with st.expander("Edit caption"):
            _edit_box(caption)
        _delete_caption_controls(caption)


def _delete_caption_controls(caption) -> None:
    _confirmed_delete(
        CONFIRM_CAPTION_KEY, caption.id, f"delete_caption.{caption.id}", "🗑️ Delete caption",
        "Delete this caption and its ratings (a photo's last caption takes the photo with it, unless a study "
        "uses it).",
        "Delete this caption and its ratings? This cannot be undone. (A photo's last caption takes the photo with it, "
        "unless a study uses the photo.)",
        lambda session: repo.delete_caption(session=session, caption_id=caption.id, owner=_acting()))


def _confirmed_delete(state_key: str, item_id: int, key: str, label: str, help: str | None, question: str,
                      delete) -> None:
    """A delete button that asks first: one item at a time awaits confirmation (its id under ``state_key``)."""
    if st.session_state.get(state_key) != item_id:
        if st.button(label, key=key, help=help):
            st.session_state[state_key] = item_id
            st.rerun()
        return
    st.warning(question)
    yes, no = st.columns(2)
    if yes.button("Yes, delete", key=f"{key}.yes", type="primary"):
        with shown_errors():
            with transaction(resources.db_engine()) as session:
                delete(session)
            st.session_state.pop(state_key, None)
            st.rerun()
    if no.button("Cancel", key=f"{key}.no"):
        st.session_state.pop(state_key, None)
        st.rerun()


def _edit_box(caption) -> None:
    key = f"edit.{caption.id}"
    # What a save may replace: the text the box started from, not the caption's text as this run read it
    # (after any rerun, an edit made elsewhere would be taken as seen). An untouched box follows such an edit.
    bases = st.session_state.setdefault(_EDIT_BASE, {})
    if key not in st.session_state:
        bases[caption.id] = caption.text
    elif st.session_state[key] == bases.get(caption.id) != caption.text:
        bases[caption.id] = caption.text
        text_boxes.write(key, caption.text)
    # The box's text is its widget state once drawn (the stored text seeds it); a hashtag set's button
    # writes that state, which is what the browser then shows (igcap_ui.text_boxes).
    text = text_box("Caption text", key, caption.text, height=100)
    card_tools(text)
    set_buttons(key, current=lambda: st.session_state.get(key, caption.text),
                apply=lambda new: text_boxes.write(key, new))
    just_saved = st.session_state.setdefault(WARNINGS_KEY, {}).pop(caption.id, None)
    if just_saved is not None:
        warn_over_limits(just_saved)
    # A callback, not `if st.button(...)`: it runs even when the caption is gone from this run's list
    # (deleted in another session), so the person hears of it instead of losing the edit without a word.
    # Never disabled: a disabled button swallows the click that also commits what was just typed.
    st.button("💾 Save changes", key=f"{key}.save", on_click=_save_edit, args=(caption.id, key))


def _save_edit(caption_id: int, key: str) -> None:
    """Save the box's text, if the caption still reads what the box started from: an edit saved elsewhere
    since is not overwritten; the person is told what it reads now and keeps their text (a second save,
    made knowing it, replaces it)."""
    text, bases = st.session_state[key], st.session_state.setdefault(_EDIT_BASE, {})
    base = bases.get(caption_id)
    if text == base:
        st.toast("No changes to save.", icon="ℹ️")
        return
    try:
        with transaction(resources.db_engine()) as session:
            repo.edit_caption(session=session, caption_id=caption_id, text=text, owner=_acting(), expected=base)
    except repo.CaptionChangedError as err:
        bases[caption_id] = err.current  # now seen: the next save replaces it
        st.session_state.setdefault(_EDIT_REFUSED, {})[caption_id] = err
        return
    except Exception as err:  # noqa: BLE001 - the page must never show a traceback (a deleted caption, too)
        show_error(err)
        st.caption("Your edited text, to copy:")
        st.code(text, language=None, wrap_lines=True)
        return
    bases[caption_id] = text
    st.toast("Saved.", icon="💾")
    st.session_state.setdefault(WARNINGS_KEY, {})[caption_id] = caption_stats(text)


def _store_if_changed(key: str, shown, stored, save) -> None:
    """Store what the widget shows when it differs from what this session last stored for it.

    ``stored`` (the database's value read at the start of this run) seeds the record the first time
    the widget is drawn; later it is not consulted, so a change made in another tab is not overwritten
    by a widget nobody touched here."""
    last = st.session_state.setdefault(_STORED, {})
    last.setdefault(key, stored)
    if shown != last[key]:
        _saved_as(last, key, shown, save)


_UNKNOWN = object()  # what a record holds while its save runs: equal to no value a widget can show


def _saved_as(last: dict, key: str, value, save) -> None:
    """Run ``save`` and record ``value`` as stored for ``key``, in click order (see igcap_ui.run_order).

    No st.* call comes between the save and the record, and the record says "unknown" until then, so a
    save cut short is saved again by the next run's body."""
    with run_order.in_click_order():
        last[key] = _UNKNOWN
        try:
            save()
        except Exception as err:  # noqa: BLE001 - said beside the widget; tried again on the next run
            failed = err
        else:
            last[key] = value
            return
    show_error(failed)  # outside the lock: st.error is a yield point


def _rate(caption_id: int, rater: str, key: str, shown_text: str) -> None:
    # Either st.session_state access may raise Streamlit's rerun exception: the page body then saves.
    last, value = st.session_state.setdefault(_STORED, {}), st.session_state.get(key)
    _saved_as(last, key, value, lambda: _save_stars(caption_id, rater, value, shown_text))


def _favourite(caption_id: int, key: str) -> None:
    last, value = st.session_state.setdefault(_STORED, {}), st.session_state[key]
    _saved_as(last, key, value, lambda: _save_favourite(caption_id, value))


def _save_stars(caption_id: int, rater: str, value: int | None, shown_text: str) -> None:
    """Store the stars as given to ``shown_text``, the caption as the rater's page showed it."""
    with transaction(resources.db_engine()) as session:
        if value is None:
            repo.unrate(session=session, caption_id=caption_id, rater=rater)
        else:
            repo.rate(session=session, caption_id=caption_id, rater=rater, stars=value + 1,
                      owner=access.current().owner_filter, shown_text=shown_text)


def _save_favourite(caption_id: int, value: bool) -> None:
    with transaction(resources.db_engine()) as session:
        repo.set_favourite(session=session, caption_id=caption_id, favourite=value, owner=_acting())


def _delete_controls(photo) -> None:
    _confirmed_delete(
        CONFIRM_KEY, photo.id, f"delete.{photo.id}", "🗑️ Delete photo", None,
        "Delete this photo with all its captions and their ratings? This cannot be undone.",
        lambda session: repo.delete_photo(session=session, photo_id=photo.id, owner=_acting()))


def _acting() -> str | None:
    """The owner filter for changes: None (anything) for the owner role, else the person's own rows."""
    return access.current().owner_filter
