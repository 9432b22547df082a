"""igcap.attention: the decoder's attention on one thread, so a caption is the same on any number of
threads (and so beside other models in the captioner's lanes)."""

import threading
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from igcap import attention, lean_decoding
from igcap.captioner import Captioner
from igcap.decoding import PRESETS, DecodingSettings
from igcap.light_model import DecoderConfig
from igcap.loading import LoadOptions, ModelCache
from igcap.registry import ModelSpec
from tests import builders

HEADS, HEAD_DIM, PATCHES = 12, 64, 197  # the full-size decoder's attention over the image


def on_threads(n, fn):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def one_token_cases(seed=0, rows_asked=(1, 4, attention.ONE_THREAD_ROWS)):
    """A decoding step's attention at full size: one new token per row over the image (197 keys) and over
    the caption so far (32), for one photo, a beam search's rows, a few photos."""
    g = torch.Generator().manual_seed(seed)
    for rows in rows_asked:
        for keys in (PATCHES, 32):
            q = torch.randn(rows, HEADS, 1, HEAD_DIM, generator=g)
            k, v = (torch.randn(rows, HEADS, keys, HEAD_DIM, generator=g) for _ in range(2))
            yield rows, keys, q, k, v


def test_the_decoders_attention_gives_the_same_bits_on_one_thread_and_on_two():
    """Fails with plain SDPA (the light models' attention before igcap.attention): its one-token path
    rounds differently on one thread and on two."""
    config = DecoderConfig(n_embd=768, n_layer=12, n_head=HEADS, n_inner=3072, n_positions=1024, vocab_size=50257,
                           layer_norm_epsilon=1e-5, activation_function="gelu_new", scale_attn_weights=True,
                           scale_attn_by_inverse_layer_idx=False)  # a light model's, GPT-2 small's
    attend = lean_decoding.attention_function(config)
    module = SimpleNamespace(scaling=HEAD_DIM ** -0.5)
    for rows, keys, q, k, v in one_token_cases():
        two = on_threads(2, lambda: attend(module, q, k, v))
        one = on_threads(1, lambda: attend(module, q, k, v))
        assert torch.equal(one, two), (rows, keys)
    assert on_threads(2, lambda: (attend(module, q, k, v), torch.get_num_threads())[1]) == 2  # set back after the call


def test_larger_batches_attend_on_every_thread():
    """Eight photos' attention pinned to one thread cost 18% of their captioning (docs/performance.md): a batch
    of more than ONE_THREAD_ROWS rows attends as plain SDPA does, on the threads it is given."""
    config = SimpleNamespace(_attn_implementation=attention.ONE_THREAD_SDPA)
    attend, plain = lean_decoding.attention_function(config), lean_decoding.attention_function(
        SimpleNamespace(_attn_implementation="sdpa"))
    module = SimpleNamespace(scaling=HEAD_DIM ** -0.5)
    for rows, keys, q, k, v in one_token_cases(rows_asked=(attention.ONE_THREAD_ROWS + 1, 8)):
        assert torch.equal(on_threads(2, lambda: attend(module, q, k, v)), on_threads(2, lambda: plain(module, q, k, v)))


def test_plain_sdpa_is_what_made_captions_depend_on_the_thread_count():
    """The premise, on this CPU: some one-token case differs between one and two threads with plain SDPA."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    differ = [(rows, keys) for rows, keys, q, k, v in one_token_cases(rows_asked=(1, 4, 8))
              if not torch.equal(on_threads(1, lambda: sdpa(q, k, v)), on_threads(2, lambda: sdpa(q, k, v)))]
    print("one-token cases that differ with plain SDPA:", differ)
    assert differ


@pytest.mark.parametrize("rows", [1, 8])
def test_the_image_encoders_attention_gives_the_same_bits_on_any_number_of_threads(rows):
    """Why only the decoder is pinned: 197 queries (ViT-base/16's patches and class token) take a path whose
    result does not depend on the threads."""
    g = torch.Generator().manual_seed(rows)
    q, k, v = (torch.randn(rows, HEADS, PATCHES, HEAD_DIM, generator=g) for _ in range(3))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    assert torch.equal(on_threads(1, lambda: sdpa(q, k, v)), on_threads(2, lambda: sdpa(q, k, v)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tokenizer = builders.make_tokenizer()
    path = tmp_path_factory.mktemp("attention") / "m"
    model = builders.make_tiny_model(tokenizer, seed=3)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    builders.make_processor().save_pretrained(path)
    return path


PHOTOS = [Image.new("RGB", (64, 48), c) for c in ("red", "navy", "olive")]


def test_models_the_engine_loads_attend_on_one_thread_and_generate_agrees_with_the_lean_loops(folder):
    registry = {"m": ModelSpec("m", "M", str(folder))}
    captions = {}
    for lean in (False, True):
        cache = ModelCache(registry, LoadOptions(device="cpu", quantize=False, lean_decoding=lean, threads=2))
        model = cache.get("m").model
        assert model.decoder.config._attn_implementation == attention.ONE_THREAD_SDPA
        assert model.encoder.config._attn_implementation == "sdpa"  # the encoder keeps both threads
        for name in ("fast", "balanced"):
            captions[lean, name] = [r.raw_text for r in Captioner(cache).caption(PHOTOS, ["m"], PRESETS[name])[0].results]
    assert captions[True, "fast"] == captions[False, "fast"] and captions[True, "balanced"] == captions[False, "balanced"]


def test_captions_are_the_same_on_one_thread_and_on_two(folder):
    registry = {"m": ModelSpec("m", "M", str(folder))}
    settings = DecodingSettings(strategy="greedy", num_beams=1, no_repeat_ngram_size=0, min_new_tokens=6,
                                max_new_tokens=6, drop_fragment=False)
    seen = {}
    for threads in (1, 2):
        cache = ModelCache(registry, LoadOptions(device="cpu", threads=threads))
        seen[threads] = [r.raw_text for r in Captioner(cache).caption(PHOTOS, ["m"], settings)[0].results]
    assert seen[1] == seen[2]


def test_other_attention_implementations_and_gpu_models_are_left_alone():
    tokenizer = builders.make_tokenizer()
    eager = builders.make_tiny_model(tokenizer)
    eager.decoder.config._attn_implementation = "eager"
    attention.use_one_thread_attention(eager)
    assert eager.decoder.config._attn_implementation == "eager"
    on_meta = builders.make_tiny_model(tokenizer).to("meta")  # stands for any device but the CPU
    attention.use_one_thread_attention(on_meta)
    assert on_meta.decoder.config._attn_implementation == "sdpa"
    attention.use_one_thread_attention(object())  # not a captioner: nothing to do


def test_registering_from_many_threads_at_once_registers_once_and_works():
    names = []
    workers = [threading.Thread(target=lambda: names.append(attention.register())) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert names == [attention.ONE_THREAD_SDPA] * 8
    from transformers import AttentionInterface

    assert AttentionInterface._global_mapping[attention.ONE_THREAD_SDPA] is attention.one_thread_sdpa_forward
