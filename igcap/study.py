"""Evaluation studies, igcap's side: store the photos, create a study with checked models and settings,
and write its captions — every model on every photo with the study's one decoding setting.

Generation works through the photos a batch at a time: each model captions the batch, then its captions
are saved together (one transaction per batch), photo by photo with each photo's models in a seeded
order, so caption ids follow no model. Closing the page or killing the process loses at most the batch in
progress; running it again (:func:`generate_study`) does only what is missing. A model that cannot
caption is reported and skipped; the other models go on. A database error while saving stops the run (the batches saved stay; the command
line says so in one line): the next batches would meet the same database. The database layout and the
queues live in :mod:`db.studies`.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from db import repo, studies, transaction
from db.models import LOCAL_OWNER, Study
from igcap.decoding import DecodingSettings
from igcap.generation_queue import JobSize
from igcap.images import Photo, resized_jpeg, thumbnail_jpeg

if TYPE_CHECKING:
    from igcap.captioner import CaptionResult

log = logging.getLogger(__name__)
BATCH = 4  # photos per batch, captioned together by each model: a killed run loses at most their captions
T = TypeVar("T")


@dataclass(frozen=True)
class StudyEvent:
    """Progress of a generation run, one event per model start, caption saved, or model failure."""

    stage: str  # "model" (a model starts), "caption" (one photo's caption saved), "failed" (the model gave up)
    model_key: str
    model_index: int  # which of the models with work to do, 0-based
    models: int  # how many models have work to do in this run
    done: int  # captions saved by this run so far
    total: int  # captions this run set out to make
    seconds_left: float | None = None  # estimate from this run's pace (None before the first caption)
    photo_name: str = ""
    message: str = ""  # for "failed": what went wrong and what to do


@dataclass
class GenerationReport:
    made: dict[str, int] = field(default_factory=dict)  # model → captions saved by this run
    failed: dict[str, str] = field(default_factory=dict)  # model → why it could not caption
    already_done: int = 0  # captions that were there before this run (resume)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.failed


def store_photo(*, session, photo: Photo, owner: str = LOCAL_OWNER):
    """``owner``'s database row of a decoded photo (stored once per owner and content hash: a 1080-px copy
    and a thumbnail)."""
    return repo.save_photo(session=session, sha256=photo.sha256, name=photo.name, width=photo.width,
                           height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                           thumbnail_jpeg=thumbnail_jpeg(photo.image), owner=owner)


def create_study(*, session, name: str, photo_ids: Iterable[int], models: Sequence[str], settings: DecodingSettings,
                 known_models: Iterable[str] | None = None, criteria: Sequence[str] | None = None, k: int = 3,
                 seed: int | None = None) -> Study:
    """A study: ``settings`` with one caption per photo and model (variants are a Create-page idea)."""
    if known_models is not None:
        known = list(known_models)
        if unknown := [m for m in models if m not in known]:
            raise ValueError(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(known)})")
    settings = settings.replace(num_variants=1)
    return studies.create_study(session=session, name=name, models=models, settings=settings.to_dict(),
                                photo_ids=photo_ids, criteria=criteria, k=k, seed=seed)


def study_settings(study: Study) -> DecodingSettings:
    return DecodingSettings.from_dict(study.settings)


Turns = Callable[[JobSize, Callable[[], T]], T]  # runs one batch's work when its turn comes


def at_once(size: JobSize, work: Callable[[], T]) -> T:
    """No queue: the batch runs now (the CLI, which has the process to itself)."""
    return work()


def generate_study(engine, name: str, captioner, *, sources: Mapping[str, str] | None = None, batch: int = BATCH,
                   on_event: Callable[[StudyEvent], None] | None = None, turns: Turns = at_once) -> GenerationReport:
    """Caption what is still missing in the study ``name``, ``batch`` photos at a time; each batch is committed as
    soon as it is made.

    ``captioner`` is an :class:`igcap.captioner.Captioner`; ``sources`` maps model keys to the source
    recorded with each caption (hub id@revision or path). Each model with work on a batch's photos captions
    them in its own turn through ``turns``: in the app, the process's shared generation queue
    (:class:`igcap.generation_queue.GenerationQueue`), so a study's run and other people's generations
    share the engine fairly, a model's batch at a time. Its JobRefused / JobCancelled propagate: the batches
    saved so far stay, and running again resumes. The batch is then saved photo by photo, each photo's models
    in an order drawn from the study's seed (:func:`saving_order`): caption ids are given out in that order,
    and written model by model they told which model wrote a caption.
    """
    started, report = time.perf_counter(), GenerationReport()
    with transaction(engine, write=False) as session:
        study = studies.get_study(session=session, name=name)
        settings = study_settings(study)
        missing = {k: set(ids) for k, ids in studies.missing_captions(session=session, study=study).items() if ids}
        names = {p.id: p.name for p in studies.study_photos(session=session, study=study)}
        report.already_done = len(names) * len(study.models) - sum(len(ids) for ids in missing.values())
    keys = list(missing)
    todo = [pid for pid in names if any(pid in ids for ids in missing.values())]  # the study's order
    progress = _Progress(sum(len(ids) for ids in missing.values()), len(keys), on_event)
    size = max(1, batch)
    for n, start in enumerate(range(0, len(todo), size)):
        chunk, made = todo[start:start + size], {}
        # every other batch the models go in reverse: the last model of one batch starts the next, one load
        # fewer per batch when the model cache holds fewer models than the study has
        for key in keys if n % 2 == 0 else keys[::-1]:
            photo_ids = [pid for pid in chunk if pid in missing[key]]
            if key in report.failed or not photo_ids:
                continue
            if key not in report.made:
                report.made[key] = 0
                progress.emit("model", key, keys.index(key))
            error, results = turns(JobSize(photos=len(photo_ids), models=1),
                                   lambda: _caption_batch(engine, key, photo_ids, settings, captioner))
            if error:
                report.failed[key] = error
                progress.emit("failed", key, keys.index(key), message=error)
            else:
                made[key] = results
        for pid, key, stored in _save_batch(engine, study, chunk, made, sources or {}):
            report.made[key] += stored
            progress.saved(key, keys.index(key), names.get(pid, ""))
    report.seconds = time.perf_counter() - started
    return report


def saving_order(seed: int, photo_id: int, keys: Iterable[str]) -> list[str]:
    """The order in which one photo's captions are saved: a shuffle of ``keys`` by the study's seed and the
    photo, the same on every run (db.studies.shuffle_key, as the raters' queues)."""
    return sorted(keys, key=lambda key: studies.shuffle_key(seed, photo_id, key))


def _caption_batch(engine, key: str, photo_ids: list[int], settings: DecodingSettings,
                   captioner) -> tuple[str | None, dict[int, CaptionResult]]:
    """One model's captions of some photos: (the failure message when the model could not caption them,
    photo id → its first caption)."""
    with transaction(engine, write=False) as session:
        images = [_image(repo.photo_image(session=session, photo_id=pid)) for pid in photo_ids]
    [run] = captioner.caption(images, [key], settings)
    if not run.ok:
        return f"{run.error.message} {run.error.hint}".strip(), {}
    return None, {photo_ids[r.photo_index]: r for r in run.results if r.variant == 0}


def _save_batch(engine, study: Study, photo_ids: list[int], made: Mapping[str, Mapping[int, CaptionResult]],
                sources: Mapping[str, str]) -> list[tuple[int, str, bool]]:
    """Save a batch's captions in one transaction, photo by photo in :func:`saving_order`; (photo id, model,
    whether this run stored it) for each, in that order. Another run of the same study may have stored some
    meanwhile (theirs are kept): they used to be counted by both runs."""
    out = []
    with transaction(engine) as session:
        missing = {(key, pid) for key, ids in studies.missing_captions(session=session, study=study).items()
                   for pid in ids}
        for pid in photo_ids:
            for key in saving_order(study.seed, pid, [k for k in made if pid in made[k]]):
                result = made[key][pid]
                studies.save_study_caption(session=session, study=study, photo_id=pid, model_key=key,
                                           text=result.text, generated_text=result.text,
                                           model_source=sources.get(key), seconds=result.seconds)
                out.append((pid, key, (key, pid) in missing))
    return out


def _image(jpeg: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as image:
        return image.convert("RGB")


class _Progress:
    def __init__(self, total: int, models: int, on_event):
        self.total, self.models, self.on_event = total, models, on_event
        self.done, self.started = 0, time.perf_counter()

    def saved(self, key: str, index: int, photo_name: str) -> None:
        self.done += 1
        self.emit("caption", key, index, photo_name=photo_name)

    def emit(self, stage: str, key: str, index: int, **extra) -> None:
        if self.on_event is None:
            return
        left = None
        if self.done:
            left = (time.perf_counter() - self.started) / self.done * (self.total - self.done)
        self.on_event(StudyEvent(stage, key, index, self.models, self.done, self.total, left, **extra))


def study_leaderboard(*, session, name: str, criterion: str | None = None, bootstrap: int = 1000, seed: int = 0):
    """The :class:`igcap.leaderboard.Leaderboard` of a study from its ratings, votes and captions
    (``criterion`` None: the study's first). "Not enough data" asks for ratings always, and for votes
    when the study has two models or more."""
    from igcap.leaderboard import CaptionRow, RatingRow, VoteRow, compute_leaderboard

    study = studies.get_study(session=session, name=name)
    ratings = [RatingRow(**row) for row in studies.rating_rows(session=session, study=study)]
    votes = [VoteRow(**row) for row in studies.vote_rows(session=session, study=study)]
    captions = [CaptionRow(**row) for row in studies.caption_rows(session=session, study=study)]
    return compute_leaderboard(ratings, votes, captions, criterion=criterion or study.criteria[0],
                               bootstrap=bootstrap, seed=seed, expect_ratings=True,
                               expect_votes=len(study.models) >= 2)


LEADERBOARD_COLUMNS = [
    "rank", "model_key", "ratings", "mean_stars", "mean_stars_lo", "mean_stars_hi", "votes", "wins", "losses",
    "ties", "both_bad", "bt_score", "bt_lo", "bt_hi", "arena_score", "needs", "criterion",
]


def leaderboard_rows(board: Mapping) -> list[dict]:
    """One dict per model (LEADERBOARD_COLUMNS) from ``Leaderboard.to_json()``, for the leaderboard CSV;
    empty cells where the data is too short for a figure."""
    out = []
    for m in board["models"]:
        stars, bt = m["mean_stars_ci"] or (None, None), m["bt_ci"] or (None, None)
        out.append({"rank": m["rank"], "model_key": m["model_key"], "ratings": m["ratings"],
                    "mean_stars": m["mean_stars"], "mean_stars_lo": stars[0], "mean_stars_hi": stars[1],
                    "votes": m["votes"], "wins": m["wins"], "losses": m["losses"], "ties": m["ties"],
                    "both_bad": m["both_bad"], "bt_score": m["bt_score"], "bt_lo": bt[0], "bt_hi": bt[1],
                    "arena_score": m["arena_score"], "needs": needs_text(m["needs"]), "criterion": board["criterion"]})
    return out


NEEDS_WORDS = {"ratings": "ratings", "rated_photos": "rated photos", "votes": "votes",
               "voted_photos": "photos with votes", "units": "captions rated by two or more people",
               "raters": "raters"}


def needs_text(needs: Mapping[str, int]) -> str:
    """'4 more ratings, 2 more rated photos' from a leaderboard ``needs`` dict ('' when nothing is missing)."""
    return ", ".join(f"{n} more {NEEDS_WORDS.get(what, what)}" for what, n in needs.items() if n)


def format_seconds(seconds: float | None) -> str:
    """'about 3 min' / 'about 40 s' for progress lines; '' when unknown."""
    if seconds is None:
        return ""
    if seconds >= 90:
        return f"about {round(seconds / 60)} min"
    return f"about {max(1, round(seconds))} s"
