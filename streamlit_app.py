"""Entry point: page config, Streamlit secrets → environment, the rater box, navigation, the error guard."""

import streamlit as st

from igcap_ui import resources
from igcap_ui.errors import shown_errors
from igcap_ui.rater import rater_box
from igcap_ui.secrets import copy_secrets_to_env, read_secrets

st.set_page_config(page_title="igcap — Instagram captions", page_icon="📸", layout="wide")
copy_secrets_to_env(read_secrets())  # before anything reads the configuration

pages = [
    st.Page("pages/create.py", title="Create", icon="✍️", default=True),
    st.Page("pages/gallery.py", title="Gallery", icon="🖼️"),
    st.Page("pages/studies.py", title="Studies", icon="🧪"),
    st.Page("pages/rate.py", title="Rate", icon="⭐"),
    st.Page("pages/arena.py", title="Arena", icon="⚔️"),
    st.Page("pages/evaluation.py", title="Evaluation", icon="📊"),
    st.Page("pages/models.py", title="Models", icon="🧠"),
]
page = st.navigation(pages)
rater_box()
with shown_errors():
    resources.db_engine()  # opens and migrates the database once per process, at start (cached after)
with shown_errors():  # the last guard: whatever a page raises becomes a message, never a stack trace
    page.run()
