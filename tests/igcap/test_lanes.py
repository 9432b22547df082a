"""The captioner's lanes (Captioner.lanes): for a photo or a few, two models at once on one thread each.
Every model's captions are the ones it writes with lanes off, runs reach the callbacks in the order asked
and on the caller's thread, stopping and failures behave as one model at a time, and several sessions
may caption with lanes at once."""

import threading

import pytest
import torch
from PIL import Image

from igcap import bench, captioner as captioner_module, threads
from igcap.captioner import LANE_ROWS, Captioner
from igcap.decoding import PRESETS, DecodingSettings
from igcap.int8_cache import Int8CacheOptions
from igcap.loading import LoadOptions, ModelCache, load_captioner
from igcap.registry import ModelSpec
from tests import builders

GREEDY = DecodingSettings(strategy="greedy", no_repeat_ngram_size=0, min_new_tokens=6, max_new_tokens=6)
BEAM = PRESETS["balanced"].replace(min_new_tokens=3, max_new_tokens=8)
KEYS = ["a", "b", "c", "d", "pair-1", "pair-2"]  # four unrelated models, then a published-like pair


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("lanes")
    tokenizer = builders.make_tokenizer()
    folders = {key: builders.save_tiny_model(root / key, seed=seed) for seed, key in enumerate(KEYS[:4])}
    base = builders.make_tiny_model(tokenizer, seed=20)
    for key, model in (("pair-1", base), ("pair-2", bench.fine_tuned_sibling(base, seed=21))):
        model.save_pretrained(root / key)
        tokenizer.save_pretrained(root / key)
        builders.make_processor().save_pretrained(root / key)
        folders[key] = root / key
    specs = {key: ModelSpec(key, key, str(folder)) for key, folder in folders.items()}
    cache_options = Int8CacheOptions(root / "int8", 256)
    for spec in specs.values():  # the first loads write the int8 cache; the engine's loads read light models
        load_captioner(spec, LoadOptions(device="cpu", quantize=True, int8_cache=cache_options))
    return specs, cache_options


@pytest.fixture(scope="module")
def cache(registry):
    specs, cache_options = registry
    cache = ModelCache(specs, LoadOptions(device="cpu", quantize=True, int8_cache=cache_options, light=True, threads=2),
                       max_models=len(KEYS))
    for key in KEYS:
        assert cache.get(key).light
    return cache


def photos(n):
    return [Image.fromarray((torch.rand(48 + 9 * i, 64, 3, generator=torch.Generator().manual_seed(i)) * 255)
                            .to(torch.uint8).numpy()) for i in range(n)]


def texts(runs):
    return [(run.model_key, [r.raw_text for r in run.results]) for run in runs]


@pytest.mark.parametrize("settings", [GREEDY, BEAM], ids=["greedy", "beam search (the default preset)"])
def test_two_lanes_write_the_captions_of_one_model_at_a_time(cache, settings):
    lanes, one_at_a_time = Captioner(cache), Captioner(cache, lanes=False)
    images = photos(1)
    assert lanes.lanes(KEYS, len(images), settings) == 1  # two lanes of one thread each
    assert one_at_a_time.lanes(KEYS, len(images), settings) == 0
    with_lanes = lanes.caption(images, KEYS, settings)
    assert texts(with_lanes) == texts(one_at_a_time.caption(images, KEYS, settings))
    assert [run.model_key for run in with_lanes] == KEYS and all(run.ok for run in with_lanes)


def test_runs_and_progress_reach_the_callbacks_in_the_order_asked_on_the_callers_thread(cache):
    seen, threads = [], set()

    def on_result(run):
        seen.append(("result", run.model_key))
        threads.add(threading.current_thread())

    def on_progress(event):
        seen.append((event.stage, event.model_key))
        threads.add(threading.current_thread())

    Captioner(cache).caption(photos(1), KEYS, GREEDY, on_result=on_result, on_progress=on_progress)
    assert [key for kind, key in seen if kind == "result"] == KEYS
    assert threads == {threading.current_thread()}  # Streamlit's calls work only from the script's thread
    for key in KEYS:  # each model: captioning, then done, then its result
        stages = [kind for kind, k in seen if k == key]
        assert stages[-2:] == ["done", "result"] and "captioning" in stages


def test_lanes_only_where_they_give_the_same_captions_and_fit_in_memory(cache, registry):
    captioner = Captioner(cache)
    assert captioner.lanes(KEYS, LANE_ROWS + 1, GREEDY) == 0  # six rows per batch: one model at a time
    assert captioner.lanes(KEYS, 1, PRESETS["creative"]) == 0  # sampling takes turns on torch's generator
    assert captioner.lanes(KEYS[:1], 1, GREEDY) == 0  # one model
    assert captioner.lanes(KEYS, 2, GREEDY) == 1
    assert captioner.lanes(KEYS, 1, PRESETS["precise"]) == 1  # five beams
    specs, cache_options = registry
    one_thread = ModelCache(specs, LoadOptions(device="cpu", quantize=True, int8_cache=cache_options, light=True,
                                               threads=1), max_models=len(KEYS))
    for key in KEYS:
        one_thread.get(key)
    assert Captioner(one_thread).lanes(KEYS, 1, GREEDY) == 0  # IGCAP_THREADS=1: a busy host
    not_loaded = ModelCache(specs, cache.options, max_models=len(KEYS))
    not_loaded.get("a")
    assert Captioner(not_loaded).lanes(["a", "b"], 1, GREEDY) == 0  # "b" would load inside a lane


def test_stopping_takes_no_more_models_and_hands_over_those_finished(cache):
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 2

    runs = Captioner(cache).caption(photos(1), KEYS, GREEDY, should_stop=should_stop)
    assert 1 <= len(runs) < len(KEYS)
    assert [run.model_key for run in runs] == KEYS[:len(runs)]  # a prefix, in order
    assert Captioner(cache).caption(photos(1), KEYS, GREEDY, should_stop=lambda: True) == []  # stopped before


def test_a_model_failing_in_a_lane_costs_only_its_own_captions(cache, monkeypatch):
    real = captioner_module.caption_with

    def failing(loaded, *args, **kwargs):
        if loaded.spec.key == "b":
            raise RuntimeError("out of memory")
        return real(loaded, *args, **kwargs)

    monkeypatch.setattr(captioner_module, "caption_with", failing)
    runs = Captioner(cache).caption(photos(1), KEYS[:4], GREEDY)
    assert [run.ok for run in runs] == [True, False, True, True]
    assert "out of memory" in runs[1].error.message


def test_a_lane_that_crashes_raises_in_the_callers_thread_without_hanging(cache, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # not an Exception: nothing inside a unit catches it

    monkeypatch.setattr(Captioner, "_run_unit", broken)
    with pytest.raises(KeyboardInterrupt):
        Captioner(cache).caption(photos(1), KEYS[:4], GREEDY)
    assert not [t for t in threading.enumerate() if t.name.startswith("igcap-caption-lane")]


def test_sessions_captioning_with_lanes_at_once_each_get_their_captions_alone(cache):
    requests = [(photos(1), KEYS, GREEDY), (photos(2)[1:], KEYS[::-1], GREEDY), (photos(1), KEYS[:4], BEAM)]
    alone = [texts(Captioner(cache, lanes=False).caption(*r)) for r in requests]
    got: dict[int, list] = {}
    errors = []

    def session(i):
        try:
            got[i] = texts(Captioner(cache).caption(*requests[i % len(requests)]))
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    workers = [threading.Thread(target=session, args=(i,)) for i in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert all(got[i] == alone[i % len(requests)] for i in range(6))


def test_the_callers_thread_is_a_lane_and_one_helper_the_other(cache, monkeypatch):
    """Each thread that captions keeps its own heap's freed memory until the job ends: the caller plus one
    helper, not two new workers beside a waiting caller (published-like peak, median 1,262 → 1,198 MiB)."""
    real, seen = Captioner._run_unit, []

    def recording(self, *args, **kwargs):
        seen.append(threading.current_thread())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Captioner, "_run_unit", recording)
    runs = Captioner(cache).caption(photos(1), KEYS, GREEDY)
    assert [run.model_key for run in runs] == KEYS and all(run.ok for run in runs)
    helpers = {t for t in seen if t is not threading.current_thread()}
    assert len(seen) == len(Captioner(cache)._units(KEYS, GREEDY)) and len(helpers) <= 1, seen
    assert not [t for t in threading.enumerate() if t.name.startswith("igcap-caption-lane")]


def test_one_model_at_a_time_hands_freed_memory_back_between_models(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(captioner_module, "release_between_models", lambda: calls.append(1))
    runs = Captioner(cache, lanes=False).caption(photos(1), KEYS[:3], GREEDY)
    assert len(runs) == 3 and len(calls) == 2  # between the three models, not after the last (caption_heap)


def _batches_until_stop(monkeypatch, after: int):
    """Count the batches decoded (alone or a pair together: greedy_generate decodes through
    greedy_generate_together); should_stop says True once ``after`` were."""
    batches, lock = [], threading.Lock()
    real = captioner_module.lean_decoding.greedy_generate_together

    def counted(*args, **kwargs):
        with lock:
            batches.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(captioner_module.lean_decoding, "greedy_generate_together", counted)
    return batches, lambda: len(batches) >= after


@pytest.mark.parametrize("keys, two_lanes", [(["a", "b"], False), (["pair-1", "pair-2"], False),
                                             (["a", "b", "c"], True)])
def test_a_stop_request_ends_the_model_after_its_batch_not_after_all_its_photos(cache, monkeypatch, keys, two_lanes):
    """A stopped job (a click on its page, a Cancel) used to decode every photo of the model it was on; it
    ends after the batch it is decoding (in each lane), a model cut short is not handed over as a run, and a
    sibling pair cut short is not decoded again alone."""
    batches, should_stop = _batches_until_stop(monkeypatch, after=1)
    runs = Captioner(cache, batch_size=1, lanes=two_lanes).caption(photos(4), keys, GREEDY, should_stop=should_stop)
    assert runs == []
    assert len(batches) <= (2 if two_lanes else 1)  # of 4 photos × the models: one batch per lane at most


def test_new_threads_start_on_the_full_count_after_jobs_in_two_lanes(cache):
    """Each lane sets one torch thread, which torch also makes the count new threads start with: a helper lane
    ending last left 1 behind, and every later script run and model load ran on one thread."""
    full = threads.process_threads()
    for _ in range(3):
        job = threading.Thread(target=lambda: Captioner(cache).caption(photos(1), KEYS[:4], GREEDY))
        job.start()
        job.join()
        seen = []
        fresh = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        fresh.start()
        fresh.join()
        assert seen == [full]
