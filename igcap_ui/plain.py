"""Whatever a person typed or uploaded (file names, captions, rater names), shown as exactly those characters.

Streamlit renders Markdown (with GitHub's autolinks, colour and emoji directives and LaTeX) in st.markdown,
st.caption, st.error and the other message boxes, widget labels, expander titles and st.image captions. A
file named ``![p](https:127.0.0.1:9).jpg`` would become an image every visitor's browser fetches. Every
piece of user text that reaches one of those goes through :func:`plain` first. Text a person reads to copy
(a caption as it will be posted) is drawn with st.text, st.text_area or st.code instead, never through
:func:`plain`: what they copy must be their text, without the invisible characters added here.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping all of them also stops
# GFM autolinks (``http://``, ``www.``), ``:red[…]``/``:emoji:`` directives, ``$…$`` LaTeX and entities (``&``).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LEADING_SPACES = re.compile(r"^[ \t]+", re.M)  # four would start a code block
# Streamlit's remark-gfm also links web and e-mail addresses it finds in the text *after* the escapes are
# resolved (``https://…``, ``www.…``, ``name@host.tld``): an invisible word joiner where each would start
# (after ``www``, between ``:`` and ``//``, before the ``@`` of an address) leaves nothing to link.
_WORD_JOINER = "\u2060"
_AUTOLINK_STARTS = re.compile(r"(?i)(?<=www)(?=\.)|(?<=:)(?=//)|(?<=[-.\w+])(?=@)")


def plain(text: object) -> str:
    """Markdown source that renders as ``text`` itself: no links, images, emphasis or HTML."""
    unlinked = _AUTOLINK_STARTS.sub(_WORD_JOINER, str(text))
    escaped = _PUNCTUATION.sub(r"\\\1", unlinked)
    escaped = _LEADING_SPACES.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), escaped)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "  \n")  # a line break stays one


# The name the caption card and the hashtag-set buttons used first.
escape_markdown = plain
