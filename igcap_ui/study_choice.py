"""The study picker shared by the Rate, Arena, Studies and Evaluation pages."""

from __future__ import annotations

import streamlit as st

from db import studies, transaction
from igcap_ui import resources
from igcap_ui.plain import plain

CHOSEN = "study_name"  # a plain session key: the chosen study stays chosen across pages
PICKERS = ("studies", "rate", "arena", "evaluation")  # the pages' picker keys (``<key>.study``)


def choose_study(key: str, label: str = "Study") -> str | None:
    """A select box of the studies (newest first); the chosen name, or None (with a hint) when there are none."""
    with transaction(resources.db_engine(), write=False) as session:
        names = [s.name for s in studies.list_studies(session=session)]
    gone = st.session_state.get(CHOSEN)
    if gone is not None and gone not in names:  # deleted (on the Studies page or by the CLI) since chosen
        st.session_state.pop(CHOSEN)
        st.warning(f"The study “{plain(gone)}” has been deleted: stars or a vote not yet submitted for it were "
                   "not saved.", icon="🗑️")
    if not names:
        st.info("No study yet: the owner creates one on the Studies page, and it appears here.", icon="🧪")
        return None
    current = st.session_state.get(CHOSEN)
    widget = f"{key}.study"
    if st.session_state.get(widget) not in names:
        st.session_state[widget] = current if current in names else names[0]
    name = st.selectbox(label, names, key=widget)
    st.session_state[CHOSEN] = name
    return name


def set_chosen(name: str) -> None:
    """Make ``name`` the chosen study on every page (call before the pickers are drawn in this run)."""
    st.session_state[CHOSEN] = name
    for key in PICKERS:
        st.session_state.pop(f"{key}.study", None)
