"""Evaluation studies, igcap's side: store the photos, create a study with checked models and settings,
and write its captions — every model on every photo with the study's one decoding setting.

Generation saves the captions of each batch the moment the batch is done (one transaction per batch),
so closing the page or killing the process loses at most the batch in progress; running it again
(:func:`generate_study`) does only what is missing. A model that cannot caption is reported and skipped;
the other models go on. A database error while saving stops the run (the batches saved stay; the command
line says so in one line): the next batches would meet the same database. The database layout and the
queues live in :mod:`db.studies`.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from db import repo, studies, transaction
from db.models import LOCAL_OWNER, Study
from igcap.decoding import DecodingSettings
from igcap.generation_queue import JobSize
from igcap.images import Photo, resized_jpeg, thumbnail_jpeg

log = logging.getLogger(__name__)
BATCH = 4  # photos captioned together per model: the most a killed run can lose
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
    """Caption what is still missing in the study ``name``; each batch is committed as soon as it is made.

    ``captioner`` is an :class:`igcap.captioner.Captioner`; ``sources`` maps model keys to the source
    recorded with each caption (hub id@revision or path). Each batch (``batch`` photos × one model) takes
    its turn through ``turns``: in the app, the process's shared generation queue
    (:class:`igcap.generation_queue.GenerationQueue`), so a study's run and other people's generations
    share the engine fairly, a batch at a time. Its JobRefused / JobCancelled propagate: the batches
    saved so far stay, and running again resumes.
    """
    started, report = time.perf_counter(), GenerationReport()
    with transaction(engine, write=False) as session:
        study = studies.get_study(session=session, name=name)
        settings = study_settings(study)
        missing = {k: ids for k, ids in studies.missing_captions(session=session, study=study).items() if ids}
        names = {p.id: p.name for p in studies.study_photos(session=session, study=study)}
        report.already_done = len(names) * len(study.models) - sum(len(ids) for ids in missing.values())
    progress = _Progress(sum(len(ids) for ids in missing.values()), len(missing), on_event)
    for index, (key, photo_ids) in enumerate(missing.items()):
        progress.emit("model", key, index)
        report.made[key] = 0
        for start in range(0, len(photo_ids), max(1, batch)):
            chunk = photo_ids[start:start + max(1, batch)]
            error, made = turns(JobSize(photos=len(chunk), models=1),
                                lambda: _caption_batch(engine, study, key, chunk, settings, captioner,
                                                       (sources or {}).get(key)))
            if error:
                report.failed[key] = error
                progress.emit("failed", key, index, message=error)
                break
            report.made[key] += made
            for pid in chunk:
                progress.saved(key, index, names.get(pid, ""))
    report.seconds = time.perf_counter() - started
    return report


def _caption_batch(engine, study: Study, key: str, photo_ids: list[int], settings: DecodingSettings, captioner,
                   source: str | None) -> tuple[str | None, int]:
    """Caption and save one batch: (the failure message when the model could not caption it, the captions this
    run stored). Another run of the same study may have stored some meanwhile (theirs are kept): they used to
    be counted by both runs."""
    with transaction(engine, write=False) as session:
        images = [_image(repo.photo_image(session=session, photo_id=pid)) for pid in photo_ids]
    [run] = captioner.caption(images, [key], settings)
    if not run.ok:
        return f"{run.error.message} {run.error.hint}".strip(), 0
    firsts = {r.photo_index: r for r in run.results if r.variant == 0}
    with transaction(engine) as session:
        missing = set(studies.missing_captions(session=session, study=study)[key])
        for i, pid in enumerate(photo_ids):
            result = firsts[i]
            studies.save_study_caption(session=session, study=study, photo_id=pid, model_key=key, text=result.text,
                                       generated_text=result.text, model_source=source, seconds=result.seconds)
    return None, len(missing.intersection(photo_ids))


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
