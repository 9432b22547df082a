"""Finding captions by the words a person types: case aside, in every script, the same on SQLite and PostgreSQL.

One rule folds text (:func:`fold`: composed one way, then case folded, so "CAFÉ", "café" typed decomposed and
"Café" are one word, and "STRASSE" finds "Straße"). It runs in Python only: each caption stores its text and
generated text folded (``captions.search_text``, set by db.models on every write), the words typed are folded
the same way, and the database compares the two with a plain LIKE. Neither database's own case rules take part
(SQLite's LIKE folds ASCII only; PostgreSQL's lower() does not casefold, does not compose, and under
LC_CTYPE=C folds ASCII only). Standard library only, like db.people, which builds on :func:`fold`.

Changing :func:`fold` changes what the stored column must hold: it needs a migration that computes it again
(as 0009_folded_keys did first).
"""

from __future__ import annotations

import re
import unicodedata

SEPARATOR = "\n"  # between the folded text and generated text: no typed word holds it, so none matches across


def fold(text: str | None) -> str | None:
    """``text`` with accents composed one way and case folded ("CAFÉ", "café" typed apart → "café")."""
    return None if text is None else unicodedata.normalize("NFC", text).casefold()


def caption_search_text(text: str | None, generated_text: str | None) -> str:
    """What ``captions.search_text`` holds: the caption as shown, and as generated where that differs, folded."""
    shown = fold(text) or ""
    if generated_text is None or generated_text == text:
        return shown
    return shown + SEPARATOR + fold(generated_text)


def has_every_word(search: str, column):
    """One condition per word of ``search`` (any order, "church foggy"): the folded ``column``
    (``Caption.search_text``) contains the word, folded."""
    return [column.like("%" + re.sub(r"([\\%_])", r"\\\1", fold(word)) + "%", escape="\\") for word in search.split()]
