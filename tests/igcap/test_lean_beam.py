"""Beam search for transformers models through igcap's loop (igcap.lean_beam → igcap.beam_search) gives
generate's ids, and generate decodes what it does not reproduce."""

import pytest
import torch

from igcap import beam_search, lean_beam
from igcap.decoding import PRESETS, DecodingSettings
from tests.igcap.test_lean_decoding import model, pixels, tokenizer  # noqa: F401  (the same tiny models and photos)

BEAM = {
    "balanced (the default)": PRESETS["balanced"].replace(max_new_tokens=14),
    "precise": PRESETS["precise"].replace(max_new_tokens=12),
    "three variants": DecodingSettings(strategy="beam", num_beams=4, num_variants=3, max_new_tokens=10,
                                       no_repeat_ngram_size=0),
    "min length, long penalty": DecodingSettings(strategy="beam", num_beams=3, length_penalty=2.0, min_new_tokens=4,
                                                 max_new_tokens=10, no_repeat_ngram_size=2),
}


def both(model, pixels, settings, tokenizer):
    gen_config = settings.to_generation_config(eos_token_id=tokenizer.eos_token_id)
    plan = lean_beam.beam_plan(model, gen_config)
    assert plan is not None
    with torch.inference_mode():
        return model.generate(pixel_values=pixels, generation_config=gen_config), beam_search.beam_search(model, pixels, plan)


@pytest.mark.parametrize("settings", BEAM.values(), ids=BEAM.keys())
def test_the_lean_beam_search_gives_generates_ids(model, pixels, tokenizer, settings):
    reference, lean = both(model, pixels, settings, tokenizer)
    assert torch.equal(lean, reference)


def test_one_photo_too(model, pixels, tokenizer):
    reference, lean = both(model, pixels[:1], BEAM["balanced (the default)"], tokenizer)
    assert torch.equal(lean, reference)


def first_positions(ids, token: int) -> list:
    return [row.index(token) if token in row else None for row in ids[:, 1:].tolist()]


def photo_sets(pixels):
    """The shared photos, then sets the tiny models tell apart more: noise at contrasts from 0.05 to 4, and
    solid colours (which token ends captions at different steps depends on the CPU's int8 arithmetic: on an
    AVX2 CPU none did for the shared photos with int8 weights)."""
    yield pixels
    noise = torch.rand(6, 3, 224, 224, generator=torch.Generator().manual_seed(1)) * 2 - 1
    yield noise * torch.tensor([0.05, 0.2, 0.5, 1.0, 2.0, 4.0]).view(6, 1, 1, 1)
    levels = torch.tensor([-1.0, -0.6, -0.2, 0.2, 0.6, 1.0]).view(6, 1, 1, 1)
    yield levels * torch.tensor([1.0, -1.0, 0.5]).view(1, 3, 1, 1) * torch.ones(6, 3, 224, 224)


def early_ending(model, gen_config, pixels, eos_id: int):
    """Photos and generate's ids for them with an end token (set in ``gen_config``) that the model writes
    early for some photos, later or never for others."""
    for photos in photo_sets(pixels):
        gen_config.eos_token_id = eos_id
        with torch.inference_mode():
            plain = model.generate(pixel_values=photos, generation_config=gen_config)
        for ends in sorted(set(plain[:, 5:].flatten().tolist())):  # tokens written after the minimum length
            gen_config.eos_token_id = ends
            with torch.inference_mode():
                reference = model.generate(pixel_values=photos, generation_config=gen_config)
            if len(set(first_positions(reference, ends))) >= 2:
                return photos, reference
    pytest.fail("no token ends the captions at different steps: the test's premise")


@pytest.mark.parametrize("early_stopping", [False, True, "never"])
def test_beams_that_end_at_different_steps_keep_generates_ids(model, pixels, tokenizer, early_stopping):
    """An end token the model writes early for some photos, later or never for others: finished beams, the
    length penalty and the early-stop heuristic all take part."""
    import copy

    gen_config = copy.deepcopy(BEAM["min length, long penalty"].replace(max_new_tokens=14).to_generation_config(
        eos_token_id=tokenizer.eos_token_id))
    gen_config.early_stopping = early_stopping
    photos, reference = early_ending(model, gen_config, pixels, tokenizer.eos_token_id)
    plan = lean_beam.beam_plan(model, gen_config)
    with torch.inference_mode():
        lean = beam_search.beam_search(model, photos, plan)
    assert torch.equal(lean, reference)


@pytest.mark.parametrize("settings", [PRESETS["fast"], PRESETS["creative"].replace(seed=1)], ids=["greedy", "sampling"])
def test_what_the_loop_does_not_reproduce_goes_to_generate(model, tokenizer, settings):
    assert lean_beam.beam_plan(model, settings.to_generation_config(eos_token_id=tokenizer.eos_token_id)) is None


@pytest.mark.parametrize("option, value", [("output_scores", True), ("num_beam_groups", 2), ("max_new_tokens", None)])
def test_options_it_does_not_reproduce_go_to_generate(model, tokenizer, option, value):
    import copy

    gen_config = copy.deepcopy(BEAM["balanced (the default)"].to_generation_config(eos_token_id=tokenizer.eos_token_id))
    setattr(gen_config, option, value)
    if option == "num_beam_groups":
        gen_config.diversity_penalty = 0.5
    if option == "max_new_tokens":
        gen_config.max_length = 12
    assert lean_beam.beam_plan(model, gen_config) is None


def test_extra_logits_processors_go_to_generate(model, tokenizer):
    from transformers import LogitsProcessorList

    gen_config = BEAM["balanced (the default)"].to_generation_config(eos_token_id=tokenizer.eos_token_id)
    assert lean_beam.beam_plan(model, gen_config, {"logits_processor": LogitsProcessorList()}) is None


def test_a_lean_loop_failure_on_a_transformers_model_costs_speed_not_captions(tmp_path, monkeypatch, caplog):
    """A transformers release whose modules the loop no longer reads right fails there with a TypeError:
    the batch goes to generate, and the log says so."""
    from PIL import Image

    from igcap.captioner import Captioner
    from igcap.loading import LoadOptions, ModelCache
    from igcap.registry import ModelSpec
    from tests import builders

    tokenizer = builders.make_tokenizer()
    builders.make_tiny_model(tokenizer, seed=9).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    builders.make_processor().save_pretrained(tmp_path / "m")
    registry = {"m": ModelSpec("m", "M", str(tmp_path / "m"))}
    photos = [Image.new("RGB", (96, 72), c) for c in ("red", "blue")]
    settings = BEAM["balanced (the default)"]
    expected = Captioner(ModelCache(registry, LoadOptions(device="cpu", lean_decoding=False))).caption(photos, ["m"], settings)
    cache = ModelCache(registry, LoadOptions(device="cpu"))
    assert not cache.get("m").light

    def changed(*args, **kwargs):
        raise TypeError("forward() got an unexpected keyword argument 'cache_position'")

    monkeypatch.setattr(beam_search, "search", changed)
    runs = Captioner(cache).caption(photos, ["m"], settings)
    assert runs[0].ok and [r.raw_text for r in runs[0].results] == [r.raw_text for r in expected[0].results]
    assert "generate decodes instead" in caplog.text
