import shutil
import threading
import weakref
from dataclasses import replace

import pytest

from igcap import registry as registry_module
from igcap.config import Settings
from igcap.loading import (LoadOptions, ModelCache, ModelLoadError, availability, load_captioner, pick_device,
                           source_help)
from igcap.registry import DEFAULT_KEYS, Base, ModelSpec, Origin, load_registry
from tests.builders import BARE_REPO


@pytest.fixture
def reg(hub_cache, tmp_path):
    return load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path)}))


def test_the_four_hub_ids_load_offline_from_the_cache(reg):
    for key in DEFAULT_KEYS:
        loaded = load_captioner(reg[key], LoadOptions(device="cpu", quantize=False))
        eos = loaded.tokenizer.eos_token_id
        gen = loaded.model.generation_config
        assert (gen.eos_token_id, gen.pad_token_id, gen.decoder_start_token_id) == (eos, eos, eos)
        assert not loaded.model.training and loaded.device == "cpu" and loaded.nbytes > 0
        assert not any(p.requires_grad for p in loaded.model.parameters())


def test_repo_without_tokenizer_and_processor_falls_back_to_the_base(reg):
    spec = next(s for s in reg.values() if s.source == BARE_REPO)
    loaded = load_captioner(spec, LoadOptions(device="cpu", quantize=False))
    assert loaded.fallbacks == ["tokenizer from base gpt2",
                                "image processor from base google/vit-base-patch16-224-in21k"]
    assert loaded.processor.size == {"height": 224, "width": 224}


def test_processor_falls_back_to_vit_defaults_when_the_base_has_none(reg, monkeypatch):
    monkeypatch.setitem(registry_module.BASES, "vit-gpt2", Base(tokenizer="gpt2", processor="nobody/missing"))
    spec = next(s for s in reg.values() if s.source == BARE_REPO)
    loaded = load_captioner(spec, LoadOptions(device="cpu", quantize=False))
    assert "ViT defaults" in loaded.fallbacks[-1]
    assert list(loaded.processor.image_mean) == [0.5] * 3 and list(loaded.processor.image_std) == [0.5] * 3


def test_an_auto_image_processor_that_needs_torchvision_is_read_as_a_vit_processor(tmp_path, monkeypatch):
    """transformers before 5.24 (pyproject allows 5.0 on) picks the torchvision image processor and raises
    ImportError where torchvision is missing: the repo's own processor files are read as a ViT processor,
    with their settings, not replaced by defaults and not reported as a failure to load."""
    import transformers

    from tests import builders

    tokenizer = builders.make_tokenizer()
    model = builders.make_tiny_model(tokenizer)
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    transformers.ViTImageProcessor(size={"height": 96, "width": 96}, image_mean=[0.1, 0.2, 0.3],
                                   image_std=[0.4, 0.5, 0.6]).save_pretrained(tmp_path / "m")

    def needs_torchvision(*args, **kwargs):
        raise ImportError("ViTImageProcessorFast requires the Torchvision library but it was not found")

    monkeypatch.setattr(transformers.AutoImageProcessor, "from_pretrained", needs_torchvision)
    loaded = load_captioner(ModelSpec("m", "M", str(tmp_path / "m")), LoadOptions(device="cpu", quantize=False))
    assert loaded.fallbacks == []
    assert loaded.processor.size == {"height": 96, "width": 96}
    assert list(loaded.processor.image_mean) == [0.1, 0.2, 0.3] and list(loaded.processor.image_std) == [0.4, 0.5, 0.6]


def test_not_downloaded_while_offline_says_how_to_get_it(hub_cache):
    spec = ModelSpec("x", "X", "Stoneman/does-not-exist", "vit-gpt2", "all")
    with pytest.raises(ModelLoadError) as err:
        load_captioner(spec)
    assert "cannot be reached" in err.value.message and "hf download Stoneman/does-not-exist" in err.value.hint
    assert availability(spec).state == "offline" and not availability(spec).usable


def test_offline_with_nothing_downloaded_blames_the_weights_not_the_fallbacks(hub_cache, monkeypatch):
    monkeypatch.setitem(registry_module.BASES, "vit-gpt2", Base(tokenizer="nobody/tok", processor="nobody/proc"))
    spec = ModelSpec("x", "X", "Stoneman/not-downloaded", "vit-gpt2", "all")
    with pytest.raises(ModelLoadError) as err:
        load_captioner(spec)
    assert err.value.message == "Not downloaded yet, and the Hugging Face hub cannot be reached."


def test_missing_tokenizer_everywhere_names_both_places(hub_cache, reg, monkeypatch):
    monkeypatch.setitem(registry_module.BASES, "vit-gpt2", Base(tokenizer="nobody/tok", processor="nobody/proc"))
    spec = next(s for s in reg.values() if s.source == BARE_REPO)
    with pytest.raises(ModelLoadError) as err:
        load_captioner(spec, LoadOptions(device="cpu", quantize=False))
    assert "No tokenizer could be found" in err.value.message and "nobody/tok" in err.value.message


def test_missing_folder_names_the_setting(tmp_path):
    spec = ModelSpec("vit-gpt2-all", "X", str(tmp_path / "nowhere"), "vit-gpt2", "all")
    with pytest.raises(ModelLoadError) as err:
        load_captioner(spec)
    assert "does not exist" in err.value.message and "IGCAP_MODEL_VIT_GPT2_ALL" in err.value.hint


def missing_folder_hint(tmp_path, key, **env):
    """The ModelLoadError hint for model ``key`` of the registry that ``env`` makes, and its spec."""
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path / "data"), **env}))
    with pytest.raises(ModelLoadError) as err:
        load_captioner(reg[key])
    assert "does not exist" in err.value.message
    return err.value.hint, reg[key]


def models_file(tmp_path, text):
    path = tmp_path / "models.toml"
    path.write_text(text)
    return str(path)


def test_a_missing_folder_set_in_the_models_file_hint_names_the_file_not_a_variable(tmp_path):
    """The hint said "Point IGCAP_MODEL_MINE at a folder …, or unset it to use the hub": a variable the person
    never set, and a hub copy a model the file added does not have."""
    nowhere = tmp_path / "nowhere"
    hint, spec = missing_folder_hint(tmp_path, "mine", IGCAP_MODELS_FILE=models_file(
        tmp_path, f'[models.mine]\nsource = "{nowhere}"\n'))
    assert spec.origin is Origin.MODELS_FILE
    assert "[models.mine]" in hint and "IGCAP_MODELS_FILE" in hint
    assert "IGCAP_MODEL_MINE" not in hint and "hub copy" not in hint
    hint, _ = missing_folder_hint(tmp_path, "vit-gpt2-all", IGCAP_MODELS_FILE=models_file(
        tmp_path, f'[models.vit-gpt2-all]\nsource = "{nowhere}"\n'))
    assert "[models.vit-gpt2-all]" in hint and "hub copy" in hint and "IGCAP_MODEL_VIT_GPT2_ALL" not in hint


def test_a_missing_folder_set_by_a_variable_hint_offers_the_hub_only_for_a_published_model(tmp_path):
    nowhere = str(tmp_path / "nowhere")
    hint, spec = missing_folder_hint(tmp_path, "vit-gpt2-all", IGCAP_MODEL_VIT_GPT2_ALL=nowhere)
    assert spec.origin is Origin.ENVIRONMENT
    assert "IGCAP_MODEL_VIT_GPT2_ALL" in hint and "unset it to use the hub copy" in hint
    hint, _ = missing_folder_hint(tmp_path, "mine", IGCAP_MODEL_MINE=nowhere)
    assert "IGCAP_MODEL_MINE" in hint and "hub copy" not in hint


def test_a_vanished_models_dir_or_demo_folder_hint_names_its_own_remedy(tmp_path):
    held = tmp_path / "m" / "vit-gpt2-all"
    held.mkdir(parents=True)
    (held / "config.json").write_text("{}")
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path / "data"), "IGCAP_MODELS_DIR": str(held.parent)}))
    assert reg["vit-gpt2-all"].origin is Origin.MODELS_DIR
    (held / "config.json").unlink()
    with pytest.raises(ModelLoadError) as err:
        load_captioner(reg["vit-gpt2-all"])
    assert "IGCAP_MODELS_DIR" in err.value.hint and "IGCAP_MODEL_VIT_GPT2_ALL" not in err.value.hint
    demo = replace(reg["vit-gpt2-all"], key="demo-x", demo=True, origin=Origin.DEMO)
    with pytest.raises(ModelLoadError) as err:
        load_captioner(demo)
    assert "python -m igcap demo-models" in err.value.hint and "IGCAP_MODEL_" not in err.value.hint


def test_source_help_hint_says_where_the_source_is_set(tmp_path):
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path / "data"), "IGCAP_MODELS_FILE": models_file(
        tmp_path, f'[models.mine]\nsource = "{tmp_path / "x"}"\n\n[models.baseline]\nsource = "org/base"\n')}))
    for key in ("mine", "baseline"):
        words, lines = source_help(reg[key])
        assert "IGCAP_MODELS_FILE" in words + lines and f"[models.{key}]" in words + lines
        assert "IGCAP_MODEL_" not in (words + lines).replace("IGCAP_MODELS_", "")
    assert "unset" not in source_help(reg["mine"])[0]
    assert [spec.origin for spec in load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path)})).values()] \
        == [Origin.DEFAULT] * 4


def test_a_missing_relative_folder_message_says_no_folder_not_hub_download(tmp_path, monkeypatch):
    """IGCAP_MODEL_VIT_GPT2_ALL=models/vit-gpt2-all before the download: "Not downloaded yet, and the hub cannot
    be reached … `hf download models/vit-gpt2-all …`; then set IGCAP_MODEL_VIT_GPT2_ALL=models/vit-gpt2-all",
    advice that led back to itself."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    hint, spec = missing_folder_hint(tmp_path, "vit-gpt2-all", IGCAP_MODEL_VIT_GPT2_ALL="models/vit-gpt2-all")
    assert spec.is_local and "hf download models/" not in hint


def test_a_hub_miss_of_a_source_that_could_be_a_folder_message_names_the_folder_and_its_hint_the_real_id(
        tmp_path, monkeypatch, hub_cache):
    monkeypatch.chdir(tmp_path)  # no models/ here: models/vit-gpt2-all may be a hub id, and is looked up there
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path / "data"),
                                           "IGCAP_MODEL_VIT_GPT2_ALL": "models/vit-gpt2-all"}))
    with pytest.raises(ModelLoadError) as err:
        load_captioner(reg["vit-gpt2-all"])
    assert f"no folder models/vit-gpt2-all (relative to {tmp_path})" in err.value.message
    assert "hf download models/" not in err.value.hint and "=models/vit-gpt2-all" not in err.value.hint
    assert "hf download Stoneman/IG-caption-generator-vit-gpt2-all --local-dir models/vit-gpt2-all" in err.value.hint
    assert "no folder models/vit-gpt2-all" in availability(reg["vit-gpt2-all"]).detail
    published = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path / "data")}))["vit-gpt2-all"]
    assert "no folder" not in availability(replace(published, source="Stoneman/not-here")).detail


def test_source_help_hint_for_a_source_that_could_be_a_folder_downloads_the_published_model_into_it(tmp_path,
                                                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path / "data"),
                                           "IGCAP_MODEL_VIT_GPT2_ALL": "models/vit-gpt2-all"}))
    words, lines = source_help(reg["vit-gpt2-all"])
    assert f"no folder models/vit-gpt2-all (relative to {tmp_path})" in words
    assert lines == "hf download Stoneman/IG-caption-generator-vit-gpt2-all --local-dir models/vit-gpt2-all"


def test_corrupt_weights_are_reported_as_damaged(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(ModelLoadError, match="damaged"):
        load_captioner(ModelSpec("b", "B", str(broken)))
    assert availability(ModelSpec("b", "B", str(broken))).state == "local"


def test_cache_is_bounded_by_count_and_keeps_the_most_recent(reg):
    cache = ModelCache(reg, LoadOptions(device="cpu", quantize=False), max_models=2)
    for key in DEFAULT_KEYS[:3]:
        cache.get(key)
    assert cache.loaded_keys() == list(DEFAULT_KEYS[1:3])
    cache.get(DEFAULT_KEYS[1])  # now the most recently used
    cache.get(DEFAULT_KEYS[3])
    assert cache.loaded_keys() == [DEFAULT_KEYS[1], DEFAULT_KEYS[3]]


def test_cache_is_bounded_by_memory(reg):
    one = load_captioner(reg[DEFAULT_KEYS[0]], LoadOptions(device="cpu", quantize=False)).nbytes
    budget_mb = max(1, int(1.5 * one / 2**20))
    cache = ModelCache(reg, LoadOptions(device="cpu", quantize=False, share_weights=False), budget_mb=budget_mb)
    if one * 2 <= budget_mb * 2**20:
        pytest.fail("tiny models are larger than expected; the budget test needs a smaller budget")
    for key in DEFAULT_KEYS:
        cache.get(key)
        assert cache.nbytes() <= max(budget_mb * 2**20, one)
    assert cache.loaded_keys() == [DEFAULT_KEYS[-1]]


def test_a_failing_model_is_reported_and_the_others_keep_working(reg):
    reg = dict(reg, **{"nlpconnect-all": replace(reg["nlpconnect-all"], source="/nonexistent/model")})
    cache = ModelCache(reg, LoadOptions(device="cpu", quantize=False))
    with pytest.raises(ModelLoadError):
        cache.get("nlpconnect-all")
    assert cache.get("vit-gpt2-all").spec.key == "vit-gpt2-all"
    assert cache.status("nlpconnect-all").state == "failed" and cache.status("vit-gpt2-all").state == "loaded"
    assert cache.status("nlpconnect-last-block").state == "not loaded"
    with pytest.raises(ModelLoadError, match="No model has this key"):
        cache.get("nope")


def test_concurrent_first_use_loads_a_model_once(reg):
    calls = []

    def counting_loader(spec, options, pool):
        calls.append(spec.key)
        return load_captioner(spec, options, pool)

    cache = ModelCache(reg, LoadOptions(device="cpu", quantize=False), loader=counting_loader)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("vit-gpt2-all"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["vit-gpt2-all"] and len({id(g) for g in got}) == 1


def test_device_choice():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in ("cpu", "cuda", "mps")
    assert LoadOptions().quantize_on("cpu") and not LoadOptions().quantize_on("cuda")
    assert not LoadOptions(quantize=False).quantize_on("cpu")


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_gpu_asked_for_where_there_is_none_is_a_configuration_error(monkeypatch, device):
    import torch

    from igcap.config import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a GPU setting copied to a CPU-only host
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=f"IGCAP_DEVICE={device} but no .* is available"):
        pick_device(device)
    assert pick_device("auto") == "cpu"


def test_the_count_bound_holds_however_many_sessions_caption_at_once(reg):
    """Six sessions captioning with different models at once, two places: never more than two models exist
    (loaded, being loaded or in use), and every session gets its captions."""
    from PIL import Image

    from igcap.captioner import Captioner
    from igcap.decoding import DecodingSettings

    lock, live, peak = threading.Lock(), [0], [0]

    def gone():
        with lock:
            live[0] -= 1

    def counting_loader(spec, options, pool):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        loaded = load_captioner(spec, options, pool)
        weakref.finalize(loaded, gone)  # a LoadedModel is freed as soon as nothing holds it
        return loaded

    cache = ModelCache(reg, LoadOptions(device="cpu", quantize=False), max_models=2, loader=counting_loader)
    captioner = Captioner(cache)
    greedy = DecodingSettings(strategy="greedy", max_new_tokens=6, no_repeat_ngram_size=0)
    keys = list(DEFAULT_KEYS)
    start, runs, errors = threading.Barrier(6), [], []

    def session(i):
        try:
            start.wait(timeout=60)
            order = keys[i % 4:] + keys[:i % 4]
            runs.extend(captioner.caption([Image.new("RGB", (64, 64), "red")], order, greedy))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(repr(err))

    threads = [threading.Thread(target=session, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(runs) == 24 and all(r.ok for r in runs)
    assert peak[0] <= 2 and len(cache.loaded_keys()) <= 2


def test_a_model_in_use_is_not_dropped_and_places_wait_for_it(reg):
    cache = ModelCache(reg, LoadOptions(device="cpu", quantize=False), max_models=1)
    first, second = DEFAULT_KEYS[:2]
    got = []
    with cache.lease(first) as loaded:
        waiter = threading.Thread(target=lambda: got.append(cache.get(second)))
        waiter.start()
        waiter.join(timeout=2)
        assert waiter.is_alive() and cache.loaded_keys() == [first]  # waits: the one place is in use
        assert loaded.spec.key == first
    waiter.join(timeout=60)
    assert [g.spec.key for g in got] == [second] and cache.loaded_keys() == [second]


@pytest.mark.parametrize("quantize", [False, None])  # float (transformers' from_pretrained) and int8 (lean)
def test_different_models_loading_at_once_all_load(reg, quantize):
    got, errors = [], []
    start = threading.Barrier(len(DEFAULT_KEYS))

    def load(key):
        start.wait(timeout=60)
        try:
            got.append(load_captioner(reg[key], LoadOptions(device="cpu", quantize=quantize)).spec.key)
        except ModelLoadError as err:
            errors.append(err.message)

    threads = [threading.Thread(target=load, args=(k,)) for k in DEFAULT_KEYS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and sorted(got) == sorted(DEFAULT_KEYS)


def test_models_with_identical_tokenizer_files_share_one_tokenizer(tiny_model_dir, tmp_path):
    """The four published models all use GPT-2's tokenizer: built once, not four times; different files
    (or a tokenizer file changed on disk) get their own."""
    import json

    copies = []
    for name in ("a", "b", "c"):
        shutil.copytree(tiny_model_dir, tmp_path / name)
        copies.append(ModelSpec(name, name, str(tmp_path / name)))
    config = json.loads((tmp_path / "c" / "tokenizer_config.json").read_text())
    config["model_max_length"] = 77  # a different tokenizer
    (tmp_path / "c" / "tokenizer_config.json").write_text(json.dumps(config))
    a, b, c = (load_captioner(spec, LoadOptions(device="cpu", quantize=False)) for spec in copies)
    assert a.tokenizer is b.tokenizer
    assert c.tokenizer is not a.tokenizer and c.tokenizer.model_max_length == 77
    assert a.tokenizer("a cat").input_ids == c.tokenizer("a cat").input_ids


@pytest.mark.parametrize("light", [False, True], ids=["int8 transformers model", "light model"])
def test_a_dropped_models_image_encoder_is_freed_not_kept_by_the_encoder_memo(tmp_path, light):
    """The encoder memo's entries hold the weights that computed them: a model the cache drops leaves the
    memo too, so the cache's count and memory bounds cover what the process holds."""
    import gc

    from PIL import Image

    from igcap import optimize
    from igcap.captioner import Captioner
    from igcap.decoding import DecodingSettings
    from igcap.int8_cache import Int8CacheOptions
    from tests import builders

    specs = {name: ModelSpec(name, name, str(builders.save_tiny_model(tmp_path / name, seed=seed)))
             for name, seed in (("a", 1), ("b", 2))}
    options = LoadOptions(device="cpu", quantize=True, int8_cache=Int8CacheOptions(tmp_path / "int8", 64), light=light)
    for spec in specs.values():  # the int8 entries a light model is read from
        load_captioner(spec, replace(options, light=False))
    optimize.ENCODER_MEMO.clear()
    cache = ModelCache(specs, options, max_models=1)
    greedy = DecodingSettings(strategy="greedy", max_new_tokens=4, no_repeat_ngram_size=0)
    [run] = Captioner(cache).caption([Image.new("RGB", (64, 64), "red")], ["a"], greedy)
    assert run.ok, run.error
    held = cache.get("a")
    assert held.light is light
    encoder = weakref.ref(held.model.encoder)
    weights = [weakref.ref(p) for p in held.model.encoder.parameters()]
    assert optimize.ENCODER_MEMO._entries  # the premise: the memo holds an output of a's encoder
    del held, run
    cache.get("b")  # one place: a is dropped
    gc.collect()
    assert cache.loaded_keys() == ["b"]
    assert encoder() is None and all(w() is None for w in weights)


def first_weight(loaded):
    return next(loaded.model.parameters()).clone()


@pytest.fixture
def two_folders(tmp_path):
    from tests import builders

    return [builders.save_tiny_model(tmp_path / name, seed=seed) for name, seed in (("one", 1), ("two", 2))]


def test_a_key_pointed_at_other_weights_is_loaded_again_from_them(two_folders):
    """A models file edited to point a key at new weights: the cache drops the old model and loads the new
    source, the one the Models page and each caption's model_source name."""
    one, two = two_folders
    cache = ModelCache({"m": ModelSpec("m", "M", str(one))}, LoadOptions(device="cpu", quantize=False))
    old = cache.get("m")
    cache.use_registry({"m": ModelSpec("m", "M", str(one))})  # the same registry, read again: nothing changes
    assert cache.get("m") is old
    cache.use_registry({"m": ModelSpec("m", "M (vit-gpt2)", str(one), description="now with a note")})
    assert cache.get("m") is old  # a new label (another model of the same label arrived): no reload
    cache.use_registry({"m": ModelSpec("m", "M", str(two))})
    assert cache.loaded_keys() == []
    new = cache.get("m")
    assert new.spec.source == str(two) and not first_weight(new).equal(first_weight(old))
    cache.use_registry({"other": ModelSpec("other", "O", str(one))})  # the key is gone: so is its model
    assert cache.loaded_keys() == []


def test_a_local_model_rebuilt_in_place_is_loaded_again(two_folders):
    """`python -m igcap demo-models` run again while the app is up: the same spec, new files in its folder."""
    from tests import builders

    one, _ = two_folders
    registry = {"m": ModelSpec("m", "M", str(one))}
    cache = ModelCache(registry, LoadOptions(device="cpu", quantize=False))
    old = first_weight(cache.get("m"))
    builders.save_tiny_model(one, seed=7)
    cache.use_registry(dict(registry))
    assert cache.loaded_keys() == []
    assert not first_weight(cache.get("m")).equal(old)


def test_a_model_built_after_a_failed_load_is_no_longer_failed(tmp_path):
    from tests import builders

    registry = {"m": ModelSpec("m", "M", str(tmp_path / "later"))}
    cache = ModelCache(registry, LoadOptions(device="cpu", quantize=False))
    with pytest.raises(ModelLoadError):
        cache.get("m")
    cache.use_registry(dict(registry))
    assert cache.status("m").state == "failed"  # nothing changed: still failed, no load tried
    builders.save_tiny_model(tmp_path / "later", seed=1)
    cache.use_registry(dict(registry))
    assert cache.status("m").state == "not loaded"
    assert cache.get("m").spec.source == str(tmp_path / "later")


def test_a_changed_model_in_use_is_dropped_when_released_and_new_requests_wait_for_the_new_one(two_folders):
    """Sessions keep captioning with the model they hold; a request made after the change waits for that
    lease to end (never two models under one key), then gets the new weights; the old model is freed."""
    import gc

    one, two = two_folders
    cache = ModelCache({"m": ModelSpec("m", "M", str(one))}, LoadOptions(device="cpu", quantize=False), max_models=2)
    got, errors = [], []

    def ask():
        try:
            got.append(cache.get("m").spec.source)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    with cache.lease("m") as held:
        old = weakref.ref(held.model)
        changers = [threading.Thread(target=cache.use_registry, args=({"m": ModelSpec("m", "M", str(two))},))
                    for _ in range(3)]
        for t in changers:
            t.start()
        for t in changers:
            t.join(timeout=30)
        assert held.spec.source == str(one) and cache.loaded_keys() == ["m"]  # still held, still captioning
        assert cache.status("m").state == "not loaded"  # the model the registry names now is not
        waiters = [threading.Thread(target=ask) for _ in range(3)]
        for t in waiters:
            t.start()
        waiters[0].join(timeout=2)
        assert all(t.is_alive() for t in waiters) and got == []
        assert cache.loaded_keys() == ["m"]
        del held
    for t in waiters:
        t.join(timeout=60)
    assert not errors and got == [str(two)] * 3
    gc.collect()
    assert old() is None and cache.loaded_keys() == ["m"]
    with cache.lease_if_loaded("m") as now:
        assert now.spec.source == str(two)
