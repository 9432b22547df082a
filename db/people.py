"""Who a rater name means: the one rule, stdlib only, so that every reader of ratings and votes applies it
(the database's queue and arena, its leaderboard rows, and the leaderboard read from CSV files).

"Maya", "maya " and "MAYA" are one person: spaces around and between words collapsed, case folded.
"""

from __future__ import annotations

SQL_FUNCTION = "igcap_person"  # the same rule inside SQLite (db.engine registers it; its lower() folds ASCII only)


def person(name: str | None) -> str:
    """The person a rater name means ("" for no name)."""
    return " ".join(str(name or "").replace("\x00", "").split()).casefold()
