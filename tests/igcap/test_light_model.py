"""igcap's light model (igcap.light_model): built from an int8 cache entry without transformers, it encodes
and decodes exactly as the transformers model made from the same entry; whatever it does not serve goes
through transformers' objects holding the same tensors; a process that captions with it never imports
transformers."""

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from igcap import lean_decoding, light_model
from igcap.captioner import Captioner
from igcap.decoding import PRESETS, DecodingSettings
from igcap.int8_cache import Int8Cache, Int8CacheOptions
from igcap.loading import LoadOptions, ModelCache, load_captioner
from igcap.registry import ModelSpec
from tests import builders

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {  # each with a minimum length: the tiny models would otherwise end at once
    "fast preset": PRESETS["fast"].replace(min_new_tokens=5, max_new_tokens=12),
    "forced length": DecodingSettings(strategy="greedy", no_repeat_ngram_size=0, min_new_tokens=10, max_new_tokens=10),
    "penalty + 2-grams": DecodingSettings(strategy="greedy", repetition_penalty=1.3, no_repeat_ngram_size=2,
                                          min_new_tokens=3, max_new_tokens=14),
    "balanced preset (beam)": PRESETS["balanced"].replace(min_new_tokens=4, max_new_tokens=12),
    "precise preset, 2 variants": PRESETS["precise"].replace(min_new_tokens=3, max_new_tokens=10, num_variants=2),
    "creative preset (sampling), seeded, 3 variants": PRESETS["creative"].replace(seed=11, min_new_tokens=3,
                                                                                  max_new_tokens=10),
    "sampling, top-k only": DecodingSettings(strategy="sample", temperature=1.3, top_k=5, top_p=1.0, seed=2,
                                             no_repeat_ngram_size=0, min_new_tokens=4, max_new_tokens=8),
    "fast preset, no emoji": PRESETS["fast"].replace(max_emoji=0, min_new_tokens=5, max_new_tokens=12),
    "balanced preset, at most one emoji": PRESETS["balanced"].replace(max_emoji=1, min_new_tokens=4, max_new_tokens=12),
    "creative preset, no emoji": PRESETS["creative"].replace(max_emoji=0, seed=5, min_new_tokens=3, max_new_tokens=10),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two tiny models saved as published repos, and an int8 cache holding both (written by a first load)."""
    root = tmp_path_factory.mktemp("light")
    models = [builders.save_tiny_model(root / f"m{seed}", seed=seed) for seed in (3, 4)]
    cache = Int8CacheOptions(root / "cache", 64)
    for folder in models:
        load_captioner(spec(folder), LoadOptions(device="cpu", quantize=True, int8_cache=cache))
    return models, cache


def spec(folder) -> ModelSpec:
    return ModelSpec(Path(folder).name, Path(folder).name, str(folder))


def options(cache, light=True) -> LoadOptions:
    return LoadOptions(device="cpu", quantize=True, int8_cache=cache, light=light)


def photos(n=3):
    return [Image.fromarray((torch.rand(60 + 7 * i, 80, 3, generator=torch.Generator().manual_seed(i)) * 255)
                            .to(torch.uint8).numpy()) for i in range(n)]


def test_the_config_is_read_only_when_reproduced(tmp_path, folders):
    folder = folders[0][0]
    assert light_model.read_config(folder) is not None
    config = json.loads((folder / "config.json").read_text())

    def variant(change, generation=None):
        changed = json.loads(json.dumps(config))
        change(changed)
        out = tmp_path / f"v{len(list(tmp_path.iterdir()))}"
        out.mkdir()
        (out / "config.json").write_text(json.dumps(changed))
        if generation is not None:
            (out / "generation_config.json").write_text(json.dumps(generation))
        return light_model.read_config(out)

    assert variant(lambda c: None) is not None
    assert variant(lambda c: c["decoder"].update(reorder_and_upcast_attn=True)) is None
    assert variant(lambda c: c["decoder"].update(activation_function="relu")) is None
    assert variant(lambda c: c["encoder"].update(hidden_size=64)) is None  # transformers adds a projection
    assert variant(lambda c: c["decoder"].update(add_cross_attention=False)) is None
    assert variant(lambda c: c["encoder"].update(model_type="deit")) is None
    assert variant(lambda c: None, {"num_beams": 4}) is None  # generate would use it; the lean loops would not
    assert variant(lambda c: None, {"min_length": 5}) is None
    assert variant(lambda c: None, {"use_cache": True, "eos_token_id": 7, "max_length": 20}) is not None


def models_from_entry(folder, cache):
    """The light model and the transformers model, both from the same cache entry."""
    light = Int8Cache(cache).load(str(folder), None, None, light=light_model.read_config(folder))
    full = Int8Cache(cache).load(str(folder), None, None)
    assert light_model.is_light(light) and not light_model.is_light(full)
    return light, full


def test_the_light_encoder_is_transformers_bit_for_bit(folders):
    folder, cache = folders[0][0], folders[1]
    light, full = models_from_entry(folder, cache)
    pixels = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(lean_decoding.encode(light, pixels), lean_decoding.encode(full, pixels))
        with pytest.raises(ValueError, match="224"):
            light.encoder(pixel_values=pixels[:, :, :200])


@pytest.mark.parametrize("name", list(SETTINGS), ids=list(SETTINGS))
def test_captions_are_those_of_the_transformers_path(folders, name):
    """Same photos, same settings: a light cache and a transformers cache give the same token ids."""
    models, cache = folders
    settings = SETTINGS[name]
    images = photos()
    found = {}
    for light in (True, False):
        model_cache = ModelCache({spec(f).key: spec(f) for f in models}, options(cache, light), max_models=2)
        runs = Captioner(model_cache).caption(images, [spec(f).key for f in models], settings)
        assert all(run.ok for run in runs), [run.error for run in runs]
        found[light] = [(r.raw_text, r.tokens, r.ended_with_eos) for run in runs for r in run.results]
        assert all(model_cache.get(spec(f).key).light is light for f in models)
        if light:  # served by the light loops: no transformers model was made
            assert all(model_cache.get(spec(f).key)._full is None for f in models)
    assert found[True] == found[False]
    assert len({text for text, *_ in found[True]}) > 1  # the premise: the captions differ between photos and models


def test_what_the_lean_loops_do_not_serve_goes_through_transformers_with_the_same_tensors(folders):
    models, cache = folders
    loaded = load_captioner(spec(models[0]), options(cache))
    assert loaded.light and loaded.fallbacks == []
    sibling = load_captioner(spec(models[1]), options(cache))  # the same tokenizer files: one tokenizer object
    assert sibling.light and sibling.tokenizer is loaded.tokenizer
    full = loaded.transformers()
    assert full is loaded.transformers() and not full.light and full.transformers() is full
    light_tensors = {t.data_ptr() for t in (*loaded.model.parameters(), *loaded.model.buffers())}
    assert light_tensors == {t.data_ptr() for t in (*full.model.parameters(), *full.model.buffers())}
    assert loaded.model.decoder.transformer.h[0].attn.c_attn is full.model.decoder.transformer.h[0].attn.c_attn
    model_cache = ModelCache({"m3": spec(models[0])}, options(cache), max_models=1)
    for settings in (PRESETS["fast"].replace(start_with="a photo of", min_new_tokens=4, max_new_tokens=8),
                     PRESETS["balanced"].replace(start_with="sunset", max_emoji=0, min_new_tokens=4, max_new_tokens=8)):
        [run] = Captioner(model_cache).caption(photos(1), ["m3"], settings)
        assert run.ok, run.error
        reference = ModelCache({"m3": spec(models[0])}, options(cache, light=False), max_models=1)
        [expected] = Captioner(reference).caption(photos(1), ["m3"], settings)
        assert [r.raw_text for r in run.results] == [r.raw_text for r in expected.results]
        assert all(r.tokens >= 4 for r in run.results)


def test_a_light_model_that_does_not_fit_the_entry_leaves_it_for_transformers(folders, monkeypatch):
    folder, cache = folders[0][0], folders[1]
    config = light_model.read_config(folder)
    smaller = config.__class__(config.encoder.__class__(**{**config.encoder.__dict__, "num_hidden_layers": 1}),
                               config.decoder, config.generation)
    before = sorted(Path(cache.folder).iterdir())
    assert Int8Cache(cache).load(str(folder), None, None, light=smaller) is None
    assert sorted(Path(cache.folder).iterdir()) == before  # the entry is fine: kept
    assert Int8Cache(cache).load(str(folder), None, None) is not None


def test_sessions_captioning_at_once_with_one_light_model_get_their_own_captions(folders):
    """Greedy, beam search, seeded sampling and the emoji limit from twelve threads at once: each gets the
    captions it gets alone (the light modules, tokenizer and emoji table are shared)."""
    models, cache = folders
    model_cache = ModelCache({spec(f).key: spec(f) for f in models}, options(cache), max_models=2)
    keys = [spec(f).key for f in models]
    jobs = [(photos(3)[i:i + 1], SETTINGS[name]) for i in range(3)
            for name in ("fast preset", "balanced preset (beam)", "creative preset (sampling), seeded, 3 variants",
                         "balanced preset, at most one emoji")]
    alone = [[r.raw_text for run in Captioner(model_cache).caption(images, keys, s) for r in run.results] for images, s in jobs]
    together, errors = [None] * len(jobs), []

    def work(i):
        try:
            images, settings = jobs[i]
            together[i] = [r.raw_text for run in Captioner(model_cache).caption(images, keys, settings) for r in run.results]
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and together == alone


def test_a_process_captioning_with_light_models_never_imports_transformers(folders, tmp_path):
    models, cache = folders
    script = textwrap.dedent(f"""
        import sys
        from PIL import Image
        from igcap.captioner import Captioner
        from igcap.decoding import PRESETS
        from igcap.int8_cache import Int8CacheOptions
        from igcap.loading import LoadOptions, ModelCache
        from igcap.registry import ModelSpec
        specs = {{p.split('/')[-1]: ModelSpec(p.split('/')[-1], p.split('/')[-1], p) for p in {[str(m) for m in models]!r}}}
        cache = ModelCache(specs, LoadOptions(device="cpu", quantize=True, light=True,
                           int8_cache=Int8CacheOptions({str(cache.folder)!r}, 64)), max_models=2)
        image = Image.new("RGB", (90, 70), "orange")
        for preset in ("fast", "balanced", "creative"):
            runs = Captioner(cache).caption([image], list(specs), PRESETS[preset].replace(max_new_tokens=6))
            assert all(run.ok for run in runs), [run.error for run in runs]
        assert all(cache.get(k).light for k in specs)
        print("transformers" in sys.modules, "torch._dynamo" in sys.modules)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_sessions_asking_for_the_transformers_model_at_once_get_one(folders):
    models, cache = folders
    loaded = load_captioner(spec(models[0]), options(cache))
    found, barrier = [], threading.Barrier(4)

    def ask():
        barrier.wait()
        found.append(loaded.transformers())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 4 and all(f is found[0] for f in found) and not found[0].light


def test_the_published_layout_loads_light_with_the_same_fallbacks(hub_cache, tmp_path):
    """The four models under their hub ids, one repo without tokenizer or processor files (it borrows its
    bases', as the published ones may): every model loads light, borrowing what the transformers path
    borrows, and captions as it does."""
    from igcap.registry import load_registry

    registry = load_registry()
    cache = Int8CacheOptions(tmp_path / "int8", 256)
    full = ModelCache(registry, options(cache, light=False), max_models=4)
    light = ModelCache(registry, options(cache), max_models=4)
    settings = PRESETS["balanced"].replace(min_new_tokens=3, max_new_tokens=8)
    expected = Captioner(full).caption(photos(1), list(registry), settings)  # fills the int8 cache too
    found = Captioner(light).caption(photos(1), list(registry), settings)
    assert [r.raw_text for run in found for r in run.results] == [r.raw_text for run in expected for r in run.results]
    for key in registry:
        assert light.get(key).light, key
        assert light.get(key).fallbacks == full.get(key).fallbacks
    assert any(full.get(key).fallbacks for key in registry)  # the premise: one repo borrows its bases' files


def own_parts_model(folder: Path, tokenizer_config: dict | None = None, slow_tokenizer: bool = False,
                    processor_config: dict | None = None) -> Path:
    """A local model whose tokenizer is its own (a vocabulary the base's, gpt2's, does not share), its
    tokenizer_config.json updated with ``tokenizer_config``; ``slow_tokenizer``: only vocab.json and
    merges.txt, as a slow GPT-2 tokenizer's repo; ``processor_config``: its preprocessor_config.json."""
    tokenizer = builders.make_tokenizer(extra_lines=("a quokka eating marmalade under the aurora 🦘 #wildlife",) * 4)
    builders.make_tiny_model(tokenizer, seed=6).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config_path = folder / "tokenizer_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), **(tokenizer_config or {})}))
    if slow_tokenizer:
        tokenizer.backend_tokenizer.model.save(str(folder))  # vocab.json, merges.txt
        (folder / "tokenizer.json").unlink()
    if processor_config is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps(processor_config))
    else:
        builders.make_processor().save_pretrained(folder)
    return folder


OWN_TOKENIZERS = {  # its tokenizer files → whether the light model reproduces them
    "extra_special_tokens {} (as transformers 4.4x-4.5x write it)": ({"extra_special_tokens": {}}, False, True),
    "a setting the light tokenizer has not been checked against": ({"do_lower_case": False}, False, False),
    "a slow tokenizer's vocab.json + merges.txt": ({"tokenizer_class": "GPT2Tokenizer"}, True, False),
}


@pytest.mark.parametrize("name", list(OWN_TOKENIZERS), ids=list(OWN_TOKENIZERS))
def test_a_model_with_its_own_tokenizer_never_decodes_with_the_bases(hub_cache, tmp_path, name):
    """The light path takes the base's tokenizer only where the repo has no tokenizer file at all: a tokenizer
    of its own that the light one does not reproduce sends the whole model through transformers, so one
    loaded model decodes one way (its captions, and what sampling and start_with decode through transformers)."""
    from transformers import AutoTokenizer

    changes, slow, reproduced = OWN_TOKENIZERS[name]
    folder = own_parts_model(tmp_path / "own", changes, slow_tokenizer=slow)
    own, base = AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained("gpt2")
    ids = list(range(min(len(own), len(base))))
    assert own.decode(ids) != base.decode(ids)  # the premise: the base's vocabulary reads these ids otherwise
    cache = Int8CacheOptions(tmp_path / "int8", 64)
    load_captioner(spec(folder), options(cache, light=False))  # writes the int8 entry
    loaded = load_captioner(spec(folder), options(cache))
    assert loaded.light is reproduced and loaded.fallbacks == []
    assert loaded.tokenizer.decode(ids) == loaded.transformers().tokenizer.decode(ids) == own.decode(ids)
    settings = PRESETS["balanced"].replace(min_new_tokens=4, max_new_tokens=10)
    found = {}
    for light in (True, False):
        model_cache = ModelCache({"own": spec(folder)}, options(cache, light), max_models=1)
        [run] = Captioner(model_cache).caption(photos(2), ["own"], settings)
        assert run.ok, run.error
        found[light] = [(r.raw_text, r.tokens) for r in run.results]
    assert found[True] == found[False]


def test_a_model_with_its_own_image_processor_never_normalises_with_the_bases(hub_cache, tmp_path):
    """ImageNet's mean and std in a preprocessor_config.json the light processor does not read (processor_class):
    the model goes through transformers' processor of those files, never the base's mean = std = 0.5."""
    from transformers import AutoImageProcessor

    imagenet = {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225], "image_processor_type": "ViTImageProcessor", "resample": 2,
                "rescale_factor": 1 / 255, "size": {"height": 224, "width": 224},
                "processor_class": "VisionTextDualEncoderProcessor"}
    folder = own_parts_model(tmp_path / "own", processor_config=imagenet)
    cache = Int8CacheOptions(tmp_path / "int8", 64)
    load_captioner(spec(folder), options(cache, light=False))  # writes the int8 entry
    loaded = load_captioner(spec(folder), options(cache))
    images = photos(2)
    expected = AutoImageProcessor.from_pretrained(folder)(images=images, return_tensors="pt").pixel_values
    base = AutoImageProcessor.from_pretrained("google/vit-base-patch16-224-in21k")
    assert not torch.equal(base(images=images, return_tensors="pt").pixel_values, expected)  # the premise
    assert loaded.fallbacks == []
    assert torch.equal(loaded.processor(images=images, return_tensors="pt").pixel_values, expected)
    assert torch.equal(loaded.transformers().processor(images=images, return_tensors="pt").pixel_values, expected)
