"""Caption boxes (a keyed st.text_area) that always show the text they hold, and the app's writes to them.

The browser can draw a page afresh, every widget from the default the last run sent: in Streamlit 1.67 a
click on a sidebar link while a box has focus runs the open page again (the click is lost) and the browser
rebuilds it. A box drawn with no default (``value=None`` once its text was in session state) came back
empty while the server still held the text, so the counters counted text nobody saw, and the next change
anywhere could send the empty box back. So a box's default is always the text it holds now. With a key,
the default is not part of a text area's identity (``key_as_main_identity={"max_chars"}`` in
streamlit.elements.widgets.text_widgets), so a changing default never resets the box or what is typed.

One exception: on the run after the app wrote a box's text (:func:`write`: a hashtag set, a text saved
elsewhere), Streamlit sends that text to the browser by itself, and a default beside it would make it
log "created with a default value but also had its value set via the Session State API"; that run draws
the box without one.
"""

from __future__ import annotations

import streamlit as st

_WRITTEN = "text_boxes.written"  # keys whose text the app wrote since the box was last drawn


def text_box(label: str, key: str, text: str, **kwargs) -> str:
    """A st.text_area under ``key``; ``text`` is what it shows before it holds anything (a card's text).
    Returns what it holds, never None (the counters read it)."""
    written = st.session_state.setdefault(_WRITTEN, set())
    if key in written:
        written.discard(key)
        default = None
    else:
        held = st.session_state.get(key)
        default = text if held is None else held
    shown = st.text_area(label, value=default, key=key, **kwargs)
    return text if shown is None else shown


def write(key: str, text: str) -> None:
    """Set the text of the box under ``key`` (in a callback, or before the box is drawn): the browser shows it."""
    st.session_state[key] = text
    st.session_state.setdefault(_WRITTEN, set()).add(key)
