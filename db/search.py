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


def text_rule(sqlite_function: str, doc: str) -> type[FunctionElement]:
    """A SQL expression class for a Python rule on text: ``sqlite_function`` on SQLite (the Python function
    db.engine registers under that name, as SQLite's lower() folds ASCII only), lower() elsewhere (PostgreSQL's
    is Unicode-aware). This module's fold and db.people's person (db.repo) go into SQL this way."""
    rule = type(f"TextRule_{sqlite_function}", (FunctionElement,), {"type": String(), "inherit_cache": True,
                                                                       "__doc__": doc})

    @compiles(rule)
    def _lower(element, compiler, **kw):
        return f"lower({compiler.process(element.clauses, **kw)})"

    @compiles(rule, "sqlite")
    def _registered(element, compiler, **kw):
        return f"{sqlite_function}({compiler.process(element.clauses, **kw)})"

    return rule


_Folded = text_rule(SQL_FUNCTION, "fold() in SQL: a caption's text or a searched word, case folded")


def has_every_word(search: str, *columns) -> list[ColumnElement[bool]]:
    """One condition per word of ``search`` (any order, "church foggy"): some column contains the word."""
    conditions = []
    for word in search.split():
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", unicodedata.normalize("NFC", word)) + "%"
        folded = _Folded(literal(pattern))
        conditions.append(or_(*(_Folded(column).like(folded, escape="\\") for column in columns)))
    return conditions
