"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV injection"): the one rule, stdlib only.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, or with a single
quote, gets one single quote (``'``) in front; removing one leading ``'`` gives the original back. So does
one where those follow leading white space (`` =1+1``, a no-break space, a line break): LibreOffice's CSV
import can trim spaces before it evaluates formulas. Invisible format characters (Unicode category Cf: a
zero-width space, a byte-order mark, a word joiner, a soft hyphen) are passed over like white space, and
the first character after them counts in its NFKC form, so full-width and small forms (``＝``, ``＋``,
``－``, ``＠``, ``﹦``), which spreadsheets may read as their ASCII twins, count as ``=``, ``+``, ``-``, ``@``.
Used by the exports (:mod:`db.export`) and by ``python -m igcap caption --csv``; it lives here, free
of SQLAlchemy and of the model package, so any writer of CSV can use it (``db`` never imports ``igcap``).
"""

from __future__ import annotations

import unicodedata

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def neutralise(text: str) -> str:
    """The cell text a spreadsheet will not run as a formula."""
    risky = text.startswith(FORMULA_STARTS + (QUOTE,)) or _first_significant(text).startswith(FORMULA_STARTS)
    return QUOTE + text if risky else text


def _first_significant(text: str) -> str:
    """The first character that is neither white space nor an invisible format character, in NFKC form
    (``＝`` → ``=``); "" when there is none."""
    for char in text:
        if not char.isspace() and unicodedata.category(char) != "Cf":
            return unicodedata.normalize("NFKC", char)
    return ""


def restore_cell(text: str) -> str:
    """The inverse of :func:`neutralise`, for reading a file back."""
    return text[1:] if text.startswith(QUOTE) else text
