"""The schema: photos, the captions written for them, the star ratings people give captions, and
evaluation studies (their photos, their own captions, and pairwise votes between two captions).

Every row records who made it: a photo its ``owner``, a caption its ``author``, a rating its ``rater``
(the signed-in identity: an e-mail address or a name; ``"local"`` without sign-in and for rows older
than sign-in). A photo is stored once per owner and content hash, so two people uploading the same
photo each get their own row and never see each other's; its captions and their ratings go with it when it is
deleted (ON DELETE CASCADE in the database, so a bulk delete cascades too). Nothing else is
deleted implicitly. Times are stored in UTC and come back as timezone-aware datetimes.

Matching people and words is done on folded copies, computed in Python by one rule and stored beside what they
fold: a caption's ``search_text`` (db.search), a rating's and a vote's ``rater_key`` (db.people.person). Neither
database's own case rules take part, so both give the same answers. They are set here on every write: a column
default computes them for every INSERT, the ORM's or a Core statement's (repo.rate's upsert, a study caption's
insert), and a validator whenever the ORM changes what they fold; db/ changes neither through an UPDATE
statement that bypasses the ORM (one would have to set them itself). The database keeps one rating per
person, caption and criterion, and one judgement per person and pair of captions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (JSON, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, MetaData,
                        SmallInteger, String, Text, TypeDecorator, UniqueConstraint, column)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.sql.expression import FunctionElement

from db.people import person
from db.search import caption_search_text

MANUAL = "manual"  # the model key of a caption a person wrote by hand (no registry model may take it)
MODEL_KEY_LENGTH = 64  # the longest model key a caption, a study or a vote can store (igcap.registry refuses longer)
MANUAL_LABEL = "Written by hand"  # what people see for it
DEFAULT_CRITERION = "overall"
LOCAL_OWNER = "local"  # owner/author of rows made without sign-in (igcap.access.LOCAL_ID reads it)
IDENTITY_LENGTH = 254  # an e-mail address is at most 254 characters
RATER_KEY_LENGTH = 3 * IDENTITY_LENGTH  # db.people.person of a rater: folding writes at most 3 characters for 1
DEFAULT_K = 3  # ratings each study caption needs
WINNERS = ("a", "b", "tie", "both_bad")  # a pairwise vote's outcome



def model_label(key: str, registry: Mapping[str, Any]) -> str:
    """What people see for a model key: its label in ``registry`` (key → igcap ModelSpec, or key → label),
    else "Written by hand" for hand-written captions, else the key itself (a model no longer configured)."""
    found = registry.get(key)
    if found is not None:
        return found if isinstance(found, str) else found.label
    return MANUAL_LABEL if key == MANUAL else key


# Named constraints: Alembic needs names to alter or drop them (and SQLite batch mode to rebuild tables).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """UTC in, aware UTC out: timestamptz on PostgreSQL, a naive UTC text on SQLite (which sorts)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def computed_from(rule, *sources: str):
    """A column default that computes ``rule`` from the row's ``sources`` in Python, for every INSERT (the ORM's,
    or a Core statement's that does not give the column)."""
    def default(context):
        row = context.get_current_parameters()
        return rule(*(row.get(name) for name in sources))
    return default


class least(FunctionElement):  # noqa: N801 - named as the SQL function
    """The smaller of two values in SQL (PostgreSQL's least, SQLite's two-argument min)."""
    type = Integer()
    inherit_cache = True


class greatest(least):  # noqa: N801
    """The larger of two values in SQL (PostgreSQL's greatest, SQLite's two-argument max)."""
    inherit_cache = True


@compiles(least)
@compiles(greatest)
def _as_named(element, compiler, **kw):
    return f"{type(element).__name__}({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
@compiles(greatest, "sqlite")
def _as_min_max(element, compiler, **kw):
    return f"{'min' if type(element) is least else 'max'}({compiler.process(element.clauses, **kw)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        # One row per owner and content: the same photo from two people is two private rows.
        UniqueConstraint("owner", "sha256", name="uq_photos_owner_sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(IDENTITY_LENGTH), default=LOCAL_OWNER, server_default=LOCAL_OWNER)
    sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded bytes
    name: Mapped[str] = mapped_column(String(255))  # the original file name
    width: Mapped[int]
    height: Mapped[int]
    format: Mapped[str] = mapped_column(String(16))  # JPEG, PNG, HEIF… as decoded
    # Bytes in the database so a hosted app keeps them without a disk. Deferred: lists never load them.
    image_jpeg: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    thumbnail_jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    captions: Mapped[list[Caption]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True, order_by="Caption.id")

    def __repr__(self) -> str:
        return f"Photo(id={self.id!r}, name={self.name!r}, sha256={self.sha256[:12]!r}…)"


class Caption(Base):
    """A caption: a suggestion or favourite from the Create page (``study_id`` None), or a study caption.

    Study captions are their own kind: one per study, photo and model, never favourites, and the
    gallery leaves them out unless asked for them.
    """

    __tablename__ = "captions"
    __table_args__ = (UniqueConstraint("study_id", "photo_id", "model_key", name="uq_captions_study_photo_model"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(IDENTITY_LENGTH), default=LOCAL_OWNER, server_default=LOCAL_OWNER)
    model_key: Mapped[str] = mapped_column(String(MODEL_KEY_LENGTH), index=True)  # registry key, or "manual"
    model_source: Mapped[str | None] = mapped_column(String(512))  # hub id or path, "@revision" if known
    text: Mapped[str] = mapped_column(Text)  # as shown and edited
    generated_text: Mapped[str | None] = mapped_column(Text)  # as the model wrote it; None when manual
    settings: Mapped[dict[str, Any] | None]  # DecodingSettings.to_dict() used to generate it
    favourite: Mapped[bool] = mapped_column(default=False)
    seconds: Mapped[float | None] = mapped_column(Float)  # generation time
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # text and generated text folded (db.search.caption_search_text): what the gallery's search matches
    search_text: Mapped[str] = mapped_column(Text, default=computed_from(caption_search_text, "text", "generated_text"))

    photo: Mapped[Photo] = relationship(back_populates="captions")
    ratings: Mapped[list[Rating]] = relationship(
        back_populates="caption", cascade="all, delete-orphan", passive_deletes=True, order_by="Rating.id")

    @validates("text", "generated_text")
    def _fold_for_search(self, key: str, value: str | None) -> str | None:
        text, generated = (value, self.generated_text) if key == "text" else (self.text, value)
        self.search_text = caption_search_text(text, generated)
        return value

    @property
    def edited(self) -> bool:
        return self.generated_text is not None and self.text != self.generated_text

    def __repr__(self) -> str:
        return f"Caption(id={self.id!r}, model_key={self.model_key!r}, text={self.text[:30]!r})"


class RaterKey:
    """``rater_key``: the person a row's ``rater`` means (db.people.person), kept with every change of ``rater``."""

    rater_key: Mapped[str] = mapped_column(String(RATER_KEY_LENGTH), default=computed_from(person, "rater"))

    @validates("rater")
    def _key_rater(self, key: str, value: str) -> str:
        self.rater_key = person(value)
        return value


class Rating(RaterKey, Base):
    __tablename__ = "ratings"
    __table_args__ = (
        # One rating per person, caption and criterion ("Maya" and "maya" are one): rating again updates it.
        UniqueConstraint("caption_id", "rater_key", "criterion", name="uq_ratings_caption_rater_key_criterion"),
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars_1_to_5"),
        Index("ix_ratings_rater_key", "rater_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    caption_id: Mapped[int] = mapped_column(ForeignKey("captions.id", ondelete="CASCADE"))
    rater: Mapped[str] = mapped_column(String(IDENTITY_LENGTH))  # as first stored for this person (repo.stored_rater)
    stars: Mapped[int] = mapped_column(SmallInteger)
    criterion: Mapped[str] = mapped_column(String(40), default=DEFAULT_CRITERION)
    comment: Mapped[str | None] = mapped_column(Text)
    # The caption's text when the stars were given (None for ratings given before revision 0003).
    rated_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # first rated
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)  # last changed

    caption: Mapped[Caption] = relationship(back_populates="ratings")

    def __repr__(self) -> str:
        return f"Rating(caption_id={self.caption_id!r}, rater={self.rater!r}, {self.criterion}={self.stars!r})"


class HashtagSet(Base):
    """A person's saved hashtags under a name ("travel": "#travel #wanderlust #roadtrip"), added to captions."""

    __tablename__ = "hashtag_sets"
    __table_args__ = (UniqueConstraint("owner", "name", name="uq_hashtag_sets_owner_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(IDENTITY_LENGTH), default="")  # whose set; "" = shared (no sign-in)
    name: Mapped[str] = mapped_column(String(40))  # lower case, single spaces
    tags: Mapped[str] = mapped_column(Text)  # "#travel #wanderlust #roadtrip", in the order given
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def tag_list(self) -> list[str]:
        return self.tags.split()

    def __repr__(self) -> str:
        return f"HashtagSet(owner={self.owner!r}, name={self.name!r}, tags={self.tags!r})"


class Study(Base):
    """A named evaluation round: photos × models × one decoding setting, rated blind and voted in pairs."""

    __tablename__ = "studies"
    __table_args__ = (CheckConstraint("k BETWEEN 1 AND 100", name="k_1_to_100"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    models: Mapped[list[str]] = mapped_column(JSON)  # model keys, in the order chosen
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)  # DecodingSettings.to_dict(), one variant
    criteria: Mapped[list[str]] = mapped_column(JSON, default=lambda: [DEFAULT_CRITERION])
    k: Mapped[int] = mapped_column(SmallInteger, default=DEFAULT_K)  # ratings per caption
    seed: Mapped[int] = mapped_column(Integer, default=0)  # the raters' queue order and arena pairs
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    photos: Mapped[list[StudyPhoto]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="StudyPhoto.position")

    def __repr__(self) -> str:
        return f"Study(id={self.id!r}, name={self.name!r}, models={self.models!r})"


class StudyPhoto(Base):
    __tablename__ = "study_photos"
    __table_args__ = (UniqueConstraint("study_id", "photo_id", name="uq_study_photos_study_photo"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]  # the order the photos were given in

    photo: Mapped[Photo] = relationship()


class Vote(RaterKey, Base):
    """One pairwise judgement: which of two captions of the same photo is better (as shown: A and B)."""

    __tablename__ = "votes"
    __table_args__ = (
        CheckConstraint("winner IN ('a', 'b', 'tie', 'both_bad')", name="winner_known"),
        Index("ix_votes_study_rater_key", "study_id", "rater_key"),
        # One judgement per person and pair of captions, whichever side each was shown on. An index on
        # expressions, which SQLite's batch table rebuilds do not carry over: a migration that rebuilds votes
        # creates it again (tests/db/test_engine.py compares every index name with the models').
        Index("uq_votes_rater_key_pair", "rater_key", least(column("caption_a_id"), column("caption_b_id")),
              greatest(column("caption_a_id"), column("caption_b_id")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    caption_a_id: Mapped[int] = mapped_column(ForeignKey("captions.id", ondelete="CASCADE"), index=True)
    caption_b_id: Mapped[int] = mapped_column(ForeignKey("captions.id", ondelete="CASCADE"), index=True)
    model_a: Mapped[str] = mapped_column(String(MODEL_KEY_LENGTH))
    model_b: Mapped[str] = mapped_column(String(MODEL_KEY_LENGTH))
    text_a: Mapped[str] = mapped_column(Text)  # the texts as shown when the vote was given
    text_b: Mapped[str] = mapped_column(Text)
    winner: Mapped[str] = mapped_column(String(8))  # one of WINNERS
    rater: Mapped[str] = mapped_column(String(IDENTITY_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Vote(id={self.id!r}, {self.model_a!r} vs {self.model_b!r}: {self.winner!r}, rater={self.rater!r})"
