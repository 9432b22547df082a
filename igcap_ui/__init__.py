"""Streamlit widgets and resources shared by the pages. Only this package and app_pages/ import Streamlit."""
