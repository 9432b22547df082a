"""Studies: creating them, storing their captions, and the two queues people work through.

Like :mod:`db.repo`, every function takes a keyword-only ``session`` and never commits.

**Rate queue** (:func:`next_caption`, :func:`rate_study_caption`). Each study caption needs ``k``
raters (a rater gives stars on every criterion of the study at once). A rater is never offered a
caption they rated, nor one that already has ``k`` raters. The next caption comes from the model
whose captions are least rated so far (ratings per caption of that model, so every model is rated at
a similar pace), and within it the caption with the fewest raters; ties are broken in an order that
is random per rater but reproducible: a hash of the study's seed, the rater and the caption (between
models, also of how many captions the rater has rated, so the models' order changes from round to
round instead of repeating one cycle a rater could learn). A rater is
a person (``db.repo.rater_identity``): "Maya" and "maya " are one rater everywhere here.

**Race safety.** :func:`rate_study_caption` guarantees that a caption **never has more than k
raters**, however many people submit at once: it locks the caption's row (``SELECT … FOR UPDATE``
on PostgreSQL; on SQLite igcap's write transactions start with ``BEGIN IMMEDIATE``, which serialises
them), counts the raters, and refuses with :class:`CaptionFullError` when a new rater would be the
(k+1)-th. The price: when two people were shown the same last slot, the later submission is refused
and that person gets the next caption. The queue makes that rare: it fills the least-rated captions
first and breaks ties in a different order for each rater. Call it inside a write transaction
(``db.transaction(engine)``).

**Arena** (:func:`next_pair`, :func:`vote`). A pair is two captions of one photo by two different
models of the study. The next pair is the pair of models with the fewest votes in the study (so every
pair is covered evenly), on the photo where that pair has the fewest votes, never a photo and pair
this rater already voted on; ties again break in the per-rater order. Which caption is "A" is decided
the same way (random, reproducible). The vote stores both texts as shown. Each person has one judgement
per photo and pair: voting on it again replaces it (:func:`vote`), and the database refuses a second row.

People are matched by ``rater_key`` (db.people.person, stored with every rating and vote), the same rule on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased, joinedload

from db.models import (DEFAULT_CRITERION, DEFAULT_K, MODEL_KEY_LENGTH, WINNERS, Caption, Photo, Rating, Study,
                       StudyPhoto, Vote, utcnow)
from db.people import first_names
from db.repo import (NotFoundError, _insert, _settings_dict, clean_criterion, rate, rater_identity, stored_rater,
                     without_nul)

STUDY_NAME_MAX = 80
K_MAX = 100
SEED_MAX = 2**31 - 1  # a study's seed is 0 to this: Study.seed is an Integer, int4 on PostgreSQL (= igcap.decoding's)
_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]+$")  # no control characters (names appear in file names and tables)


class CaptionFullError(ValueError):
    """The caption already has its k raters: the rating was not stored (take the next caption)."""


# ---------------------------------------------------------------- studies

def clean_study_name(name: str | None) -> str:
    text = " ".join((name or "").split())
    if not text:
        raise ValueError("the study needs a name")
    if len(text) > STUDY_NAME_MAX:
        raise ValueError(f"the study name is too long (at most {STUDY_NAME_MAX} characters)")
    if not _NAME_RE.match(text):
        raise ValueError("the study name cannot contain control characters")
    return text


def create_study(*, session: Session, name: str, models: Sequence[str], settings: Mapping[str, Any] | Any,
                 photo_ids: Iterable[int], criteria: Sequence[str] | None = None, k: int = DEFAULT_K,
                 seed: int | None = None) -> Study:
    """A new study over these photos (in this order) and models; ``seed`` None picks one (stored).

    A name already taken is refused with ValueError, also when another session creates a study of that name
    at the same moment: the row goes in with ``INSERT … ON CONFLICT (name) DO NOTHING`` (on PostgreSQL the
    later insert waits for the earlier transaction and then inserts nothing; SQLite's writers queue)."""
    name = clean_study_name(name)
    if session.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise _name_taken(name)
    models = _clean_models(models)
    criteria = _clean_criteria(criteria)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= K_MAX:
        raise ValueError(f"k (ratings per caption) must be a whole number from 1 to {K_MAX}")
    photo_ids = list(dict.fromkeys(photo_ids))
    if not photo_ids:
        raise ValueError("a study needs at least one photo")
    found = set(session.scalars(select(Photo.id).where(Photo.id.in_(photo_ids))))
    if missing := [pid for pid in photo_ids if pid not in found]:
        raise NotFoundError(f"photo(s) {missing} do not exist")
    if seed is None:
        seed = secrets.randbelow(SEED_MAX + 1)
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"the seed must be a whole number from 0 to {SEED_MAX}")
    values = dict(name=name, models=models, settings=_settings_dict(settings) or {}, criteria=criteria, k=k,
                  seed=seed, created_at=utcnow())
    study_id = session.scalar(_insert(session, Study).values(**values)
                              .on_conflict_do_nothing(index_elements=["name"]).returning(Study.id))
    if study_id is None:  # created by another session since the check above
        raise _name_taken(name)
    session.add_all(StudyPhoto(study_id=study_id, photo_id=pid, position=i) for i, pid in enumerate(photo_ids))
    session.flush()
    return session.get(Study, study_id)


def _name_taken(name: str) -> ValueError:
    return ValueError(f"A study named “{name}” already exists: choose another name.")


def _clean_models(models: Sequence[str]) -> list[str]:
    keys = list(dict.fromkeys(k.strip() for k in ([models] if isinstance(models, str) else models) if k.strip()))
    if not keys:
        raise ValueError("choose at least one model for the study")
    if any(len(k) > MODEL_KEY_LENGTH for k in keys):
        raise ValueError(f"model keys are at most {MODEL_KEY_LENGTH} characters")
    return keys


def _clean_criteria(criteria: Sequence[str] | None) -> list[str]:
    names = [criteria] if isinstance(criteria, str) else list(criteria or [])
    cleaned = list(dict.fromkeys(clean_criterion(c) for c in names if c and c.strip()))
    return cleaned or [DEFAULT_CRITERION]


def get_study(*, session: Session, name: str) -> Study:
    study = session.scalars(select(Study).where(Study.name == " ".join((name or "").split()))).first()
    if study is None:
        raise NotFoundError(f"there is no study named {name!r}")
    return study


def delete_study(*, session: Session, name: str) -> dict[str, int]:
    """Delete a study with its captions, their ratings and its votes, and the photos nothing else uses
    (:func:`photos_deleted_with`: the study's uploads, which the Gallery never shows); photos with captions
    saved outside studies, or in another study, stay. Returns what went, as ``study_counts`` said just before
    (photos: how many it held), with ``photos_deleted``. NotFoundError if there is no such study. The rows go
    by explicit deletes, children first, so the result does not depend on the database enforcing its ON
    DELETE rules."""
    study = get_study(session=session, name=name)
    counts = study_counts(session=session, study=study)
    orphans = photos_deleted_with(session=session, study=study)
    captions = select(Caption.id).where(Caption.study_id == study.id).scalar_subquery()
    session.execute(delete(Vote).where(Vote.study_id == study.id))
    session.execute(delete(Rating).where(Rating.caption_id.in_(captions)))
    session.execute(delete(Caption).where(Caption.study_id == study.id))
    session.execute(delete(StudyPhoto).where(StudyPhoto.study_id == study.id))
    if orphans:
        session.execute(delete(Photo).where(Photo.id.in_(orphans)), execution_options={"synchronize_session": False})
    session.execute(delete(Study).where(Study.id == study.id))
    session.expunge(study)
    return counts | {"photos_deleted": len(orphans)}


def photos_deleted_with(*, session: Session, study: Study) -> list[int]:
    """The ids of the study's photos that deleting it deletes: those with no caption outside this study and in
    no other study (nothing would show them again)."""
    other_caption = select(Caption.id).where(Caption.photo_id == StudyPhoto.photo_id,
                                             (Caption.study_id != study.id) | Caption.study_id.is_(None))
    other = aliased(StudyPhoto)
    other_study = select(other.id).where(other.photo_id == StudyPhoto.photo_id, other.study_id != study.id)
    return list(session.scalars(
        select(StudyPhoto.photo_id)
        .where(StudyPhoto.study_id == study.id, ~other_caption.exists(), ~other_study.exists())
        .order_by(StudyPhoto.position)))


def list_studies(*, session: Session) -> list[Study]:
    return list(session.scalars(select(Study).order_by(Study.created_at.desc(), Study.id.desc())))


def pickable_photos(*, session: Session, limit: int = 1000) -> list[Photo]:
    """Stored photos, newest first (thumbnails only), to pick a study's photos from."""
    return list(session.scalars(select(Photo).order_by(Photo.created_at.desc(), Photo.id.desc()).limit(limit)))


def study_photos(*, session: Session, study: Study) -> list[Photo]:
    """The study's photos in the order they were given (thumbnails loaded, not the full images)."""
    return list(session.scalars(select(Photo).join(StudyPhoto, StudyPhoto.photo_id == Photo.id)
                                .where(StudyPhoto.study_id == study.id).order_by(StudyPhoto.position)))


def study_captions(*, session: Session, study: Study) -> list[Caption]:
    return list(session.scalars(select(Caption).where(Caption.study_id == study.id)
                                .order_by(Caption.photo_id, Caption.model_key)))


def missing_captions(*, session: Session, study: Study) -> dict[str, list[int]]:
    """Model key → the study's photo ids it has not captioned yet, in the study's order (what is left to do)."""
    photo_ids = list(session.scalars(select(StudyPhoto.photo_id).where(StudyPhoto.study_id == study.id)
                                     .order_by(StudyPhoto.position)))
    done = set(session.execute(select(Caption.model_key, Caption.photo_id).where(Caption.study_id == study.id)))
    return {key: [pid for pid in photo_ids if (key, pid) not in done] for key in study.models}


def save_study_caption(*, session: Session, study: Study, photo_id: int, model_key: str, text: str,
                       generated_text: str | None = None, model_source: str | None = None,
                       seconds: float | None = None) -> Caption:
    """Store a model's caption of a study photo; if one is there already (another run got there first),
    that one is kept and returned: a study has one caption per photo and model."""
    if model_key not in study.models:
        raise ValueError(f"{model_key!r} is not one of the study's models")
    if not isinstance(text, str):
        raise ValueError("caption text must be a string")
    # as repo.add_caption: PostgreSQL refuses NUL in text (a byte-level GPT-2 can write one), so a study whose
    # caption held one failed to save it on every rerun and never finished
    text, generated_text, model_source = without_nul(text), without_nul(generated_text), without_nul(model_source)
    now = utcnow()
    stmt = _insert(session, Caption).values(
        photo_id=photo_id, model_key=model_key, model_source=(model_source or None) and model_source[:512],
        text=text, generated_text=text if generated_text is None else generated_text, settings=study.settings,
        favourite=False, seconds=seconds, study_id=study.id, created_at=now, updated_at=now)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["study_id", "photo_id", "model_key"]))
    return session.scalars(select(Caption).where(Caption.study_id == study.id, Caption.photo_id == photo_id,
                                                 Caption.model_key == model_key)).one()


# ---------------------------------------------------------------- the rate queue

def shuffle_key(seed: int, *parts: Any) -> str:
    """A seeded shuffle key (a hash, not Python's ``hash``, which changes between processes): the same seed and
    parts always give the same place. Per rater, the rater is the first part."""
    text = "\x1f".join(str(p) for p in (seed, *parts))
    return hashlib.sha256(text.encode()).hexdigest()


def _raters_per_caption(session: Session, study: Study) -> dict[int, set[str]]:
    """caption id → the people (``rater_identity``) who rated it."""
    raters: dict[int, set[str]] = defaultdict(set)
    rows = session.execute(select(Rating.caption_id, Rating.rater_key).join(Rating.caption)
                           .where(Caption.study_id == study.id).distinct())
    for caption_id, who in rows:
        raters[caption_id].add(who)
    return raters


def _raters_of(session: Session, caption_id: int) -> set[str]:
    """The people (``rater_identity``) who rated one caption."""
    return set(session.scalars(select(Rating.rater_key).where(Rating.caption_id == caption_id).distinct()))


def next_caption(*, session: Session, study: Study, rater: str, skip: Collection[int] = ()) -> Caption | None:
    """The caption this rater should rate next (photo loaded), or None when nothing is left for them.

    ``skip``: caption ids this rater passed over for now (the page keeps them for the session).
    """
    me = rater_identity(rater)
    captions = session.execute(select(Caption.id, Caption.model_key).where(Caption.study_id == study.id)).all()
    raters = _raters_per_caption(session, study)
    rated_units = Counter()  # model → (caption, rater) pairs so far
    per_model = Counter(key for _, key in captions)
    for cid, key in captions:
        rated_units[key] += len(raters.get(cid, ()))
    open_ = [(cid, key) for cid, key in captions
             if me not in raters.get(cid, ()) and len(raters.get(cid, ())) < study.k and cid not in skip]
    if not open_:
        return None
    # the tie between models is drawn again at each step (how many this rater has rated is part of the hash):
    # a draw fixed per rater repeated one order of models round after round, which told them who wrote what
    done = sum(1 for cid, _ in captions if me in raters.get(cid, ()))
    cid, _ = min(open_, key=lambda c: (rated_units[c[1]] / per_model[c[1]],
                                       shuffle_key(study.seed, me, "model", done, c[1]),
                                       len(raters.get(c[0], ())), shuffle_key(study.seed, me, c[0])))
    return session.get(Caption, cid, options=[joinedload(Caption.photo)])


def caption_open_to(*, session: Session, study: Study, caption_id: int, rater: str) -> Caption | None:
    """The caption (photo loaded) if this rater may still rate it: in the study, not full, not rated by them."""
    me = rater_identity(rater)
    caption = session.get(Caption, caption_id, options=[joinedload(Caption.photo)])
    if caption is None or caption.study_id != study.id:
        return None
    raters = _raters_of(session, caption_id)
    return caption if me not in raters and len(raters) < study.k else None


def rate_study_caption(*, session: Session, study: Study, caption_id: int, rater: str, stars: Mapping[str, int],
                       comment: str | None = None) -> list[Rating]:
    """Stars for every criterion of the study, given by ``rater`` to one study caption, stored together.

    Refused with :class:`CaptionFullError` when the caption has ``k`` other raters already (see the
    module docstring for the guarantee). The rater rating the same caption again updates their stars.
    """
    me = rater_identity(rater)
    given = {clean_criterion(c): s for c, s in stars.items()}
    if missing := [c for c in study.criteria if c not in given]:
        raise ValueError(f"give stars for every criterion ({', '.join(missing)} missing)")
    if extra := [c for c in given if c not in study.criteria]:
        raise ValueError(f"{', '.join(extra)} is not a criterion of this study")
    locked = session.execute(select(Caption.id).where(Caption.id == caption_id, Caption.study_id == study.id)
                             .with_for_update()).first()
    if locked is None:
        raise NotFoundError(f"caption {caption_id} is not part of the study {study.name!r}")
    others = _raters_of(session, caption_id)
    if me not in others and len(others) >= study.k:
        raise CaptionFullError(f"this caption already has its {study.k} ratings; here is the next one")
    return [rate(session=session, caption_id=caption_id, rater=rater, stars=given[c], criterion=c, comment=comment,
                 in_study=True) for c in study.criteria]


@dataclass(frozen=True)
class RatingProgress:
    rated_by_rater: int  # captions this rater rated
    open_to_rater: int  # captions this rater could still rate (not full, not rated by them)
    complete: int  # captions with their k raters
    captions: int  # captions in the study
    ratings: int  # (caption, rater) pairs so far, at most k per caption counted
    needed: int  # captions × k

    @property
    def for_rater(self) -> int:
        """What this rater can rate in all: what they rated plus what is still open to them."""
        return self.rated_by_rater + self.open_to_rater

    @property
    def remaining(self) -> int:
        return self.needed - self.ratings


def rating_progress(*, session: Session, study: Study, rater: str | None = None) -> RatingProgress:
    captions = list(session.scalars(select(Caption.id).where(Caption.study_id == study.id)))
    raters = _raters_per_caption(session, study)
    name = rater_identity(rater) if rater and rater.strip() else None
    mine = sum(1 for cid in captions if name in raters.get(cid, ()))
    open_ = sum(1 for cid in captions if name not in raters.get(cid, ()) and len(raters.get(cid, ())) < study.k)
    return RatingProgress(rated_by_rater=mine, open_to_rater=open_ if name else 0,
                          complete=sum(1 for cid in captions if len(raters.get(cid, ())) >= study.k),
                          captions=len(captions), ratings=sum(min(len(raters.get(c, ())), study.k) for c in captions),
                          needed=len(captions) * study.k)


# ---------------------------------------------------------------- the arena

@dataclass(frozen=True)
class Pair:
    """Two captions of one photo by two models, in the order to show them: ``a`` on the left as "A"."""

    photo: Photo
    a: Caption
    b: Caption

    @property
    def key(self) -> tuple[int, str, str]:
        """(photo id, model, model) with the models sorted: the same pair whichever side each is on."""
        return (self.photo.id, *sorted((self.a.model_key, self.b.model_key)))


def _pair_key(photo_id: int, x: str, y: str) -> tuple[int, str, str]:
    return (photo_id, *sorted((x, y)))


def next_pair(*, session: Session, study: Study, rater: str,
              skip: Collection[tuple[int, str, str]] = ()) -> Pair | None:
    """The pair this rater should judge next, or None when they have judged every pair of every photo."""
    me = rater_identity(rater)
    by_photo: dict[int, dict[str, int]] = defaultdict(dict)
    for cid, pid, key in session.execute(select(Caption.id, Caption.photo_id, Caption.model_key)
                                         .where(Caption.study_id == study.id)):
        by_photo[pid][key] = cid
    votes = _judgements(session, study)
    per_pair = Counter(v.key[1:] for v in votes)
    per_photo_pair = Counter(v.key for v in votes)
    mine = {v.key for v in votes if v.person == me}
    options = []
    for x, y in itertools.combinations(study.models, 2):
        for pid, captions in by_photo.items():
            key = _pair_key(pid, x, y)
            if x in captions and y in captions and key not in mine and key not in skip:
                options.append((per_pair[key[1:]], per_photo_pair[key], shuffle_key(study.seed, me, *key), key))
    if not options:
        return None
    *_, (pid, x, y) = min(options)
    ids = by_photo[pid]
    first, second = (x, y) if int(shuffle_key(study.seed, me, "side", pid, x, y), 16) % 2 else (y, x)
    caption_a, caption_b = session.get(Caption, ids[first]), session.get(Caption, ids[second])
    return Pair(photo=session.get(Photo, pid), a=caption_a, b=caption_b)


def pair_open_to(*, session: Session, study: Study, caption_a_id: int, caption_b_id: int, rater: str) -> Pair | None:
    """The pair the page pinned (A = ``caption_a_id``), if it may still be shown to this rater: both captions
    in this study, of one photo by two models, and not judged by them yet; else None (the page then asks
    :func:`next_pair`). A pin outlives its study in the page's state, and SQLite hands a deleted study's
    caption ids to new rows (another person's private captions, say): those must never be shown."""
    a, b = session.get(Caption, caption_a_id), session.get(Caption, caption_b_id)
    if (a is None or b is None or a.study_id != study.id or b.study_id != study.id or a.photo_id != b.photo_id
            or a.model_key == b.model_key):
        return None
    me, key = rater_identity(rater), _pair_key(a.photo_id, a.model_key, b.model_key)
    if any(v.person == me and v.key == key for v in _judgements(session, study)):
        return None
    return Pair(photo=a.photo, a=a, b=b)


def vote(*, session: Session, study: Study, caption_a_id: int, caption_b_id: int, winner: str, rater: str) -> Vote:
    """Store one judgement of the pair as it was shown (A = ``caption_a_id``), with both texts as shown.

    One judgement per person, photo and pair: judging the same pair again (a second tab showing it, a
    replayed click, the name typed in another case) replaces what they said before, as rating a caption
    again does. Race-safe like :func:`rate_study_caption`: both captions' rows are locked first (on SQLite
    the write transaction is serialised), so runs voting at once store one row."""
    me = rater_identity(rater)
    if winner not in WINNERS:
        raise ValueError(f"the vote must be one of {', '.join(WINNERS)}, not {winner!r}")
    session.execute(select(Caption.id).where(Caption.id.in_({caption_a_id, caption_b_id}), Caption.study_id == study.id)
                    .order_by(Caption.id).with_for_update()).all()
    a, b = session.get(Caption, caption_a_id), session.get(Caption, caption_b_id)
    if a is None or b is None or a.study_id != study.id or b.study_id != study.id:
        raise NotFoundError(f"captions {caption_a_id} and {caption_b_id} are not both part of the study {study.name!r}")
    if a.photo_id != b.photo_id or a.model_key == b.model_key:
        raise ValueError("a pair is two captions of the same photo by two different models")
    shown = dict(caption_a_id=a.id, caption_b_id=b.id, model_a=a.model_key, model_b=b.model_key, text_a=a.text,
                 text_b=b.text, winner=winner, created_at=utcnow())
    models = (a.model_key, b.model_key)
    row = session.scalars(select(Vote).where(
        Vote.study_id == study.id, Vote.photo_id == a.photo_id, Vote.model_a.in_(models), Vote.model_b.in_(models),
        Vote.rater_key == me)).first()
    if row is not None:
        for name, value in shown.items():
            setattr(row, name, value)
    else:
        row = Vote(study_id=study.id, photo_id=a.photo_id, rater=stored_rater(session=session, rater=rater), **shown)
        session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class VoteProgress:
    by_rater: int  # votes this rater gave
    open_to_rater: int  # photo × pair combinations they have not judged
    votes: int  # all votes in the study
    per_pair: dict[tuple[str, str], int]  # (model, model) sorted → votes


def vote_progress(*, session: Session, study: Study, rater: str | None = None) -> VoteProgress:
    name = rater_identity(rater) if rater and rater.strip() else None
    by_photo: dict[int, set[str]] = defaultdict(set)
    for pid, key in session.execute(select(Caption.photo_id, Caption.model_key).where(Caption.study_id == study.id)):
        by_photo[pid].add(key)
    pairs = {_pair_key(pid, x, y) for pid, keys in by_photo.items() for x, y in itertools.combinations(sorted(keys), 2)}
    votes = _judgements(session, study)
    mine = {v.key for v in votes if v.person == name}
    per_pair = Counter(v.key[1:] for v in votes)
    return VoteProgress(by_rater=len(mine),
                        open_to_rater=len(pairs - mine) if name else 0, votes=len(votes), per_pair=dict(per_pair))


# ---------------------------------------------------------------- plain rows for the leaderboard

def rating_rows(*, session: Session, study: Study) -> list[dict[str, Any]]:
    """One dict per rating of the study's captions: photo (sha256), model, rater, stars, criterion, caption_id.

    One per person, caption and criterion (the database keeps no more), under the name the person's first
    rating was stored with."""
    stmt = (select(Photo.sha256, Caption.model_key, Rating.rater, Rating.rater_key, Rating.stars, Rating.criterion,
                   Caption.id)
            .join(Rating.caption).join(Caption.photo).where(Caption.study_id == study.id).order_by(Rating.id))
    rows = session.execute(stmt).all()
    names = first_names(row.rater for row in rows)
    return [dict(photo=sha, model=key, rater=names[who], stars=stars, criterion=crit, caption_id=cid)
            for sha, key, _, who, stars, crit, cid in rows]


@dataclass(frozen=True)
class _Judgement:
    id: int
    key: tuple[int, str, str]  # (photo id, model, model) sorted
    sha256: str
    model_a: str
    model_b: str
    winner: str
    person: str  # db.people.person (rater_key)
    name: str  # as the person's first vote was stored


def _judgements(session: Session, study: Study) -> list[_Judgement]:
    """The study's votes in the order given: one per person, photo and pair (the database keeps no more)."""
    stmt = (select(Vote.id, Vote.photo_id, Photo.sha256, Vote.model_a, Vote.model_b, Vote.winner, Vote.rater,
                   Vote.rater_key)
            .join(Photo, Photo.id == Vote.photo_id).where(Vote.study_id == study.id).order_by(Vote.id))
    rows = session.execute(stmt).all()
    names = first_names(row.rater for row in rows)
    return [_Judgement(row.id, _pair_key(row.photo_id, row.model_a, row.model_b), row.sha256, row.model_a, row.model_b,
                       row.winner, row.rater_key, names[row.rater_key]) for row in rows]


def vote_rows(*, session: Session, study: Study) -> list[dict[str, Any]]:
    """One dict per judgement of the study: photo (sha256), model_a, model_b, winner, rater (one per person, photo
    and pair, see :func:`_judgements`)."""
    return [dict(photo=v.sha256, model_a=v.model_a, model_b=v.model_b, winner=v.winner, rater=v.name)
            for v in _judgements(session, study)]


def caption_rows(*, session: Session, study: Study) -> list[dict[str, Any]]:
    """One dict per study caption: photo (sha256), model, text (for the automatic measures)."""
    stmt = (select(Photo.sha256, Caption.model_key, Caption.text).join(Caption.photo)
            .where(Caption.study_id == study.id).order_by(Caption.photo_id, Caption.model_key))
    return [dict(photo=sha, model=key, text=text) for sha, key, text in session.execute(stmt)]


def study_counts(*, session: Session, study: Study) -> dict[str, int]:
    """photos, captions, ratings and votes of a study (for lists and the CLI)."""
    one = lambda stmt: session.scalar(stmt) or 0  # noqa: E731
    return {"photos": one(select(func.count()).where(StudyPhoto.study_id == study.id)),
            "captions": one(select(func.count()).where(Caption.study_id == study.id)),
            "ratings": one(select(func.count(Rating.id)).join(Rating.caption).where(Caption.study_id == study.id)),
            "votes": one(select(func.count()).where(Vote.study_id == study.id))}
