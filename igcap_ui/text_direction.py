"""Caption text laid out in the direction of its own script: Arabic, Hebrew or Persian right to left, the rest
left to right, paragraph by paragraph (a caption may mix them).

Streamlit's text areas, st.text and st.code take no ``dir`` attribute, so one fixed stylesheet, drawn on every
page, gives their text ``unicode-bidi: plaintext``: what ``dir="auto"`` does, for each paragraph, with the text
aligned to its start. No user text goes into it: captions stay plain text (igcap_ui.plain)."""

from __future__ import annotations

import streamlit as st

# The blocks that hold the text (Streamlit 1.67): a text area; st.text's span (a flex item, grown to the
# element's width so it can align right); st.code's block inside its <pre>.
_SELECTORS = ", ".join(['[data-testid="stTextArea"] textarea', '[data-testid="stText"] > span',
                        '[data-testid="stCode"] pre > div'])
STYLE = (f"<style>{_SELECTORS} {{ unicode-bidi: plaintext; text-align: start; }} "
         '[data-testid="stText"] > span { flex-grow: 1; }</style>')


def follow_the_text() -> None:
    """Draw the stylesheet (it takes no room on the page)."""
    st.html(STYLE)
