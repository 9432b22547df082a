"""Who gives a rating: the signed-in identity, or (without sign-in) the name typed in the sidebar.

``current_rater()`` is the one function pages call for the rater of this session. A typed name is checked
here, at the edge: spaces around and between words normalised (db.repo.clean_rater, the database's rule)
and at most TYPED_NAME_MAX characters, so the pages only ever see a usable name or ''. A signed-in
identity (an e-mail address, up to 254 characters) is stored as it is.
"""

from __future__ import annotations

import streamlit as st

from db.repo import clean_rater
from igcap.access import TYPED_NAME_MAX
from igcap_ui import access

RATER = "rater_name"  # a plain session key: widget keys are dropped on pages that do not draw the widget
_WIDGET = "rater_name_input"
_PROBLEM = "rater_name_problem"  # why the last name typed was not taken, shown under the box


def rater_box() -> str:
    """Without sign-in, draw the name box in the sidebar; return the current rater ('' when none given).
    Signed in, there is no box: the identity is the rater."""
    if access.current().signed_in:
        return current_rater()
    st.session_state.setdefault(RATER, "")
    if not st.session_state.get(_PROBLEM):
        st.session_state[_WIDGET] = st.session_state[RATER]
    st.sidebar.text_input("Your name (for ratings)", key=_WIDGET, on_change=_remember, max_chars=TYPED_NAME_MAX,
                          placeholder="e.g. Alex", help="Every star rating you give is stored under this name.")
    if st.session_state.get(_PROBLEM):
        st.sidebar.error(st.session_state[_PROBLEM], icon="👤")
    return current_rater()


def current_rater() -> str:
    """The rater of this session: the signed-in identity's id (e-mail or name), else the typed name."""
    identity = access.current()
    if identity.signed_in:
        return identity.id
    return st.session_state.get(RATER, "")


def _remember() -> None:
    typed = st.session_state[_WIDGET] or ""
    st.session_state[_PROBLEM] = None
    name = " ".join(typed.split())
    if len(name) > TYPED_NAME_MAX:
        st.session_state[RATER] = ""
        st.session_state[_PROBLEM] = (f"That name is {len(name)} characters long; names can have at most "
                                      f"{TYPED_NAME_MAX}. Shorten it to rate captions.")
        return
    st.session_state[RATER] = clean_rater(name) if name else ""
