"""The CSV files: rated captions (one row per caption), ratings (one row per rating, "long") and the
arena's votes (one row per vote).

The bytes are UTF-8 with a byte-order mark (so Excel reads emoji correctly), comma-separated,
fields with commas, quotes or line breaks double-quoted (so pandas and Excel keep line breaks).

Formula injection (OWASP "CSV injection"): a text cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return, or with a single quote, is written with one single quote (``'``) in
front, so a spreadsheet shows it as text instead of running it. To get the original back, remove
one leading ``'`` from any text cell that starts with ``'`` (:func:`restore_cell`). Numbers (ids,
counts, stars, means, seconds) are written as plain numbers and never neutralised; none of them can
be negative. Header names are neutralised too (criterion names are user input, though validated).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from db.csv_cells import FORMULA_STARTS, QUOTE, neutralise, restore_cell  # noqa: F401 - part of this API
from db.models import MANUAL_LABEL  # noqa: F401 (its old home: importable from here too)
from db.models import DEFAULT_CRITERION, Caption, Photo, Rating, Study, Vote, model_label
from db.repo import GalleryFilter

ENCODING = "utf-8-sig"  # the BOM tells Excel the file is UTF-8
# Model key → label, or the registry itself (key → igcap ModelSpec), passed in by the CLI and the pages;
# a key it does not name is shown as itself (db.models.model_label).
Labels = Mapping[str, Any]

CAPTION_COLUMNS = [
    "caption_id", "created_utc", "photo_name", "photo_sha256", "model_key", "model_label", "model_source",
    "caption", "generated_text", "edited", "favourite", "seconds", "decoding_settings", "ratings", "mean_stars",
    "ratings_of_other_text",
]
LONG_COLUMNS = [
    "rating_id", "rated_utc", "caption_id", "photo_name", "photo_sha256", "model_key", "model_label", "caption",
    "rater", "criterion", "stars", "comment", "rated_text", "rated_text_is_current", "study",
]
# One row per pairwise vote (the arena); model_a/caption_a_id is the caption shown as "A".
VOTE_COLUMNS = [
    "vote_id", "voted_utc", "photo_sha256", "model_a", "model_b", "caption_a_id", "caption_b_id", "winner", "rater",
    "study", "photo_name", "text_a", "text_b",
]


def _captions(session: Session, filters: GalleryFilter, include_unrated: bool):
    where = filters.conditions()
    if not include_unrated:
        where.append(exists().where(Rating.caption_id == Caption.id))
    stmt = (select(Caption, Photo.name, Photo.sha256).join(Caption.photo).where(*where)
            .order_by(Caption.created_at, Caption.id))
    return session.execute(stmt).all()


def rated_captions_rows(*, session: Session, filters: GalleryFilter | None = None, include_unrated: bool = False,
                        labels: Labels | None = None) -> list[dict[str, Any]]:
    """One dict per caption (oldest first) with the CAPTION_COLUMNS plus ``mean_<criterion>`` per criterion."""
    filters = filters or GalleryFilter()
    labels = labels or {}
    rows = _captions(session, filters, include_unrated)
    sums, rated = _star_sums(session, [caption.id for caption, _, _ in rows])
    criteria = sorted({c for per in sums.values() for c in per}, key=lambda c: (c != DEFAULT_CRITERION, c))
    return [_caption_row(caption, name, sha, labels, sums.get(caption.id, {}), criteria, rated.get(caption.id, []))
            for caption, name, sha in rows]


def _star_sums(session: Session, caption_ids: list[int]):
    """(caption id → criterion → [sum of stars, count], caption id → [the text each rating was given to]),
    in one query (chunked for huge exports)."""
    out: dict[int, dict[str, list[int]]] = defaultdict(dict)
    rated: dict[int, list[str | None]] = defaultdict(list)
    for start in range(0, len(caption_ids), 5000):
        chunk = caption_ids[start:start + 5000]
        for cid, criterion, stars, rated_text in session.execute(
                select(Rating.caption_id, Rating.criterion, Rating.stars, Rating.rated_text)
                .where(Rating.caption_id.in_(chunk))):
            acc = out[cid].setdefault(criterion, [0, 0])
            acc[0] += stars
            acc[1] += 1
            rated[cid].append(rated_text)
    return out, rated


def _caption_row(caption: Caption, photo_name: str, sha: str, labels: Labels,
                 sums: dict[str, list[int]], criteria: list[str], rated_texts: list) -> dict[str, Any]:
    total, count = sum(s for s, _ in sums.values()), sum(n for _, n in sums.values())
    row = {
        "caption_id": caption.id, "created_utc": caption.created_at, "photo_name": photo_name, "photo_sha256": sha,
        "model_key": caption.model_key, "model_label": model_label(caption.model_key, labels),
        "model_source": caption.model_source, "caption": caption.text, "generated_text": caption.generated_text,
        "edited": caption.edited, "favourite": caption.favourite,
        "seconds": None if caption.seconds is None else round(caption.seconds, 3),
        "decoding_settings": caption.settings, "ratings": count, "mean_stars": _mean(total, count),
        # ratings given to an earlier (or otherwise different) text of this caption: see the long export
        "ratings_of_other_text": sum(1 for t in rated_texts if t is not None and t != caption.text),
    }
    for criterion in criteria:
        row[f"mean_{criterion}"] = _mean(*sums.get(criterion, (0, 0)))
    return row


def _mean(total: int, count: int) -> float | None:
    return round(total / count, 3) if count else None


def ratings_long_rows(*, session: Session, filters: GalleryFilter | None = None,
                      labels: Labels | None = None) -> list[dict[str, Any]]:
    """One dict per rating (LONG_COLUMNS) of the captions the filter selects, oldest caption first."""
    filters = filters or GalleryFilter()
    labels = labels or {}
    stmt = (select(Rating, Caption, Photo.name, Photo.sha256, Study.name).join(Rating.caption).join(Caption.photo)
            .outerjoin(Study, Study.id == Caption.study_id)
            .where(*filters.conditions()).order_by(Caption.created_at, Caption.id, Rating.id))
    return [{
        "rating_id": rating.id, "rated_utc": rating.updated_at, "caption_id": caption.id, "photo_name": name,
        "photo_sha256": sha, "model_key": caption.model_key, "model_label": model_label(caption.model_key, labels),
        "caption": caption.text, "rater": rating.rater, "criterion": rating.criterion, "stars": rating.stars,
        "comment": rating.comment, "rated_text": rating.rated_text,
        "rated_text_is_current": None if rating.rated_text is None else rating.rated_text == caption.text,
        "study": study,
    } for rating, caption, name, sha, study in session.execute(stmt)]


def vote_rows(*, session: Session, study: str | None = None) -> list[dict[str, Any]]:
    """One dict per vote (VOTE_COLUMNS), oldest first: one study's, or every vote when ``study`` is None."""
    stmt = (select(Vote, Photo.name, Photo.sha256, Study.name).join(Photo, Photo.id == Vote.photo_id)
            .outerjoin(Study, Study.id == Vote.study_id).order_by(Vote.id))
    if study is not None:
        stmt = stmt.where(Study.name == study)
    return [{
        "vote_id": vote.id, "voted_utc": vote.created_at, "photo_sha256": sha, "model_a": vote.model_a,
        "model_b": vote.model_b, "caption_a_id": vote.caption_a_id, "caption_b_id": vote.caption_b_id,
        "winner": vote.winner, "rater": vote.rater, "study": study_name, "photo_name": name,
        "text_a": vote.text_a, "text_b": vote.text_b,
    } for vote, name, sha, study_name in session.execute(stmt)]


def votes_csv(*, session: Session, study: str | None = None) -> bytes:
    """The votes file as bytes (one row per vote)."""
    return to_csv(vote_rows(session=session, study=study), VOTE_COLUMNS)


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    """CSV bytes (BOM, CRLF rows) with every cell formatted by :func:`cell`."""
    names = list(columns) + [k for k in (rows[0] if rows else {}) if k not in columns]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(name) for name in names])
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in names])
    return buffer.getvalue().encode(ENCODING)


def row_count(data: bytes) -> int:
    """How many rows a file from :func:`to_csv` holds under its header (a cell may hold line breaks)."""
    return max(sum(1 for _ in csv.reader(io.StringIO(data.decode(ENCODING), newline=""))) - 1, 0)


def cell(value: Any) -> str:
    """One CSV cell: numbers plain, booleans true/false, times 'YYYY-MM-DD HH:MM:SS' UTC, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return neutralise(str(value))


def rated_captions_csv(*, session: Session, filters: GalleryFilter | None = None, include_unrated: bool = False,
                       labels: Labels | None = None) -> bytes:
    """The "rated captions" file as bytes (the dashboard offers these as a download)."""
    rows = rated_captions_rows(session=session, filters=filters, include_unrated=include_unrated, labels=labels)
    return to_csv(rows, CAPTION_COLUMNS)


def ratings_long_csv(*, session: Session, filters: GalleryFilter | None = None,
                     labels: Labels | None = None) -> bytes:
    """One row per rating, as bytes."""
    return to_csv(ratings_long_rows(session=session, filters=filters, labels=labels), LONG_COLUMNS)


def write_export(path: str | Path, long: bool = False, *, session: Session, filters: GalleryFilter | None = None,
                 include_unrated: bool = False, labels: Labels | None = None) -> int:
    """Write an export to ``path`` (replaced whole, never half-written; ``-`` is standard output);
    returns the number of data rows. A new file's mode follows the umask, like any file a program creates."""
    if long:
        rows, columns = ratings_long_rows(session=session, filters=filters, labels=labels), LONG_COLUMNS
    else:
        rows = rated_captions_rows(session=session, filters=filters, include_unrated=include_unrated, labels=labels)
        columns = CAPTION_COLUMNS
    write_bytes(path, to_csv(rows, columns))
    return len(rows)


def write_votes(path: str | Path, *, session: Session, study: str | None = None) -> int:
    """Write the votes file to ``path`` (replaced whole; ``-`` is standard output); returns the number of votes."""
    rows = vote_rows(session=session, study=study)
    write_bytes(path, to_csv(rows, VOTE_COLUMNS))
    return len(rows)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file whole or not at all, or to standard output when ``path`` is ``-`` (every export, and what
    is built elsewhere: the leaderboard's CSV and JSON)."""
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _write_atomically(Path(path), data)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the mode open() would give it
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask sets while it reads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
