"""The rater's name in the sidebar, remembered for the session whichever page is open."""

from __future__ import annotations

import streamlit as st

RATER = "rater_name"  # a plain session key: widget keys are dropped on pages that do not draw the widget
_WIDGET = "rater_name_input"


def rater_box() -> str:
    """Draw the name box in the sidebar and return the current rater ('' when none given)."""
    st.session_state.setdefault(RATER, "")
    st.session_state[_WIDGET] = st.session_state[RATER]
    st.sidebar.text_input("Your name (for ratings)", key=_WIDGET, on_change=_remember,
                          placeholder="e.g. Alex", help="Every star rating you give is stored under this name.")
    return current_rater()


def current_rater() -> str:
    return st.session_state.get(RATER, "").strip()


def _remember() -> None:
    st.session_state[RATER] = st.session_state[_WIDGET].strip()
