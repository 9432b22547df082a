"""Welcome for raters: they see only what studies ask them to rate."""

import streamlit as st

from igcap_ui import access

identity = access.require("can_rate")
st.title("👋 Welcome")
st.write("You are here to rate captions. When the owner starts a study for you, what to rate appears in "
         "the menu. There is nothing to rate yet.")
