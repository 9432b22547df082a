"""Who a rater name means: the one rule, stdlib only, so that every reader of ratings and votes applies it
(the database's queue and arena, its leaderboard rows, and the leaderboard read from CSV files).

"Maya", "maya " and "MAYA" are one person: spaces around and between words collapsed, accents composed one way
and case folded (db.search's fold), so "Straße" and "STRASSE" are one name too. The database stores each
rating's and vote's person as ``rater_key`` (db.models sets it on every write), and matches people by it alone,
the same on SQLite and PostgreSQL. Changing :func:`person` needs a migration that computes those keys again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from db.search import fold

T = TypeVar("T")


def person(name: str | None) -> str:
    """The person a rater name means ("" for no name)."""
    return " ".join(fold(str(name or "").replace("\x00", "")).split())


def first_names(names: Iterable[str | None]) -> dict[str, str]:
    """person → the name each person first appears with, in the order given (how they are shown)."""
    first: dict[str, str] = {}
    for name in names:
        if who := person(name):
            first.setdefault(who, name)
    return first


def last_per_person(rows: Iterable[T], rater: Callable[[T], str | None], unit: Callable[[T], Hashable]) -> list[T]:
    """The last of ``rows`` (in the order given) per person and ``unit``, in the order of those last rows: each
    person's latest judgement of a thing counts once. Rows without a rater cannot be told apart: all kept."""
    kept: dict[tuple, T] = {}
    for i, row in enumerate(rows):
        who = person(rater(row))
        key = (who, unit(row)) if who else ("", i)
        kept.pop(key, None)
        kept[key] = row
    return list(kept.values())
