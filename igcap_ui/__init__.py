"""Streamlit widgets and resources shared by the pages. Only this package and pages/ import Streamlit."""
