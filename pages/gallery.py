"""Gallery: saved photos and captions, newest first; rate, edit, delete, page through."""

import streamlit as st

from db import repo, transaction
from igcap_ui import access, resources
from igcap_ui.errors import shown_errors
from igcap_ui.filters import filter_row
from igcap_ui.gallery_items import photo_block
from igcap_ui.rater import current_rater

PAGE_KEY = "gallery.page"

identity = access.require("can_create")  # a creator sees their own photos, an owner everyone's
st.title("🖼️ Gallery")
rater = current_rater()
if not rater:
    st.info("Enter your name in the sidebar to rate captions.", icon="👤")

with shown_errors():
    filters = filter_row("gallery", study_choice=True, owner=identity.owner_filter)
    per_page = st.session_state.get("gallery.per_page", 12)  # photos, each with all its captions
    if filters is not None:
        with transaction(resources.db_engine(), write=False) as session:
            page = repo.gallery(session=session, filters=filters, page=st.session_state.get(PAGE_KEY, 1),
                                per_page=per_page, rater=rater or None)
        st.caption(f"{page.total} caption(s) of {page.photos} photo(s) · page {page.page} of {page.pages}")
        if not page.items:
            st.info("Nothing saved yet (or nothing matches the filters). Save captions on the Create page.")
        groups: dict[int, list] = {}
        for item in page.items:
            groups.setdefault(item.photo.id, []).append(item)
        for items in groups.values():
            photo_block(items, rater)
        if st.session_state.get(PAGE_KEY, 1) != page.page:  # the filters shrank the number of pages
            st.session_state[PAGE_KEY] = page.page
        left, right = st.columns([3, 1])
        with left:
            st.pagination(page.pages, key=PAGE_KEY)
        right.selectbox("Photos per page", [12, 24, 48, 96], key="gallery.per_page")
