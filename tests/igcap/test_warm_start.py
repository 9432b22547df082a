"""Models loaded in the background before the first click (igcap.warm_start)."""

import threading

import pytest
import torch
from PIL import Image

from igcap import threads, warm_start
from igcap.captioner import Captioner
from igcap.decoding import PRESETS
from igcap.loading import LoadOptions, ModelCache, load_captioner
from igcap.registry import ModelSpec
from tests import builders

PHOTOS = [Image.new("RGB", (96, 72), c) for c in ("red", "blue")]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm")
    tokenizer = builders.make_tokenizer()
    for i, key in enumerate("abc"):
        builders.make_tiny_model(tokenizer, seed=30 + i).save_pretrained(folder / key)
        tokenizer.save_pretrained(folder / key)
        builders.make_processor().save_pretrained(folder / key)
    specs = {key: ModelSpec(key, key.upper(), str(folder / key)) for key in "abc"}
    specs["gone"] = ModelSpec("gone", "Gone", str(folder / "no-such-model"))
    return specs


def test_the_models_load_in_the_background_once_per_cache(registry):
    cache = ModelCache(registry, LoadOptions(device="cpu"))
    thread = warm_start.start(cache, ["a", "b"])
    assert thread is not None and warm_start.started(cache) is thread
    thread.join(120)
    assert cache.loaded_keys() == ["a", "b"]
    assert warm_start.start(cache, ["c"]) is None  # one warm-up per cache: a second caller starts nothing
    assert "c" not in cache.loaded_keys()


def test_a_model_that_fails_is_recorded_and_the_others_still_load(registry):
    cache = ModelCache(registry, LoadOptions(device="cpu"))
    assert warm_start.warm(cache, ["gone", "c"]) == ["c"]
    assert cache.loaded_keys() == ["c"]
    assert cache.status("gone").state == "failed"  # the Models page and a later click say why


def test_the_warm_up_stays_within_the_caches_bound(registry):
    cache = ModelCache(registry, LoadOptions(device="cpu"), max_models=2)
    warm_start.start(cache, ["a", "b", "c"]).join(120)
    assert cache.loaded_keys() == ["a", "b"]  # the third would have evicted the first: not loaded


def test_the_warm_up_stops_when_the_memory_budget_is_full(registry):
    size = ModelCache(registry, LoadOptions(device="cpu")).get("a").nbytes
    cache = ModelCache(registry, LoadOptions(device="cpu"))
    cache.budget_mb = 1.5 * size / 2**20  # room for one model and a half: the second load drops the first
    assert warm_start.warm(cache, ["a", "b", "c"]) == ["b"]
    assert cache.loaded_keys() == ["b"]  # "c" was not loaded only to push "b" out in turn


def test_a_click_during_the_warm_up_gets_the_captions_it_gets_without_one(registry, monkeypatch):
    loads, gate = [], threading.Event()

    def slow_loader(spec, options, pool):
        loads.append(spec.key)
        gate.wait(30)  # the click arrives while the warm-up is still loading
        return load_captioner(spec, options, pool)

    settings = PRESETS["fast"].replace(max_new_tokens=8)
    expected = Captioner(ModelCache(registry, LoadOptions(device="cpu"))).caption(PHOTOS, ["a", "b"], settings)
    cache = ModelCache(registry, LoadOptions(device="cpu"), loader=slow_loader)
    thread = warm_start.start(cache, ["a", "b"])
    clicked: list = []
    click = threading.Thread(target=lambda: clicked.extend(Captioner(cache).caption(PHOTOS, ["a", "b"], settings)))
    click.start()
    gate.set()
    click.join(120)
    thread.join(120)
    assert loads.count("a") == 1 and loads.count("b") == 1  # each model loaded once, whoever asked first
    assert [[r.raw_text for r in run.results] for run in clicked] == \
        [[r.raw_text for r in run.results] for run in expected]


@pytest.mark.skipif(threads.allowed_cores() < 2, reason="one core: every load runs on one thread anyway")
@pytest.mark.parametrize("how", ["warm start", "first Generate", "the Models page or the CLI"])
def test_a_model_loads_on_the_threads_setting(registry, how):
    """Loading (quantising) is torch work like captioning: it runs on IGCAP_THREADS's count (here 1, a busy
    host), not on whatever count the thread doing it happened to start with."""
    seen = []

    def loader(spec, options, pool):
        seen.append(torch.get_num_threads())
        return load_captioner(spec, options, pool)

    cache = ModelCache(registry, LoadOptions(device="cpu", threads=1), loader=loader)
    if how == "warm start":
        warm_start.warm(cache, ["a"])
    elif how == "the Models page or the CLI":
        cache.get("a")
    else:
        Captioner(cache).caption(PHOTOS[:1], ["a"], PRESETS["fast"])
    assert seen == [1]
