"""Arena: two captions of the same photo by two hidden models; vote, then see who wrote which."""

import streamlit as st

from igcap_ui.arena_panel import arena_panel
from igcap_ui import access
from igcap_ui.errors import shown_errors
from igcap_ui.rater import current_rater
from igcap_ui.study_choice import choose_study

access.require("can_rate")
st.title("⚔️ Arena")
st.caption("Which caption suits the photo better? The models' names appear after your vote.")
with shown_errors():
    rater = current_rater()
    study = choose_study("arena")
    if not rater:
        st.info("Enter your name in the sidebar to vote.", icon="👤")
    elif study:
        arena_panel(study, rater)
