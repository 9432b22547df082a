"""Whatever a person typed or uploaded (file names, captions, rater names), shown as exactly those characters.

Streamlit renders Markdown (with GitHub's autolinks, colour and emoji directives and LaTeX) in st.markdown,
st.caption, st.error and the other message boxes, widget labels, expander titles and st.image captions. A
file named ``![p](https:127.0.0.1:9).jpg`` would become an image every visitor's browser fetches. Every
piece of user text that reaches one of those goes through :func:`plain` first.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them also stops
# GFM autolinks (``http://``, ``www.``), ``:red[…]``/``:emoji:`` directives, ``$…$`` LaTeX and entities (``&``).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LEADING_SPACES = re.compile(r"^[ \t]+", re.M)  # four would start a code block


def plain(text: object) -> str:
    """Markdown source that renders as ``text`` itself: no links, images, emphasis or HTML."""
    escaped = _PUNCTUATION.sub(r"\\\1", str(text))
    escaped = _LEADING_SPACES.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), escaped)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "  \n")  # a line break stays one


# The name the caption card and the hashtag-set buttons used first.
escape_markdown = plain
