"""Gallery widgets: one photo with its saved captions; stars saved at once, edit, favourite, delete."""

from __future__ import annotations

import streamlit as st

from db import repo, transaction
from igcap_ui import resources
from igcap_ui.caption_card import counters, escape_markdown, warn_over_limits
from igcap_ui.errors import shown_errors
from igcap_ui.filters import model_label
from igcap_ui.photos import photo_row

CONFIRM_KEY = "gallery.confirm_delete"
WARNINGS_KEY = "gallery.limit_warnings"  # caption id → stats of the text just saved, shown after the rerun


def photo_block(items: list, rater: str) -> None:
    """items: GalleryItems of one photo (newest caption first)."""
    photo = items[0].photo
    with photo_row(photo.thumbnail_jpeg, photo) as (left, right):
        with left:
            _delete_controls(photo)
        with right:
            for i, item in enumerate(items):
                if i:
                    st.divider()
                caption_row(item, rater)


def caption_row(item, rater: str) -> None:
    caption = item.caption
    head = f"**{escape_markdown(model_label(caption.model_key))}**"
    if item.rating_count:
        head += f" · ★ {item.mean_stars:.1f} from {item.rating_count} rating(s)"
    st.markdown(head)
    st.markdown(escape_markdown(caption.text).replace("\n", "  \n") or "_(empty)_")
    if caption.edited:
        st.caption(f"Model wrote: {escape_markdown(caption.generated_text)}")
    cols = st.columns([2, 1])
    with cols[0]:
        key = f"stars.{caption.id}.{rater}"
        st.feedback("stars", key=key, default=None if item.my_stars is None else item.my_stars - 1,
                    disabled=not rater, on_change=_rate, args=(caption.id, rater, key))
    cols[1].toggle("Favourite", value=caption.favourite, key=f"fav.{caption.id}",
                   on_change=_favourite, args=(caption.id, f"fav.{caption.id}"))
    with st.expander("Edit caption"):
        _edit_box(caption)


def _edit_box(caption) -> None:
    key = f"edit.{caption.id}"
    text = st.text_area("Caption text", value=caption.text, key=key, height=100)
    stats = counters(text)
    just_saved = st.session_state.setdefault(WARNINGS_KEY, {}).pop(caption.id, None)
    if just_saved is not None:
        warn_over_limits(just_saved)
    if st.button("💾 Save changes", key=f"{key}.save", disabled=text == caption.text):
        with shown_errors():
            with transaction(resources.db_engine()) as session:
                repo.edit_caption(session=session, caption_id=caption.id, text=text)
            st.session_state[WARNINGS_KEY][caption.id] = stats
            st.rerun()


def _rate(caption_id: int, rater: str, key: str) -> None:
    value = st.session_state.get(key)
    with shown_errors(), transaction(resources.db_engine()) as session:
        if value is None:
            repo.unrate(session=session, caption_id=caption_id, rater=rater)
        else:
            repo.rate(session=session, caption_id=caption_id, rater=rater, stars=value + 1)


def _favourite(caption_id: int, key: str) -> None:
    with shown_errors(), transaction(resources.db_engine()) as session:
        repo.set_favourite(session=session, caption_id=caption_id, favourite=st.session_state[key])


def _delete_controls(photo) -> None:
    if st.session_state.get(CONFIRM_KEY) != photo.id:
        if st.button("🗑️ Delete photo", key=f"delete.{photo.id}"):
            st.session_state[CONFIRM_KEY] = photo.id
            st.rerun()
        return
    st.warning("Delete this photo with all its captions and their ratings? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete", key=f"delete.{photo.id}.yes", type="primary"):
        with shown_errors():
            with transaction(resources.db_engine()) as session:
                repo.delete_photo(session=session, photo_id=photo.id)
            st.session_state.pop(CONFIRM_KEY, None)
            st.rerun()
    if no.button("Cancel", key=f"delete.{photo.id}.no"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()
