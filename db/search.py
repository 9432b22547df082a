"""Finding captions by the words a person types: case aside, in every script, on SQLite and PostgreSQL.

SQLite's LIKE and lower() fold ASCII only: "CAFÉ" did not find "Café" in the gallery's search. On SQLite both
sides go through :func:`fold` (registered as ``igcap_fold`` by db.engine); PostgreSQL's lower() is
Unicode-aware, and both sides go through it there, so pattern and text are always folded by the same rule.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import String, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

SQL_FUNCTION = "igcap_fold"


def fold(text: str | None) -> str | None:
    """``text`` with case folded and accents composed one way ("CAFÉ", "café" typed apart → "café")."""
    return None if text is None else unicodedata.normalize("NFC", text).casefold()


class _Folded(FunctionElement):
    type = String()
    inherit_cache = True


@compiles(_Folded)
def _folded_lower(element, compiler, **kw):
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(_Folded, "sqlite")
def _folded_sqlite(element, compiler, **kw):
    return f"{SQL_FUNCTION}({compiler.process(element.clauses, **kw)})"


def has_every_word(search: str, *columns) -> list[ColumnElement[bool]]:
    """One condition per word of ``search`` (any order, "church foggy"): some column contains the word."""
    conditions = []
    for word in search.split():
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", unicodedata.normalize("NFC", word)) + "%"
        folded = _Folded(literal(pattern))
        conditions.append(or_(*(_Folded(column).like(folded, escape="\\") for column in columns)))
    return conditions
