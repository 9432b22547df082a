"""Entry point: page config and navigation only."""

import streamlit as st

st.set_page_config(page_title="igcap — Instagram captions", page_icon="📸", layout="wide")
st.title("igcap")
st.write("The dashboard is being built; see the README.")
