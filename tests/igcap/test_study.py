"""Study generation on tiny models: every model on every photo, saved as made, resumable, failures contained."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from db import Caption, make_engine, studies, transaction, upgrade
from igcap.captioner import CaptionResult, Captioner, ModelRun
from igcap.config import Settings
from igcap.decoding import DecodingSettings
from igcap.images import load_photo
from igcap.loading import LoadOptions, ModelCache
from igcap.registry import DEFAULT_KEYS, load_registry
from igcap.study import create_study, generate_study, store_photo, study_settings
from tests import builders

GREEDY = DecodingSettings(strategy="greedy", max_new_tokens=8, no_repeat_ngram_size=0)
MODELS = list(DEFAULT_KEYS[:2])


@pytest.fixture(scope="module")
def cache(hub_cache, tmp_path_factory):
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path_factory.mktemp("data"))}))
    return ModelCache(reg, LoadOptions(device="cpu", quantize=False))


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'study.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def new_study(engine, photos=3, models=MODELS, settings=GREEDY, name="trial"):
    with transaction(engine) as s:
        ids = [store_photo(session=s, photo=load_photo(builders.photo_bytes(colour=c), f"{c}.jpg")).id
               for c in builders.COLOURS[:photos]]
        create_study(session=s, name=name, photo_ids=ids, models=models, settings=settings,
                     known_models=DEFAULT_KEYS)
    return name


def stored(engine, name="trial"):
    with transaction(engine, write=False) as s:
        return {(c.photo_id, c.model_key): c.text for c in
                studies.study_captions(session=s, study=studies.get_study(session=s, name=name))}


def test_every_model_captions_every_photo_with_the_study_settings(engine, cache):
    new_study(engine, settings=GREEDY.replace(num_variants=2, strategy="beam", num_beams=2))
    events = []
    report = generate_study(engine, "trial", Captioner(cache), sources={MODELS[0]: "Stoneman/x@abc"},
                            on_event=events.append)
    assert report.made == {MODELS[0]: 3, MODELS[1]: 3} and report.complete and report.already_done == 0
    with transaction(engine, write=False) as s:
        study = studies.get_study(session=s, name="trial")
        assert study_settings(study).num_variants == 1  # one caption per photo and model
        captions = studies.study_captions(session=s, study=study)
        assert len(captions) == 6 and all(c.settings == study.settings and not c.favourite for c in captions)
        assert {c.model_source for c in captions if c.model_key == MODELS[0]} == {"Stoneman/x@abc"}
    assert [(e.stage, e.model_key) for e in events if e.stage == "model"] == [("model", k) for k in MODELS]
    saved = [e for e in events if e.stage == "caption"]
    assert [e.done for e in saved] == [1, 2, 3, 4, 5, 6] and {e.total for e in saved} == {6}
    assert [e.photo_name for e in saved] == ["red.jpg"] * 2 + ["green.jpg"] * 2 + ["blue.jpg"] * 2  # photo by photo
    assert saved[-1].seconds_left == 0 and all(e.seconds_left is not None for e in saved)


def test_a_killed_run_keeps_what_it_made_and_the_next_run_resumes(engine, cache):
    new_study(engine, photos=3)

    class Killed(Exception):
        pass

    def die_after_four(event):
        if event.stage == "caption" and event.done == 4:
            raise Killed

    with pytest.raises(Killed):
        generate_study(engine, "trial", Captioner(cache), batch=1, on_event=die_after_four)
    before = stored(engine)
    assert len(before) == 4  # saved as each batch (one photo, both models) was made, not at the end
    events = []
    report = generate_study(engine, "trial", Captioner(cache), on_event=events.append)
    assert report.already_done == 4 and report.made == {MODELS[0]: 1, MODELS[1]: 1}  # the third photo
    after = stored(engine)
    assert len(after) == 6 and all(after[key] == text for key, text in before.items())
    assert generate_study(engine, "trial", Captioner(cache)).made == {}  # nothing left to do


def test_a_failing_model_is_reported_and_the_others_go_on(engine, cache):
    broken = dict(cache.registry, **{MODELS[0]: replace(cache.registry[MODELS[0]], source="/no/such/dir")})
    new_study(engine, photos=2)
    events = []
    report = generate_study(engine, "trial", Captioner(ModelCache(broken, cache.options)), on_event=events.append)
    assert list(report.failed) == [MODELS[0]] and "does not exist" in report.failed[MODELS[0]]
    assert report.made == {MODELS[0]: 0, MODELS[1]: 2}
    assert [e.model_key for e in events if e.stage == "failed"] == [MODELS[0]]
    assert {key for _, key in stored(engine)} == {MODELS[1]}


class InstantCaptioner:
    """Captions at once, without a model: '<model> caption'."""

    def caption(self, images, keys, settings, **_):
        return [ModelRun(key, tuple(CaptionResult(key, i, 0, f"{key} caption", f"{key} caption", 2, 0.0, True)
                                    for i in range(len(images)))) for key in keys]


def test_caption_ids_do_not_follow_the_models(engine):
    """Ids are given out as captions are saved. Saved model by model, each model's captions held one block of
    ids, in the study's order of models: an id (in a widget key, an export) told a rater who wrote a caption."""
    new_study(engine, photos=6, models=list(DEFAULT_KEYS))
    generate_study(engine, "trial", InstantCaptioner())
    with transaction(engine, write=False) as s:
        study = studies.get_study(session=s, name="trial")
        captions = sorted(studies.study_captions(session=s, study=study), key=lambda c: c.id)
        photo_ids = [p.id for p in studies.study_photos(session=s, study=study)]
    assert len(captions) == 6 * 4
    by_photo = [[c.model_key for c in captions if c.photo_id == pid] for pid in photo_ids]
    assert [c.photo_id for c in captions] == [pid for pid in photo_ids for _ in DEFAULT_KEYS]  # photo by photo
    assert len({tuple(keys) for keys in by_photo}) > 1, by_photo  # each photo's models in an order of its own
    assert generate_study(engine, "trial", InstantCaptioner()).made == {}  # nothing left to do


def test_unknown_models_are_refused_when_creating(engine):
    with pytest.raises(ValueError, match="unknown model"):
        new_study(engine, models=["no-such-model"])


def test_each_batch_waits_its_turn_in_the_shared_queue(engine, cache):
    """In the app a study's run shares the process's generation queue: a batch at a time, after the
    generation already running, and a cancel stops the run with the saved batches kept."""
    import threading

    from igcap.generation_queue import GenerationQueue, JobCancelled, JobSize, QueueLimits

    new_study(engine, photos=3)
    queue = GenerationQueue(QueueLimits(jobs_at_once=1, jobs_per_owner=2, captions_per_job=10))
    sizes, saved_when_turn_came = [], []

    def turns(size, work):
        def run(job):
            sizes.append((size.photos, size.models))
            saved_when_turn_came.append(len(stored(engine)))
            return work()
        return queue.run("study-session", size, run, poll=0.01)

    someone_else = queue.submit("other-session", JobSize(1, 4))
    assert someone_else.wait_turn(1)  # another person's generation holds the only turn
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "report", generate_study(engine, "trial", Captioner(cache), batch=2, turns=turns)))
    thread.start()
    thread.join(0.5)
    assert thread.is_alive() and not sizes and queue.waiting() == 1  # the study's first batch waits in line
    someone_else.finish()
    thread.join(60)
    assert result["report"].made == {MODELS[0]: 3, MODELS[1]: 3}
    assert sizes == [(2, 1), (2, 1), (1, 1), (1, 1)]  # batch photos × one model per turn
    assert saved_when_turn_came == [0, 0, 4, 4]  # each batch was saved before the next batch's turns
    assert queue.running() == 0 and queue.waiting() == 0

    with transaction(engine) as s:  # a second study; its run is cancelled while its second batch waits
        ids = [p.id for p in studies.study_photos(session=s, study=studies.get_study(session=s, name="trial"))]
        create_study(session=s, name="again", photo_ids=ids, models=MODELS[:1], settings=GREEDY,
                     known_models=DEFAULT_KEYS)
    calls = []

    def cancel_second(size, work):
        calls.append(size)
        if len(calls) == 2:
            raise JobCancelled()
        return work()

    with pytest.raises(JobCancelled):
        generate_study(engine, "again", Captioner(cache), batch=2, turns=cancel_second)
    assert len(stored(engine, "again")) == 2  # the first batch stays saved; running again resumes


def test_two_runs_on_one_study_at_once_count_only_what_each_stored(engine, cache):
    """Both runs see every caption missing and caption them; the database keeps one of each. Each run used to
    report every caption as written by it (20 + 20 for 20)."""
    import threading

    new_study(engine, photos=3)
    reports, start = [], threading.Barrier(2)

    def run():
        start.wait()
        reports.append(generate_study(engine, "trial", Captioner(cache), batch=1))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(reports) == 2 and all(r.complete for r in reports)
    assert sum(sum(r.made.values()) for r in reports) == 3 * len(MODELS)
    with transaction(engine, write=False) as s:
        assert len(s.scalars(select(Caption).where(Caption.study_id.is_not(None))).all()) == 3 * len(MODELS)


def test_one_seed_range_for_studies_and_decoding():
    """A study stores its seed in an Integer column (int4 on PostgreSQL); decoding, the Create page and both
    --seed flags take the same range, so a seed accepted in one place is accepted in every other."""
    from igcap.decoding import KNOBS, SEED_MAX

    assert studies.SEED_MAX == SEED_MAX == KNOBS["seed"].high == 2**31 - 1 and KNOBS["seed"].low == 0
