"""Rate: one photo and one caption of a study at a time, model hidden, stars per criterion."""

import streamlit as st

from igcap_ui import access
from igcap_ui.errors import shown_errors
from igcap_ui.rater import current_rater
from igcap_ui.rating_queue import rate_panel
from igcap_ui.study_choice import choose_study

access.require("can_rate")
st.title("⭐ Rate captions")
st.caption("Blind rating: you see a photo and one caption; which model wrote it stays hidden.")
with shown_errors():
    rater = current_rater()
    study = choose_study("rate")
    if not rater:
        st.info("Enter your name in the sidebar to rate.", icon="👤")
    elif study:
        rate_panel(study, rater)
