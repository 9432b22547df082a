"""The lean greedy loop (igcap.lean_decoding) gives generate's token ids, and generate decodes whatever
the loop does not reproduce."""

import copy
import threading

import pytest
import torch
from PIL import Image

from igcap import architecture, bench, lean_decoding, optimize
from igcap.captioner import Captioner, PixelCache, caption_with
from igcap.decoding import PRESETS, DecodingSettings
from igcap.loading import LoadOptions, ModelCache
from igcap.registry import ModelSpec
from tests import builders

GREEDY = {  # every option the loop reproduces
    "fast preset (no-repeat 3-grams)": PRESETS["fast"].replace(max_new_tokens=16),
    "forced length (the benchmark's)": DecodingSettings(strategy="greedy", no_repeat_ngram_size=0,
                                                        min_new_tokens=12, max_new_tokens=12),
    "penalty, 2-grams, min length": DecodingSettings(strategy="greedy", repetition_penalty=1.3,
                                                     no_repeat_ngram_size=2, min_new_tokens=3, max_new_tokens=16),
    "mild penalty below 1": DecodingSettings(strategy="greedy", repetition_penalty=0.9, no_repeat_ngram_size=0,
                                             max_new_tokens=10),
}


@pytest.fixture(scope="module")
def tokenizer():
    return builders.make_tokenizer()


@pytest.fixture(scope="module")
def pixels():
    return torch.rand(6, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1


model_for = builders.inference_model


@pytest.fixture(scope="module", params=[False, True], ids=["fp32", "int8"])
def model(request, tokenizer):
    return model_for(tokenizer, request.param)


def both(model, pixels, gen_config):
    plan = lean_decoding.greedy_plan(model, gen_config)
    assert plan is not None
    with torch.inference_mode():
        return model.generate(pixel_values=pixels, generation_config=gen_config), \
            lean_decoding.greedy_generate(model, pixels, plan)


@pytest.mark.parametrize("settings", GREEDY.values(), ids=GREEDY.keys())
def test_the_lean_loop_gives_generates_ids(model, pixels, tokenizer, settings):
    gen_config = settings.to_generation_config(eos_token_id=tokenizer.eos_token_id)
    reference, lean = both(model, pixels, gen_config)
    assert torch.equal(lean, reference)


def first_positions(ids, token: int) -> list:
    return [row.index(token) if token in row else None for row in ids[:, 1:].tolist()]


def test_rows_ending_at_different_lengths_keep_generates_ids(model, pixels, tokenizer):
    """Rows that end early keep decoding pad tokens with the others, as in generate: with int8, every row's
    activations share one quantization scale, so dropping a finished row would change the others."""
    gen_config = GREEDY["fast preset (no-repeat 3-grams)"].to_generation_config(eos_token_id=tokenizer.eos_token_id)
    with torch.inference_mode():
        plain = model.generate(pixel_values=pixels, generation_config=gen_config)
    # an end token that some rows write early, others later, others never (the tiny models never write GPT-2's)
    ends = next(t for t in sorted(set(plain[:, 1:].flatten().tolist()))
                if len(set(first_positions(plain, t))) >= 3 and None in first_positions(plain, t))
    gen_config = copy.deepcopy(gen_config)
    gen_config.eos_token_id = ends  # the pad (and start) token stays GPT-2's end-of-text
    reference, lean = both(model, pixels, gen_config)
    lengths = [row.index(ends) + 1 if ends in row else len(row) for row in reference[:, 1:].tolist()]
    assert len(set(lengths)) >= 3  # the test's own premise
    assert torch.equal(lean, reference)


def test_batches_of_one_agree_too(model, pixels, tokenizer):
    gen_config = GREEDY["penalty, 2-grams, min length"].to_generation_config(eos_token_id=tokenizer.eos_token_id)
    reference, lean = both(model, pixels[:1], gen_config)
    assert torch.equal(lean, reference)


@pytest.mark.parametrize("settings", [PRESETS["balanced"], PRESETS["precise"], PRESETS["creative"].replace(seed=1),
                                      DecodingSettings(strategy="beam", num_beams=2, max_new_tokens=8)],
                         ids=["balanced beam", "precise beam", "sampling", "beam"])
def test_beam_search_and_sampling_go_to_generate(model, tokenizer, settings):
    assert lean_decoding.greedy_plan(model, settings.to_generation_config(eos_token_id=tokenizer.eos_token_id)) is None


@pytest.mark.parametrize("option", [dict(bad_words_ids=[[5]]), dict(suppress_tokens=[5]), dict(forced_eos_token_id=0),
                                    dict(min_length=4), dict(num_return_sequences=2), dict(output_scores=True,
                                    return_dict_in_generate=True), dict(exponential_decay_length_penalty=(2, 1.5)),
                                    dict(eos_token_id=[0, 5])], ids=lambda o: next(iter(o)))
def test_options_the_loop_does_not_reproduce_go_to_generate(model, tokenizer, option):
    gen_config = PRESETS["fast"].to_generation_config(eos_token_id=tokenizer.eos_token_id)
    for name, value in option.items():
        setattr(gen_config, name, value)
    assert lean_decoding.greedy_plan(model, gen_config) is None


def test_the_models_own_generation_options_count_too(tokenizer):
    """generate fills options the request leaves unset from the model's generation config: so does the plan."""
    model = model_for(tokenizer, quantize=False)
    model.generation_config.bad_words_ids = [[7]]
    assert lean_decoding.greedy_plan(model, PRESETS["fast"].to_generation_config(eos_token_id=tokenizer.eos_token_id)) is None
    model.generation_config.bad_words_ids = None
    model.generation_config.no_repeat_ngram_size = 2  # the request's own value (3) wins, as in generate
    plan = lean_decoding.greedy_plan(model, PRESETS["fast"].to_generation_config(eos_token_id=tokenizer.eos_token_id))
    assert plan.no_repeat_ngram_size == 3


def test_extra_logits_processors_and_other_models_go_to_generate(model, tokenizer):
    gen_config = PRESETS["fast"].to_generation_config(eos_token_id=tokenizer.eos_token_id)
    assert lean_decoding.greedy_plan(model, gen_config, {"logits_processor": ["emoji"]}) is None
    assert lean_decoding.greedy_plan(object(), gen_config) is None
    model.train()
    try:
        assert lean_decoding.greedy_plan(model, gen_config) is None
    finally:
        model.eval()


def test_eager_attention_gives_generates_ids_too(tokenizer, pixels):
    model = model_for(tokenizer, quantize=True)
    model.set_attn_implementation("eager")
    gen_config = GREEDY["penalty, 2-grams, min length"].to_generation_config(eos_token_id=tokenizer.eos_token_id)
    reference, lean = both(model, pixels, gen_config)
    assert torch.equal(lean, reference)


def test_several_threads_decoding_with_one_model_get_what_each_gets_alone(tokenizer, pixels):
    """Streamlit sessions are threads sharing the loaded models: the loop keeps no state between calls."""
    model = model_for(tokenizer, quantize=True)
    gen_config = GREEDY["penalty, 2-grams, min length"].to_generation_config(eos_token_id=tokenizer.eos_token_id)
    plan = lean_decoding.greedy_plan(model, gen_config)
    batches = [pixels[i:i + 1 + i % 3] for i in range(6)]
    with torch.inference_mode():
        alone = [lean_decoding.greedy_generate(model, b, plan) for b in batches]
    together: dict[int, list] = {}

    def decode(i):
        with torch.inference_mode():
            together[i] = [lean_decoding.greedy_generate(model, batches[i], plan) for _ in range(3)]

    workers = [threading.Thread(target=decode, args=(i,)) for i in range(len(batches))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for i, expected in enumerate(alone):
        assert all(torch.equal(got, expected) for got in together[i])


# ---------------------------------------------------------------- through the captioner

@pytest.fixture(scope="module")
def registry(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("lean")
    model = builders.make_tiny_model(tokenizer, seed=5)
    model.save_pretrained(folder / "m")
    tokenizer.save_pretrained(folder / "m")
    builders.make_processor().save_pretrained(folder / "m")
    return {"m": ModelSpec("m", "M", str(folder / "m"))}


PHOTOS = [Image.new("RGB", (96, 72), c) for c in ("red", "blue", "white")]


@pytest.mark.parametrize("settings", [PRESETS["fast"], PRESETS["fast"].replace(max_emoji=0),
                                      PRESETS["fast"].replace(start_with="a photo"), PRESETS["balanced"]],
                         ids=["greedy", "emoji limit", "start with", "beam"])
def test_captions_are_those_generate_writes_and_greedy_and_beam_go_lean(registry, settings, monkeypatch):
    from igcap import beam_search

    calls = []
    for module, name in ((lean_decoding, "greedy_generate"), (beam_search, "beam_search")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real: calls.append(1) or real(*a))
    runs = {lean: Captioner(ModelCache(registry, LoadOptions(device="cpu", lean_decoding=lean))).caption(
        PHOTOS, ["m"], settings) for lean in (False, True)}
    assert [r.raw_text for r in runs[True][0].results] == [r.raw_text for r in runs[False][0].results]
    assert runs[True][0].ok and len(runs[True][0].results) == len(PHOTOS) * settings.num_variants
    plain = settings.max_emoji is None and not settings.start_with  # greedy or beam search, nothing added
    assert bool(calls) == plain  # only with the switch on, and then on every batch


def test_the_lean_loop_runs_on_the_models_thread_setting(registry, monkeypatch):
    cache = ModelCache(registry, LoadOptions(device="cpu", threads=1))
    loaded = cache.get("m")
    assert loaded.threads == 1
    seen = []
    monkeypatch.setattr(lean_decoding, "greedy_generate", lambda *a: seen.append(torch.get_num_threads())
                        or torch.zeros((len(a[1]), 2), dtype=torch.long))
    before = torch.get_num_threads()
    caption_with(loaded, PixelCache(PHOTOS[:1]), PRESETS["fast"])
    assert seen == [1] and torch.get_num_threads() == before


# ---------------------------------------------------------------- siblings decoded together

def pair_through_a_pool(tokenizer, quantize: bool):
    """A published-like pair (the second differs in its last block, ln_f and token table) loaded through
    one pool, as the engine loads them, and an unrelated model."""
    base = builders.make_tiny_model(tokenizer, seed=11)
    sibling = bench.fine_tuned_sibling(base, seed=12)
    pool = optimize.TensorPool()
    made = []
    for m in (base, sibling, builders.make_tiny_model(tokenizer, seed=13)):
        architecture.set_token_ids(m, tokenizer.eos_token_id)
        made.append(optimize.prepare_for_inference(m, quantize=quantize, pool=pool))
    return made


@pytest.mark.parametrize("quantize", [False, True], ids=["fp32", "int8"])
@pytest.mark.parametrize("settings", [GREEDY["penalty, 2-grams, min length"], GREEDY["forced length (the benchmark's)"]],
                         ids=["penalty", "forced length"])
def test_models_decoded_together_get_the_ids_each_gets_alone(tokenizer, pixels, quantize, settings):
    first, sibling, other = pair_through_a_pool(tokenizer, quantize)
    layers = len(first.decoder.transformer.h)
    assert lean_decoding.shared_blocks(first, sibling) == layers - 1  # the premise: all but the last block shared
    assert lean_decoding.shared_blocks(first, other) == 0
    gen_config = settings.to_generation_config(eos_token_id=tokenizer.eos_token_id)
    plans = [lean_decoding.greedy_plan(m, gen_config) for m in (first, sibling, other)]
    with torch.inference_mode():
        alone = [m.generate(pixel_values=pixels, generation_config=gen_config) for m in (first, sibling, other)]
        together = lean_decoding.greedy_generate_together([first, sibling, other], pixels, plans)
    assert all(torch.equal(got, expected) for got, expected in zip(together, alone, strict=True))
    assert not torch.equal(alone[0], alone[1])  # the two members do write different captions


def test_rows_of_models_decoded_together_end_on_their_own(tokenizer, pixels):
    """One model's rows all end early while the other's go on: each keeps the ids it gets alone."""
    first, sibling, _ = pair_through_a_pool(tokenizer, quantize=True)
    gen_config = DecodingSettings(strategy="greedy", no_repeat_ngram_size=0, max_new_tokens=12).to_generation_config(
        eos_token_id=tokenizer.eos_token_id)
    gen_config.eos_token_id = -1  # never written: the sibling decodes all 12 steps
    with torch.inference_mode():
        plain = first.generate(pixel_values=pixels, generation_config=gen_config)
    early = copy.deepcopy(gen_config)
    early.eos_token_id = int(plain[0, 2])  # a token the first model writes early: its rows end sooner
    plans = [lean_decoding.greedy_plan(first, early), lean_decoding.greedy_plan(sibling, gen_config)]
    with torch.inference_mode():
        alone = [first.generate(pixel_values=pixels, generation_config=early),
                 sibling.generate(pixel_values=pixels, generation_config=gen_config)]
        together = lean_decoding.greedy_generate_together([first, sibling], pixels, plans)
    assert alone[0].shape[1] < alone[1].shape[1]  # the premise: the first stopped sooner
    assert all(torch.equal(got, expected) for got, expected in zip(together, alone, strict=True))


def test_a_pairs_shared_blocks_compute_their_image_keys_and_values_once(tokenizer, pixels, monkeypatch):
    first, sibling, other = pair_through_a_pool(tokenizer, quantize=True)
    calls = []
    real = lean_decoding.cross_keys_values
    monkeypatch.setattr(lean_decoding, "cross_keys_values", lambda *a: calls.append(1) or real(*a))
    plan = lean_decoding.greedy_plan(first, GREEDY["forced length (the benchmark's)"].to_generation_config(
        eos_token_id=tokenizer.eos_token_id))
    layers = len(first.decoder.transformer.h)
    with torch.inference_mode():
        lean_decoding.greedy_generate_together([first, sibling], pixels, [plan, plan])
        assert len(calls) == layers + 1  # the sibling computes only its own last block's
        calls.clear()
        lean_decoding.greedy_generate_together([first, other], pixels, [plan, plan])
        assert len(calls) == 2 * layers  # unrelated models share nothing


@pytest.mark.parametrize("threads", [1, 2])
def test_attention_over_contiguous_image_keys_equals_attention_over_generates_views(threads):
    """cross_keys_values makes each head's keys and values contiguous, where generate keeps transposed
    views of the projection: PyTorch's attention kernel must give the very same result from both
    layouts, at the full-size model's shapes (12 heads of 64 over 197 patches, one new token, and a
    beam search's rows)."""
    generator = torch.Generator().manual_seed(5)
    attention = torch.nn.functional.scaled_dot_product_attention
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for trial in range(40):
            rows = (1, 3, 8)[trial % 3]
            projected = torch.randn(rows, 197, 2 * 768, generator=generator) * (1 + trial % 5)
            keys, values = (t.view(rows, 197, 12, 64).transpose(1, 2) for t in projected.split(768, dim=2))
            query = torch.randn(rows, 1, 768, generator=generator).view(rows, 1, 12, 64).transpose(1, 2) * 3
            expected = attention(query, keys, values, scale=0.125)
            assert not keys.is_contiguous()
            assert torch.equal(attention(query, keys.contiguous(), values.contiguous(), scale=0.125), expected)
    finally:
        torch.set_num_threads(before)


def test_cross_keys_values_are_contiguous_and_equal_the_projections_views(tokenizer, pixels):
    model = model_for(tokenizer, True)
    block = model.decoder.transformer.h[0].crossattention
    with torch.inference_mode():
        memory = lean_decoding.encode(model, pixels[:2])
        keys, values = lean_decoding.cross_keys_values(block, memory)
        view_keys, view_values = block.c_attn(memory).split(block.split_size, dim=2)
    shape = (*view_keys.shape[:-1], -1, block.head_dim)
    assert keys.is_contiguous() and values.is_contiguous()
    assert torch.equal(keys, view_keys.view(shape).transpose(1, 2))
    assert torch.equal(values, view_values.view(shape).transpose(1, 2))


@pytest.fixture(scope="module")
def pair_registry(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("pair")
    base = builders.make_tiny_model(tokenizer, seed=21)
    for key, model in (("a", base), ("b", bench.fine_tuned_sibling(base, seed=22)),
                       ("c", builders.make_tiny_model(tokenizer, seed=23))):
        model.save_pretrained(folder / key)
        tokenizer.save_pretrained(folder / key)
        builders.make_processor().save_pretrained(folder / key)
    return {key: ModelSpec(key, key.upper(), str(folder / key)) for key in "abc"}


def spy_together(monkeypatch) -> list:
    groups = []
    real = lean_decoding.greedy_generate_together
    monkeypatch.setattr(lean_decoding, "greedy_generate_together",
                        lambda models, *a: groups.append(len(models)) or real(models, *a))
    return groups


def texts(runs):
    return {run.model_key: [r.raw_text for r in run.results] for run in runs}


def test_a_loaded_pair_is_captioned_together_with_the_captions_each_writes_alone(pair_registry, monkeypatch):
    settings = GREEDY["penalty, 2-grams, min length"]
    cache = ModelCache(pair_registry, LoadOptions(device="cpu"))
    captioner = Captioner(cache)
    groups = spy_together(monkeypatch)
    first = captioner.caption(PHOTOS, ["a", "b", "c"], settings)  # loads them one after another: each alone
    assert groups == [1, 1, 1]
    events, results = [], []
    groups.clear()
    again = captioner.caption(PHOTOS, ["a", "b", "c"], settings, on_result=lambda run: results.append(run.model_key),
                              on_progress=lambda e: events.append((e.stage, e.model_key)))
    assert groups == [2, 1]  # the pair together, the unrelated model alone
    assert texts(again) == texts(first)
    assert results == ["a", "b", "c"]
    assert events[:4] == [("captioning", "a"), ("captioning", "b"), ("done", "a"), ("done", "b")]
    assert all(run.ok and len(run.results) == len(PHOTOS) for run in again)


@pytest.mark.parametrize("settings", [PRESETS["balanced"], PRESETS["fast"].replace(start_with="a photo")],
                         ids=["beam", "start with"])
def test_a_pair_goes_alone_when_the_lean_loop_cannot_decode(pair_registry, settings, monkeypatch):
    cache = ModelCache(pair_registry, LoadOptions(device="cpu"))
    for key in "ab":
        cache.get(key)
    groups = spy_together(monkeypatch)
    runs = Captioner(cache).caption(PHOTOS[:1], ["a", "b"], settings)
    assert 2 not in groups and all(run.ok for run in runs)


def test_a_cache_of_one_model_never_holds_two(pair_registry, monkeypatch):
    cache = ModelCache(pair_registry, LoadOptions(device="cpu"), max_models=1)
    groups = spy_together(monkeypatch)
    for _ in range(2):
        runs = Captioner(cache).caption(PHOTOS[:1], ["a", "b"], GREEDY["forced length (the benchmark's)"])
        assert all(run.ok for run in runs)
    assert 2 not in groups


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_models_caption_in_their_precision_and_the_lean_loops_write_generates_captions(
        registry, dtype, monkeypatch):
    """LoadOptions.dtype (the GPU row's float16 and bfloat16; on CPU here): the weights are loaded in that
    precision, and the lean greedy and beam loops write the captions generate writes with them."""
    from igcap import beam_search

    calls = []
    for module, name in ((lean_decoding, "greedy_generate"), (beam_search, "beam_search")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    for settings in (PRESETS["fast"], PRESETS["balanced"]):
        runs = {}
        for lean in (False, True):
            cache = ModelCache(registry, LoadOptions(device="cpu", quantize=False, dtype=dtype, lean_decoding=lean))
            assert cache.get("m").input_dtype == getattr(torch, dtype)
            runs[lean] = Captioner(cache).caption(PHOTOS, ["m"], settings)[0]
        assert runs[True].ok and len(runs[True].results) == len(PHOTOS) * settings.num_variants
        assert [r.raw_text for r in runs[True].results] == [r.raw_text for r in runs[False].results]
    assert set(calls) == {"greedy_generate", "beam_search"}  # the lean loops did decode


def test_float_precision_defaults_to_float16_on_cuda_only_and_refuses_unknown_names():
    assert LoadOptions().float_dtype("cuda") == "float16"
    assert LoadOptions().float_dtype("cpu") == LoadOptions().float_dtype("mps") == "float32"
    assert LoadOptions(dtype="bfloat16").float_dtype("cuda") == "bfloat16"
    with pytest.raises(ValueError, match="float64"):
        LoadOptions(dtype="float64")
