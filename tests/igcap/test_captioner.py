from dataclasses import replace

import pytest
from PIL import Image

from igcap import lean_decoding
from igcap.captioner import Captioner, PixelCache
from igcap.config import Settings
from igcap.decoding import PRESETS, DecodingSettings
from igcap.loading import LoadOptions, ModelCache
from igcap.registry import DEFAULT_KEYS, load_registry
from igcap.text import clean_caption

GREEDY = DecodingSettings(strategy="greedy", max_new_tokens=12, no_repeat_ngram_size=0)


@pytest.fixture(scope="module")
def cache(hub_cache, tmp_path_factory):
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path_factory.mktemp("data"))}))
    return ModelCache(reg, LoadOptions(device="cpu", quantize=False))


@pytest.fixture(scope="module")
def photos():
    return [Image.new("RGB", (120, 90), c) for c in ("red", "blue", "green")]


def test_every_photo_gets_a_caption_from_every_model(cache, photos):
    runs = Captioner(cache).caption(photos, DEFAULT_KEYS, GREEDY)
    assert [r.model_key for r in runs] == list(DEFAULT_KEYS)
    for run in runs:
        assert run.ok and sorted(r.photo_index for r in run.results) == [0, 1, 2]
        for r in run.results:
            assert r.model_key == run.model_key and r.tokens <= 12 and r.seconds >= 0
            assert r.text == clean_caption(r.raw_text, drop_fragment=not r.ended_with_eos)
            assert r.ended_with_eos or r.tokens == 12


def test_each_model_is_handed_over_before_the_next_one_starts(cache, photos):
    events = []
    Captioner(cache).caption(photos[:1], DEFAULT_KEYS[:2], GREEDY,
                             on_result=lambda run: events.append(("result", run.model_key)),
                             on_progress=lambda e: events.append((e.stage, e.model_key)))
    first, second = DEFAULT_KEYS[:2]
    assert events.index(("result", first)) < events.index(("loading", second))
    assert events[:3] == [("loading", first), ("captioning", first), ("done", first)]


def test_a_failing_model_does_not_lose_the_others(cache, photos):
    broken = dict(cache.registry, **{"vit-gpt2-all": replace(cache.registry["vit-gpt2-all"], source="/no/such/dir")})
    runs = Captioner(ModelCache(broken, cache.options)).caption(photos, DEFAULT_KEYS, GREEDY)
    by_key = {r.model_key: r for r in runs}
    assert not by_key["vit-gpt2-all"].ok and "does not exist" in by_key["vit-gpt2-all"].error.message
    assert all(by_key[k].ok and len(by_key[k].results) == 3 for k in DEFAULT_KEYS if k != "vit-gpt2-all")


def test_an_error_while_generating_is_contained(cache, photos, monkeypatch):
    loaded, real_greedy = cache.get(DEFAULT_KEYS[0]), lean_decoding.greedy_generate
    fail = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("out of memory"))  # noqa: E731
    monkeypatch.setattr(loaded.model, "generate", fail)
    monkeypatch.setattr(lean_decoding, "greedy_generate", lambda model, *a: fail() if model is loaded.model
                        else real_greedy(model, *a))  # greedy goes through the lean loop
    runs = Captioner(cache).caption(photos, DEFAULT_KEYS[:2], GREEDY)
    assert "out of memory" in runs[0].error.message and runs[1].ok


def test_batching_does_not_change_greedy_captions(cache, photos):
    one = Captioner(cache, batch_size=1).caption(photos, DEFAULT_KEYS[:1], GREEDY)[0]
    all_at_once = Captioner(cache, batch_size=8).caption(photos, DEFAULT_KEYS[:1], GREEDY)[0]
    assert [r.raw_text for r in one.results] == [r.raw_text for r in all_at_once.results]


def test_sampling_is_reproducible_with_a_seed(cache, photos):
    settings = PRESETS["creative"].replace(seed=11, max_new_tokens=16)
    run = lambda s: [r.raw_text for r in Captioner(cache).caption(photos[:2], DEFAULT_KEYS[:1], s)[0].results]  # noqa: E731
    first = run(settings)
    assert len(first) == 2 * settings.num_variants
    assert run(settings) == first
    assert run(settings.replace(seed=12)) != first


def test_variants_are_numbered_per_photo(cache, photos):
    settings = DecodingSettings(strategy="beam", num_beams=3, num_variants=3, max_new_tokens=8)
    results = Captioner(cache).caption(photos[:2], DEFAULT_KEYS[:1], settings)[0].results
    assert [(r.photo_index, r.variant) for r in results] == [(p, v) for p in range(2) for v in range(3)]


def test_photos_are_preprocessed_once_for_models_sharing_a_processor(cache, photos):
    processor = cache.get(DEFAULT_KEYS[0]).processor
    calls = []

    class Spy:
        def to_json_string(self):
            return processor.to_json_string()

        def __call__(self, **kw):
            calls.append(len(kw["images"]))
            return processor(**kw)

    pixels = PixelCache(photos)
    first, again = pixels.pixels(Spy()), pixels.pixels(Spy())
    assert calls == [3] and first is again and tuple(first.shape) == (3, 3, 224, 224)


@pytest.mark.parametrize("settings", [GREEDY, PRESETS["balanced"].replace(max_new_tokens=10),
                                      PRESETS["creative"].replace(max_new_tokens=10, seed=3)])
def test_start_with_continues_the_persons_words(cache, photos, settings):
    start = "a red circle on"
    runs = Captioner(cache).caption(photos[:2], DEFAULT_KEYS[:1], settings.replace(start_with=f"  {start} "))
    results = runs[0].results
    assert runs[0].ok and len(results) == 2 * settings.num_variants
    for r in results:
        assert r.text.startswith(start) and r.raw_text.startswith(start)  # the card shows the whole caption
        assert 0 < r.tokens <= settings.max_new_tokens  # the limit counts the model's tokens only
        assert len(r.text) > len(start) or r.ended_with_eos


def test_start_with_works_with_int8_weights(hub_cache, photos, tmp_path):
    reg = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path)}))
    quantized = ModelCache(reg, LoadOptions(device="cpu", quantize=True))
    [run] = Captioner(quantized).caption(photos[:1], DEFAULT_KEYS[:1], GREEDY.replace(start_with="Golden hour"))
    assert run.ok and run.results[0].text.startswith("Golden hour")


def test_emoji_setting_is_enforced_while_decoding(cache, photos, monkeypatch):
    """The model is pushed towards emoji tokens; keep lets them through, none and at most N hold."""
    from igcap.text import contains_emoji, count_emoji
    from tests.igcap.test_emoji_control import PreferEmoji

    loaded = cache.get(DEFAULT_KEYS[0])
    generate = loaded.model.generate

    def emoji_happy(**kwargs):
        kwargs["logits_processor"] = [PreferEmoji(loaded.tokenizer), *kwargs.get("logits_processor", [])]
        return generate(**kwargs)

    monkeypatch.setattr(loaded.model, "generate", emoji_happy)
    monkeypatch.setattr(loaded, "lean_decoding", False)  # the push towards emoji rides on generate's processors
    settings = GREEDY.replace(min_new_tokens=12, drop_fragment=False)

    def emoji(max_emoji, start=""):
        [run] = Captioner(cache).caption(photos[:2], DEFAULT_KEYS[:1],
                                         settings.replace(max_emoji=max_emoji, start_with=start))
        assert run.ok
        return [count_emoji(r.raw_text) for r in run.results], [r.text for r in run.results]

    kept, _ = emoji(None)
    assert all(n >= 4 for n in kept)
    none, texts = emoji(0)
    assert none == [0, 0] and not any(contains_emoji(t) for t in texts)
    assert emoji(2)[0] == [2, 2]
    assert emoji(2, start="Sunset 🌅")[0] == [2, 2]  # the start words' emoji count towards the cap


def test_a_stop_request_skips_the_models_not_yet_started(cache, photos):
    asked = []
    runs = Captioner(cache).caption(photos[:1], DEFAULT_KEYS[:3], GREEDY,
                                    should_stop=lambda: asked.append(1) or len(asked) > 1)
    assert [r.model_key for r in runs] == [DEFAULT_KEYS[0]] and runs[0].ok


@pytest.mark.parametrize("max_rows, beams, expected", [(None, 4, 8), (16, 4, 4), (8, 4, 2), (3, 4, 1), (16, 1, 8)])
def test_rows_decoded_together_are_capped(cache, max_rows, beams, expected):
    settings = (DecodingSettings(strategy="beam", num_beams=beams, max_new_tokens=4) if beams > 1 else GREEDY)
    captioner = Captioner(cache, batch_size=8, max_rows=max_rows)
    assert captioner.photos_per_batch(settings) == expected


def test_a_capped_batch_still_captions_every_photo(cache, photos, monkeypatch):
    from igcap import captioner

    sizes, decode = [], captioner.generate_ids  # generate or a lean loop: whichever decodes the batch
    monkeypatch.setattr(captioner, "generate_ids", lambda loaded, batch, *a: sizes.append(batch.shape[0])
                        or decode(loaded, batch, *a))
    settings = DecodingSettings(strategy="beam", num_beams=4, max_new_tokens=6)
    run = Captioner(cache, max_rows=8).caption(photos, DEFAULT_KEYS[:1], settings)[0]
    assert sizes == [2, 1] and sorted(r.photo_index for r in run.results) == [0, 1, 2]


def test_a_length_past_the_models_positions_is_cut_to_them_not_a_crash(tmp_path):
    """The demo models have 64 positions: 65 tokens, or start words with 62, failed with "Captioning failed:
    index out of range in self" (the Create page's fallback models when the hub cannot be reached)."""
    from igcap.captioner import Captioner
    from igcap.int8_cache import Int8CacheOptions
    from igcap.loading import LoadOptions, ModelCache
    from igcap.registry import ModelSpec
    from igcap.shapes import save_random_base

    folder = save_random_base(tmp_path / "demo")
    photo = [Image.new("RGB", (96, 72), "red")]
    for light in (True, False):
        options = LoadOptions(device="cpu", int8_cache=Int8CacheOptions(tmp_path / f"int8-{light}"), light=light)
        captioner = Captioner(ModelCache({"d": ModelSpec("d", "demo", str(folder))}, options))
        for settings in (PRESETS["fast"].replace(max_new_tokens=65, min_new_tokens=65),
                         PRESETS["fast"].replace(start_with="a red circle", max_new_tokens=62, min_new_tokens=62),
                         PRESETS["balanced"].replace(max_new_tokens=80, min_new_tokens=70)):
            [run] = captioner.caption(photo, ["d"], settings)
            assert run.ok, run.error
            assert 0 < run.results[0].tokens <= 64
        [run] = captioner.caption(photo, ["d"], PRESETS["fast"].replace(start_with="word " * 39))
        assert not run.ok and "too long for this model" in run.error.message


def test_a_setting_that_cannot_work_is_raised_not_reported_per_model(cache, photos, monkeypatch):
    """IGCAP_DEVICE=cuda on a host without a GPU is a configuration error, the same for every model: it was
    caught as one model's failure ("Captioning failed … the Models page shows this model's state", with a
    traceback in the log), once per model. It reaches the caller, which reports it as a setting."""
    from igcap.config import ConfigError

    def loader(spec, options, pool):
        raise ConfigError("IGCAP_DEVICE=cuda but no CUDA GPU is available")

    broken = ModelCache(cache.registry, cache.options, loader=loader)
    with pytest.raises(ConfigError, match="IGCAP_DEVICE=cuda"):
        Captioner(broken).caption(photos[:1], DEFAULT_KEYS[:2], GREEDY)
