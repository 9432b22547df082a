"""The queries the app needs. Every function takes a keyword-only ``session`` and never commits:
the caller owns the transaction (``with db.transaction(engine) as session: ...``).

Bad input raises ``ValueError`` with a message a person can read; an unknown id raises
:class:`NotFoundError`. Text is stored without NUL characters (``\x00``) on both databases:
PostgreSQL cannot store them in text columns and they show nothing anyway, so they are dropped here
rather than failing on one database and not the other.

Private rows: functions that find or change photos, captions and ratings take ``owner``, the identity
acting (an e-mail address, a name, or ``"local"``). When given, only that identity's rows are found
(a photo's ``owner``, a caption's ``author``); anybody else's raise :class:`NotFoundError`, exactly
like a row that does not exist, so nothing leaks. ``owner=None`` means no restriction: the app's
owner role, and the command line (which runs with the database's own credentials). Saving a photo and rating are race-safe upserts (``INSERT … ON CONFLICT``),
so two browser tabs doing the same at once neither fail nor duplicate rows.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.orm import Session, aliased, joinedload

from db.models import (DEFAULT_CRITERION, IDENTITY_LENGTH, LOCAL_OWNER, MANUAL, MODEL_KEY_LENGTH, Caption, Photo,
                       Rating, Study, StudyPhoto, Vote, utcnow)
from db.people import first_names, person
from db.search import has_every_word

RATER_MAX = IDENTITY_LENGTH  # a typed name (at most 80, the box says) or a signed-in identity (e-mail)
CRITERION_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def without_nul(text: str | None) -> str | None:
    """``text`` without NUL characters, which PostgreSQL text columns refuse (SQLite would keep them)."""
    return text.replace("\x00", "") if isinstance(text, str) else text


class EmptyCaptionError(ValueError):
    """A person's caption text is blank (typed empty, or emptied). A model may write nothing; a person may not."""

    def __init__(self):
        super().__init__("A caption cannot be empty: write some words first, or delete the caption instead.")


def _require_words(text: str) -> None:
    if not text.strip():
        raise EmptyCaptionError()


class NotFoundError(LookupError):
    """The photo or caption asked for does not exist (any more); ``what`` is "photo" or "caption"."""

    def __init__(self, message: str, what: str = "caption"):
        super().__init__(message)
        self.what = what


class CaptionChangedError(ValueError):
    """An edit started from a text the caption no longer holds: it was changed elsewhere (another tab, another
    person) after the page showed it. Nothing was saved; ``current`` is the text it holds now."""

    def __init__(self, current: str):
        super().__init__("This caption was changed elsewhere (the Gallery, another tab, another person) after your "
                         f"page showed it, so your edit was not saved. It now reads: {current}")
        self.current = current


class PhotoInStudyError(ValueError):
    """Deleting this photo would delete a study's captions, ratings and votes with it; ``studies`` names them."""

    def __init__(self, studies: list[str]):
        names = ", ".join(f"“{name}”" for name in studies)
        super().__init__(f"This photo is part of the study {names}: deleting it would delete that study's captions, "
                         "ratings and votes too. It was kept; delete the study first if that is meant.")
        self.studies = studies


# ---------------------------------------------------------------- photos and captions

def save_photo(*, session: Session, sha256: str, name: str, width: int, height: int, format: str,
               image_jpeg: bytes, thumbnail_jpeg: bytes, owner: str = LOCAL_OWNER) -> Photo:
    """``owner``'s photo with this content hash, stored now if it is new for them (the first upload's
    name is kept). Another owner's copy of the same photo is a separate row they alone see."""
    owner = clean_identity(owner)
    sha256 = sha256.strip().lower()
    if not SHA256_RE.match(sha256):
        raise ValueError("sha256 must be 64 hexadecimal characters")
    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    values = dict(sha256=sha256, name=(without_nul(name) or "photo")[:255], width=width, height=height,
                  format=(format or "")[:16], image_jpeg=image_jpeg, thumbnail_jpeg=thumbnail_jpeg,
                  created_at=utcnow(), owner=owner)
    session.execute(_insert(session, Photo).values(**values)
                    .on_conflict_do_nothing(index_elements=["owner", "sha256"]))
    return session.scalars(select(Photo).where(Photo.owner == owner, Photo.sha256 == sha256)).one()


def clean_identity(identity: str | None) -> str:
    """An owner/author identity as stored: 1 to 254 characters, no surrounding spaces."""
    value = (identity or "").strip()
    if not value or len(value) > IDENTITY_LENGTH:
        raise ValueError(f"an owner must be 1 to {IDENTITY_LENGTH} characters")
    return value


def get_photo(*, session: Session, photo_id: int, owner: str | None = None) -> Photo | None:
    photo = session.get(Photo, photo_id)
    return photo if photo is not None and (owner is None or photo.owner == owner) else None


def find_photo(*, session: Session, sha256: str, owner: str = LOCAL_OWNER) -> Photo | None:
    """``owner``'s photo with this content hash."""
    return session.scalars(select(Photo).where(Photo.owner == owner, Photo.sha256 == sha256.strip().lower())).first()


def photo_image(*, session: Session, photo_id: int, owner: str | None = None) -> bytes:
    """The stored (resized) JPEG of a photo; lists load only thumbnails."""
    stmt = select(Photo.image_jpeg).where(Photo.id == photo_id)
    if owner is not None:
        stmt = stmt.where(Photo.owner == owner)
    data = session.scalar(stmt)
    if data is None:
        raise NotFoundError(f"photo {photo_id} does not exist", "photo")
    return data


def delete_photo(*, session: Session, photo_id: int, owner: str | None = None, with_studies: bool = False) -> None:
    """Delete a photo with its captions and their ratings (only ``owner``'s photo when given).

    A photo that a study uses is refused with :class:`PhotoInStudyError` (its study captions, ratings and
    votes would go with it: the Gallery's delete button, in a creator's hands, wiped the owner's study data)
    unless ``with_studies``."""
    photo = get_photo(session=session, photo_id=photo_id, owner=owner)
    if photo is None:
        raise NotFoundError(f"photo {photo_id} does not exist", "photo")
    if not with_studies:
        used = session.scalars(select(Study.name).join(StudyPhoto, StudyPhoto.study_id == Study.id)
                               .where(StudyPhoto.photo_id == photo_id).order_by(Study.name)).all()
        if used:
            raise PhotoInStudyError(list(used))
    session.delete(photo)
    session.flush()


def add_caption(*, session: Session, photo: Photo, model_key: str, text: str, generated_text: str | None = None,
                model_source: str | None = None, settings: Mapping[str, Any] | Any | None = None,
                seconds: float | None = None, favourite: bool = False, author: str | None = None) -> Caption:
    """A caption for ``photo``: written by a model (``generated_text`` as it came out) or by hand (``MANUAL``).

    ``author`` (who saved it) defaults to the photo's owner.
    """
    author = clean_identity(author or photo.owner or LOCAL_OWNER)
    model_key = (without_nul(model_key) or "").strip()
    if not model_key or len(model_key) > MODEL_KEY_LENGTH:
        raise ValueError(f"model key must be 1 to {MODEL_KEY_LENGTH} characters")
    if not isinstance(text, str):
        raise ValueError("caption text must be a string")
    text, generated_text, model_source = without_nul(text), without_nul(generated_text), without_nul(model_source)
    if model_key == MANUAL or text != (generated_text or ""):  # typed by hand, or edited: a person's words
        _require_words(text)
    if seconds is not None and (not math.isfinite(seconds) or seconds < 0):
        raise ValueError("seconds must be a non-negative number")
    caption = Caption(photo=photo, author=author, model_key=model_key, text=text, generated_text=generated_text,
                      model_source=(model_source or None) and model_source[:512],
                      settings=_settings_dict(settings), seconds=seconds, favourite=bool(favourite))
    session.add(caption)
    session.flush()
    return caption


def find_caption(*, session: Session, photo_id: int, model_key: str, text: str, author: str) -> Caption | None:
    """The first caption of this photo, model and author with exactly this text, or None."""
    return session.scalars(select(Caption).where(
        Caption.photo_id == photo_id, Caption.model_key == model_key, Caption.author == clean_identity(author),
        Caption.text == without_nul(text)).order_by(Caption.id).limit(1)).first()


def add_manual_caption(*, session: Session, photo: Photo, text: str, author: str | None = None) -> tuple[Caption, bool]:
    """``author``'s hand-written caption of ``photo`` with exactly this text: the one saved before, or a new
    favourite (``True``: stored now). Two tabs saving the same text at once store it once: the photo's row
    is locked before the look-up (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every writer already
    holds the write lock from its ``BEGIN IMMEDIATE``), so the second waits and then finds the first's."""
    author = clean_identity(author or photo.owner or LOCAL_OWNER)
    session.execute(select(Photo.id).where(Photo.id == photo.id).with_for_update())
    earlier = find_caption(session=session, photo_id=photo.id, model_key=MANUAL, text=text, author=author)
    if earlier is not None:
        return earlier, False
    return add_caption(session=session, photo=photo, model_key=MANUAL, text=text, favourite=True, author=author), True


def _settings_dict(settings: Any) -> dict[str, Any] | None:
    if settings is None:
        return None
    data = settings.to_dict() if hasattr(settings, "to_dict") else dict(settings)
    try:
        return json.loads(json.dumps(data))  # stored as JSON: fail here, not at commit
    except (TypeError, ValueError) as err:
        raise ValueError(f"decoding settings must be JSON-serialisable: {err}") from err


def delete_caption(*, session: Session, caption_id: int, owner: str | None = None) -> None:
    """Delete one caption with its ratings (``owner``: its author only); a photo left with no caption goes too
    (nothing would show it), unless a study uses it: the study's photo row would go with it, which
    :func:`delete_photo` refuses, so such a photo stays for the study."""
    caption = _caption(session, caption_id, owner)
    photo_id = caption.photo_id
    session.delete(caption)
    session.flush()
    left = session.scalar(select(func.count(Caption.id)).where(Caption.photo_id == photo_id))
    in_study = session.scalar(select(StudyPhoto.id).where(StudyPhoto.photo_id == photo_id).limit(1)) is not None
    if not left and not in_study:
        session.delete(session.get(Photo, photo_id))
        session.flush()


def get_caption(*, session: Session, caption_id: int, owner: str | None = None) -> Caption | None:
    """The caption with its photo; with ``owner``, only a caption on that owner's photo."""
    caption = session.get(Caption, caption_id, options=[joinedload(Caption.photo)])
    return caption if caption is not None and (owner is None or caption.photo.owner == owner) else None


def caption_texts(*, session: Session, caption_ids: Iterable[int], owner: str | None = None) -> dict[int, str]:
    """id → text of the captions among ``caption_ids`` that exist (with ``owner``, on that owner's photos)."""
    ids = list(caption_ids)
    if not ids:
        return {}
    query = select(Caption.id, Caption.text).where(Caption.id.in_(ids))
    if owner is not None:
        query = query.join(Photo, Caption.photo_id == Photo.id).where(Photo.owner == owner)
    return {caption_id: text for caption_id, text in session.execute(query)}


def _caption(session: Session, caption_id: int, author: str | None = None) -> Caption:
    caption = session.get(Caption, caption_id)
    if caption is None or (author is not None and caption.author != author):
        raise NotFoundError(f"caption {caption_id} does not exist", "caption")
    return caption


def edit_caption(*, session: Session, caption_id: int, text: str, owner: str | None = None,
                 expected: str | None = None) -> Caption:
    """Change the text people see; the generated text stays as the model wrote it (``owner``: its author only).

    ``expected``: the text the edit started from (what the person's page showed). The text is changed only
    while the caption still reads so (its row is locked while it is compared: a concurrent edit is
    waited for, then seen); if it was changed elsewhere meanwhile, :class:`CaptionChangedError` gives the
    text it holds now and nothing is saved, unless that already is ``text``. ``None``: changed whatever it
    reads (the command line)."""
    if not isinstance(text, str):
        raise ValueError("caption text must be a string")
    text = without_nul(text)
    _require_words(text)
    caption = _caption(session, caption_id, owner)
    if expected is not None:
        # The row is locked and read again before it is compared (FOR UPDATE on PostgreSQL; a SQLite writer
        # already holds the write lock): an edit being saved elsewhere is waited for, then seen.
        caption = session.scalar(select(Caption).where(Caption.id == caption_id).with_for_update()
                                 .execution_options(populate_existing=True))
        if caption is None:  # deleted by another session meanwhile
            raise NotFoundError(f"caption {caption_id} does not exist", "caption")
        if caption.text not in (without_nul(expected), text):
            raise CaptionChangedError(caption.text)
    caption.text = text  # through the ORM, so db.models keeps the folded search copy with it
    session.flush()
    return caption


def set_favourite(*, session: Session, caption_id: int, favourite: bool, owner: str | None = None) -> Caption:
    caption = _caption(session, caption_id, owner)
    caption.favourite = bool(favourite)
    session.flush()
    return caption


def captions_for_photo(*, session: Session, photo_id: int, owner: str | None = None) -> list[Caption]:
    stmt = select(Caption).where(Caption.photo_id == photo_id).order_by(Caption.id)
    if owner is not None:
        stmt = stmt.join(Caption.photo).where(Photo.owner == owner)
    return list(session.scalars(stmt))


# ---------------------------------------------------------------- ratings

def clean_rater(rater: str | None) -> str:
    """A rater's name as stored: surrounding spaces removed, 1 to RATER_MAX (254) characters."""
    name = " ".join((without_nul(rater) or "").split())
    if not name:
        raise ValueError("enter your name to rate (the rater name cannot be empty)")
    if len(name) > RATER_MAX:
        raise ValueError(f"the rater name is too long (at most {RATER_MAX} characters)")
    return name


def rater_identity(rater: str | None) -> str:
    """Who a rater name means (``db.people.person``: "Maya", "maya " and "MAYA" are one person), for a name
    that may be stored (checked by clean_rater). Sign-in replaces the typed name in hosted mode."""
    return person(clean_rater(rater))


def stored_rater(*, session: Session, rater: str | None) -> str:
    """The name to store for ``rater``: the display form the same person was first stored with (by their
    ratings first, then their votes), else the cleaned name as typed. People are found by ``rater_key``."""
    name = clean_rater(rater)
    for model in (Rating, Vote):
        known = session.scalar(select(model.rater).where(model.rater_key == person(name)).order_by(model.id).limit(1))
        if known is not None:
            return known
    return name


def clean_criterion(criterion: str | None) -> str:
    name = (criterion or DEFAULT_CRITERION).strip().lower()
    if not CRITERION_RE.match(name):
        raise ValueError("criterion must be 1 to 40 lowercase letters, digits, '-' or '_' (e.g. overall, relevance)")
    return name


def rate(*, session: Session, caption_id: int, rater: str, stars: int, criterion: str = DEFAULT_CRITERION,
         comment: str | None = None, owner: str | None = None, in_study: bool = False,
         shown_text: str | None = None) -> Rating:
    """Give ``stars`` (1–5) to a caption; rating the same caption on the same criterion again updates it.

    ``owner``: the caption must be on this owner's photo (the gallery: people rate what they can see).
    The rating keeps the text its stars were given to (``rated_text``): ``shown_text``, what the rater's
    page showed, else the caption's text as it is now. An edit made between the page and the click, or
    later, does not change it (the long export's ``rated_text_is_current`` then says false). A study's
    caption is rated only through its study (``in_study``, from ``db.studies.rate_study_caption``: blind, at
    most k raters; no page edits its text); elsewhere it is refused with ValueError.
    """
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError(f"stars must be a whole number from 1 to 5, not {stars!r}")
    rater, criterion = stored_rater(session=session, rater=rater), clean_criterion(criterion)
    comment = (without_nul(comment) or "").strip() or None
    caption = get_caption(session=session, caption_id=caption_id, owner=owner)
    if caption is None:
        raise NotFoundError(f"caption {caption_id} does not exist", "caption")
    if caption.study_id is not None and not in_study:
        raise ValueError("this caption belongs to a study: it is rated blind on the Rate page")
    rated_text = caption.text if shown_text is None else without_nul(shown_text)  # what the stars were given to
    now = utcnow()
    stmt = _insert(session, Rating).values(caption_id=caption_id, rater=rater, stars=stars, criterion=criterion,
                                           comment=comment, rated_text=rated_text, created_at=now, updated_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["caption_id", "rater_key", "criterion"],
                                      set_={"stars": stars, "comment": comment, "rated_text": rated_text,
                                            "updated_at": now})
    rating_id = session.execute(stmt.returning(Rating.id)).scalar_one()
    return session.get(Rating, rating_id, populate_existing=True)


def unrate(*, session: Session, caption_id: int, rater: str, criterion: str = DEFAULT_CRITERION) -> bool:
    """Take back a rating; True if there was one."""
    rating = session.scalars(select(Rating).where(
        Rating.caption_id == caption_id, Rating.rater_key == rater_identity(rater),
        Rating.criterion == clean_criterion(criterion))).first()
    if rating is not None:
        session.delete(rating)
        session.flush()
    return rating is not None


def ratings_for_caption(*, session: Session, caption_id: int) -> list[Rating]:
    return list(session.scalars(select(Rating).where(Rating.caption_id == caption_id).order_by(Rating.id)))


def list_raters(*, session: Session, owner: str | None = None, study: str | None = None) -> list[str]:
    """Each person who rated the captions a filter with the same ``owner`` and ``study`` shows (None: the
    saved captions, no study's; a name: that study's), once (by rater_identity), in the display form stored
    first, in alphabetical order whatever the case."""
    first_id = func.min(Rating.id)  # the form stored first, as stored_rater picks it (not the alphabetical first)
    where = GalleryFilter(owner=owner, study=study).conditions()
    stmt = select(Rating.rater).join(Rating.caption).where(*where).group_by(Rating.rater).order_by(first_id)
    return sorted(first_names(session.scalars(stmt)).values(), key=str.casefold)


def list_criteria(*, session: Session) -> list[str]:
    return list(session.scalars(select(Rating.criterion).distinct().order_by(Rating.criterion)))


def list_model_keys(*, session: Session, owner: str | None = None) -> list[str]:
    stmt = select(Caption.model_key).distinct().order_by(Caption.model_key)
    if owner is not None:  # as list_raters: not the captions of a study that uses the owner's photo
        stmt = stmt.join(Caption.photo).where(Photo.owner == owner, Caption.study_id.is_(None))
    return list(session.scalars(stmt))


def _insert(session: Session, model):
    """INSERT with ON CONFLICT support for the two databases igcap runs on."""
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise NotImplementedError(f"igcap supports SQLite and PostgreSQL, not {name}")
    return insert(model)


# ---------------------------------------------------------------- gallery

@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery and the export show. Empty fields do not filter."""

    model_keys: Sequence[str] = ()  # only these models ("manual" for hand-written)
    favourites_only: bool = False
    min_stars: float | None = None  # mean stars on ``criterion`` at least this (unrated captions drop out)
    rater: str | None = None  # only captions this person rated (any criterion)
    unrated_by: str | None = None  # only captions this person has not rated on ``criterion`` yet
    search: str = ""  # words (any order), each a case-insensitive substring of the caption as edited or generated
    date_from: date | datetime | None = None  # created on or after (a date means that whole day, UTC)
    date_to: date | datetime | None = None  # created on or before (a date includes that whole day)
    criterion: str = DEFAULT_CRITERION  # which ratings min_stars and the summaries use
    study: str | None = None  # None: suggestions and favourites (no study captions); a name: that study's only
    owner: str | None = None  # only captions on this owner's photos (None: everyone's)

    @property
    def narrows(self) -> bool:
        """Whether a filter a person chose leaves captions out (which study, whose photos and the criterion
        only say where to look)."""
        return bool(self.model_keys or self.favourites_only or self.min_stars is not None or self.rater
                    or self.unrated_by or self.search or self.date_from or self.date_to)

    def __post_init__(self):
        keys = (self.model_keys,) if isinstance(self.model_keys, str) else self.model_keys
        object.__setattr__(self, "model_keys", tuple(k.strip() for k in keys or () if k.strip()))
        object.__setattr__(self, "criterion", clean_criterion(self.criterion))
        object.__setattr__(self, "search", (self.search or "").strip())
        if self.min_stars is not None and not 1 <= self.min_stars <= 5:
            raise ValueError("minimum stars must be between 1 and 5")
        for name in ("rater", "unrated_by"):
            value = getattr(self, name)
            object.__setattr__(self, name, clean_rater(value) if value and value.strip() else None)
        if self.date_from and self.date_to and _start(self.date_from) >= _end(self.date_to):
            raise ValueError("the 'from' date must not be after the 'to' date")

    def conditions(self) -> list[ColumnElement[bool]]:
        """WHERE clauses on Caption (subqueries for ratings), shared by the gallery and the export."""
        where: list[ColumnElement[bool]] = []
        if self.study is None:
            where.append(Caption.study_id.is_(None))
        else:
            where.append(Caption.study_id == select(Study.id).where(Study.name == self.study).scalar_subquery())
        if self.owner is not None:
            where.append(Caption.photo_id.in_(select(Photo.id).where(Photo.owner == self.owner)))
        if self.model_keys:
            where.append(Caption.model_key.in_(self.model_keys))
        if self.favourites_only:
            where.append(Caption.favourite.is_(True))
        where += has_every_word(self.search, Caption.search_text)  # as edited or generated, case aside, any script
        if self.date_from:
            where.append(Caption.created_at >= _start(self.date_from))
        if self.date_to:
            where.append(Caption.created_at < _end(self.date_to))
        # An alias keeps these subqueries independent of any Rating in the outer query (the long export).
        rating = aliased(Rating)
        if self.rater:
            where.append(select(rating.id).where(rating.caption_id == Caption.id, rating.rater_key == person(self.rater))
                         .correlate(Caption).exists())
        if self.unrated_by:
            where.append(~select(rating.id).where(rating.caption_id == Caption.id,
                                                  rating.rater_key == person(self.unrated_by),
                                                  rating.criterion == self.criterion).correlate(Caption).exists())
        if self.min_stars is not None:
            # Correlated, so each caption is one probe of the (caption_id, rater_key, criterion) index: fast
            # whatever the planner's statistics say (a grouped IN-subquery was 100x slower on fresh tables).
            mean = (select(func.avg(cast(rating.stars, Float)))
                    .where(rating.caption_id == Caption.id, rating.criterion == self.criterion)
                    .correlate(Caption).scalar_subquery())
            where.append(mean >= self.min_stars)
        return where


def _start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(), tzinfo=UTC)


def _end(value: date | datetime) -> datetime:
    """Exclusive upper bound: a date includes its whole day, a datetime itself."""
    if isinstance(value, datetime):
        return _start(value) + timedelta(microseconds=1)
    return datetime.combine(value + timedelta(days=1), time(), tzinfo=UTC)


@dataclass(frozen=True)
class GalleryItem:
    caption: Caption  # with .photo loaded (thumbnail; the full image is fetched by photo_image)
    rating_count: int  # ratings on the filter's criterion
    mean_stars: float | None
    my_stars: int | None  # the current rater's stars on that criterion, if a rater was given

    @property
    def photo(self) -> Photo:
        return self.caption.photo


@dataclass(frozen=True)
class GalleryPage:
    items: list[GalleryItem]  # whole photos: every matching caption of each photo on this page
    total: int  # captions matching the filter, all pages
    page: int  # 1-based, clamped to the last page
    pages: int  # at least 1
    per_page: int = 24  # photos per page
    photos: int = 0  # photos with a matching caption, all pages


def gallery(*, session: Session, filters: GalleryFilter | None = None, page: int = 1, per_page: int = 24,
            rater: str | None = None) -> GalleryPage:
    """One page of photos with their matching captions, newest first, in four queries whatever the page size.

    Pages hold whole photos (``per_page`` photos), ordered by each photo's newest matching caption, so a
    photo's captions are never split across pages. ``rater`` is the person looking: each item then carries
    their own stars.
    """
    filters = filters or GalleryFilter()
    if not 1 <= per_page <= 500:
        raise ValueError("per_page must be between 1 and 500")
    where = filters.conditions()
    total, photos = session.execute(select(func.count(Caption.id), func.count(Caption.photo_id.distinct()))
                                    .where(*where)).one()
    newest = (select(Caption.photo_id, func.max(Caption.created_at).label("newest"),
                     func.max(Caption.id).label("last_id"))
              .where(*where).group_by(Caption.photo_id).subquery())
    pages = max(1, math.ceil(photos / per_page))
    page = min(max(1, int(page)), pages)
    on_page = (select(newest).order_by(newest.c.newest.desc(), newest.c.last_id.desc(), newest.c.photo_id)
               .limit(per_page).offset((page - 1) * per_page).subquery())
    captions = list(session.scalars(
        select(Caption).join(on_page, on_page.c.photo_id == Caption.photo_id).where(*where)
        .options(joinedload(Caption.photo))
        .order_by(on_page.c.newest.desc(), on_page.c.last_id.desc(), on_page.c.photo_id,
                  Caption.created_at.desc(), Caption.id.desc())))
    ids = [c.id for c in captions]
    summaries = rating_summaries(session=session, caption_ids=ids, criterion=filters.criterion)
    mine = _stars_by(session, ids, rater_identity(rater), filters.criterion) if rater and rater.strip() else {}
    items = [GalleryItem(c, *summaries.get(c.id, (0, None)), my_stars=mine.get(c.id)) for c in captions]
    return GalleryPage(items=items, total=total, page=page, pages=pages, per_page=per_page, photos=photos)


def rating_summaries(*, session: Session, caption_ids: Iterable[int],
                     criterion: str = DEFAULT_CRITERION) -> dict[int, tuple[int, float]]:
    """caption id → (number of ratings, mean stars) on one criterion, for captions with ratings."""
    ids = list(caption_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Rating.caption_id, func.count(), func.avg(cast(Rating.stars, Float)))
        .where(Rating.caption_id.in_(ids), Rating.criterion == clean_criterion(criterion))
        .group_by(Rating.caption_id))
    return {cid: (count, float(mean)) for cid, count, mean in rows}


def _stars_by(session: Session, caption_ids: list[int], rater_key: str, criterion: str) -> dict[int, int]:
    if not caption_ids:
        return {}
    rows = session.execute(select(Rating.caption_id, Rating.stars).where(
        Rating.caption_id.in_(caption_ids), Rating.rater_key == rater_key, Rating.criterion == criterion))
    return {cid: stars for cid, stars in rows}


# ---------------------------------------------------------------- statistics

@dataclass(frozen=True)
class ModelStats:
    model_key: str
    count: int  # ratings
    mean: float | None
    distribution: dict[int, int] = field(default_factory=dict)  # stars 1..5 → number of ratings
    captions: int = 0  # captions written by this model (rated or not)


def rating_stats(*, session: Session, criterion: str | None = None,
                 filters: GalleryFilter | None = None) -> list[ModelStats]:
    """Per model: number of ratings, mean stars and the 1–5 distribution (all criteria when None).

    Every model with captions is listed (count 0, mean None when unrated), ordered by model key.
    """
    where = filters.conditions() if filters else []
    caption_counts = {key: n for key, n in session.execute(
        select(Caption.model_key, func.count(Caption.id)).where(*where).group_by(Caption.model_key))}
    stmt = (select(Caption.model_key, Rating.stars, func.count()).join(Rating.caption).where(*where)
            .group_by(Caption.model_key, Rating.stars))
    if criterion is not None:
        stmt = stmt.where(Rating.criterion == clean_criterion(criterion))
    dist: dict[str, dict[int, int]] = defaultdict(lambda: dict.fromkeys(range(1, 6), 0))
    for key, stars, count in session.execute(stmt):
        dist[key][stars] = count
    return [_stats(key, dist[key], caption_counts.get(key, 0)) for key in sorted(set(caption_counts) | set(dist))]


def _stats(key: str, distribution: dict[int, int], captions: int) -> ModelStats:
    count = sum(distribution.values())
    mean = sum(s * n for s, n in distribution.items()) / count if count else None
    return ModelStats(key, count, mean, dict(distribution), captions)
