"""Gallery: saved photos and captions, newest first; rate, edit, delete, page through."""

import streamlit as st

from db import repo, transaction
from igcap_ui import access, resources
from igcap_ui.errors import shown_errors
from igcap_ui.filters import KEEP, filter_row
from igcap_ui.gallery_items import photo_block
from igcap_ui.rater import current_rater

PAGE_KEY = "gallery.page"
PER_PAGE_KEY = "gallery.per_page"
SHOWN_KEY = "gallery.shown"  # the filters and page size the page number belongs to

identity = access.require("can_create")  # a creator sees their own photos, an owner everyone's
st.title("🖼️ Gallery")
rater = current_rater()
if not rater:
    st.info("Enter your name in the sidebar to rate captions.", icon="👤")

with shown_errors():
    filters = filter_row("gallery", study_choice=True, owner=identity.owner_filter)
    per_page = st.session_state.get(PER_PAGE_KEY, 12)  # photos, each with all its captions
    if filters is not None:
        if st.session_state.get(SHOWN_KEY, (filters, per_page)) != (filters, per_page):
            st.session_state[PAGE_KEY] = 1  # other filters, other results: their first page, not the same number
        st.session_state[SHOWN_KEY] = (filters, per_page)
        with transaction(resources.db_engine(), write=False) as session:
            page = repo.gallery(session=session, filters=filters, page=st.session_state.get(PAGE_KEY, 1),
                                per_page=per_page, rater=rater or None)
        if not page.items and filters.narrows:
            st.info("No caption matches these filters: loosen or clear them above.", icon="🔎")
        elif not page.items and filters.study:
            st.info("This study has no captions yet: write them on the Studies page.", icon="🧪")
        elif not page.items:
            st.info("Nothing saved yet: captions you save on the Create page (a favourite, or one you wrote) "
                    "appear here, to rate and edit; the Evaluation page compares and exports them (CSV).", icon="🖼️")
            st.stop()
        st.caption(f"{page.total} caption{'s' * (page.total != 1)} of {page.photos} "
                   f"photo{'s' * (page.photos != 1)} · page {page.page} of {page.pages}")
        groups: dict[int, list] = {}
        for item in page.items:
            groups.setdefault(item.photo.id, []).append(item)
        for items in groups.values():
            photo_block(items, rater)
        if st.session_state.get(PAGE_KEY, 1) != page.page:  # the filters shrank the number of pages
            st.session_state[PAGE_KEY] = page.page
        left, right = st.columns([3, 1])
        with left:
            st.pagination(page.pages, key=PAGE_KEY, persist_state=KEEP)
        right.selectbox("Photos per page", [12, 24, 48, 96], key=PER_PAGE_KEY, persist_state=KEEP)
