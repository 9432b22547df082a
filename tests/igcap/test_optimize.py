"""The CPU levers: int8 weights stay faithful, shared tensors are really shared and stay correct,
the lean loader gives the same model as the ordinary one, and the settings switch them."""

import dataclasses
import gc
import threading
from pathlib import Path

import pytest
import torch
from transformers import VisionEncoderDecoderModel
from transformers.pytorch_utils import Conv1D

from igcap import bench, optimize, threads
from igcap.config import ConfigError, Settings
from igcap.loading import LoadOptions, load_captioner
from igcap.registry import ModelSpec
from tests import builders

EOS = 50256


def tiny(tokenizer, seed=0, hidden=64):
    return builders.make_tiny_model(tokenizer, seed=seed, hidden=hidden)


def pixels(n=2, seed=0):
    return torch.randn(n, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


def logits(model, px, steps=5):
    """Decoder logits for a fixed prefix (teacher forcing), so two models compare position by position."""
    eos = model.generation_config.eos_token_id
    ids = torch.full((px.shape[0], steps), eos, dtype=torch.long)
    ids[:, 1:] = torch.arange(1, steps) * 7 % model.config.decoder.vocab_size
    with torch.inference_mode():
        return model(pixel_values=px, decoder_input_ids=ids).logits


def greedy(model, px, n=8):
    with torch.inference_mode():
        return model.generate(pixel_values=px, max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1)


def kinds(model):
    c = optimize.int8_classes()
    return {t: sum(isinstance(m, t) for m in model.modules())
            for t in (c.Int8Linear, c.Bf16Embedding, c.RescoredHead, Conv1D, torch.nn.Linear)}


# ---------------------------------------------------------------- int8

@pytest.mark.parametrize("layer", ["linear", "conv1d"])
def test_int8_linear_is_close_to_the_float_layer(layer):
    torch.manual_seed(0)
    float_layer = torch.nn.Linear(48, 80) if layer == "linear" else Conv1D(80, 48)
    torch.nn.init.normal_(float_layer.bias, std=0.5)
    model = torch.nn.Sequential(float_layer)
    x = torch.randn(3, 5, 48)  # (B, T, C): the decoder's shape
    expected = model(x).detach()
    optimize.quantize_modules(model)
    assert isinstance(model[0], optimize.int8_classes().Int8Linear)
    got = model(x)
    assert got.shape == expected.shape
    rel = (got - expected).norm() / expected.norm()
    assert rel < 0.03, f"int8 output strays {rel:.3f} from float"


def test_int8_product_is_the_dynamic_linear_and_leaves_torch_function_on():
    torch.manual_seed(0)
    packed = optimize.pack_int8(torch.randn(96, 64), torch.randn(96)).packed
    for x in (torch.randn(1, 1, 64), torch.randn(3, 7, 64) * 5):
        for reduce_range in (False, True):
            expected = torch.ops.quantized.linear_dynamic(x, packed, reduce_range)
            assert torch.equal(optimize.int8.int8_product(x, packed, reduce_range), expected)
    assert torch._C._is_torch_function_enabled()
    with pytest.raises(RuntimeError):  # a wrong input size: the op raises, and the switch is back on after it
        optimize.int8.int8_product(torch.randn(1, 1, 63), packed, False)
    assert torch._C._is_torch_function_enabled()


def test_int8_product_switches_torch_function_off_for_its_own_thread_only():
    """Sessions are threads: one thread's product must not switch __torch_function__ off for another, and
    products made at once give what each gives alone."""
    import threading

    torch.manual_seed(1)
    packed = optimize.pack_int8(torch.randn(256, 128), torch.randn(256)).packed
    inputs = [torch.randn(2, 3, 128) for _ in range(4)]
    alone = [torch.ops.quantized.linear_dynamic(x, packed, False) for x in inputs]
    stop, results, seen_off = threading.Event(), {}, []

    def work(i):
        while not stop.is_set():
            out = optimize.int8.int8_product(inputs[i], packed, False)
            if not torch.equal(out, alone[i]):
                results[i] = out
        results.setdefault(i, None)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for _ in range(20000):
        if not torch._C._is_torch_function_enabled():
            seen_off.append(1)
    stop.set()
    for w in workers:
        w.join()
    assert not seen_off
    assert results == {i: None for i in range(4)}


def test_rescored_head_ranks_like_the_bf16_weights_and_recomputes_the_top_logits():
    torch.manual_seed(0)
    weight = torch.randn(3000, 32) * 0.05
    x = torch.randn(2, 3, 32)
    head = optimize.rescored_head(weight)
    got = head(x)
    table = weight.bfloat16().float()
    exact = x @ table.T  # (B, T, V): float32 activations × bfloat16 weights
    assert got.shape == exact.shape
    assert torch.equal(got.argmax(-1), exact.argmax(-1))
    top = got.topk(optimize.HEAD_CANDIDATES, dim=-1)
    assert torch.allclose(top.values, exact.gather(-1, top.indices), atol=1e-5)
    others = got.scatter(-1, top.indices, float("-inf"))
    assert (others < top.values[..., -1:]).all()  # the rest stays below every recomputed logit


def test_bf16_embedding_looks_up_rows_as_float32():
    weight = torch.randn(100, 8)
    emb = optimize.int8_classes().Bf16Embedding(optimize.bf16_table(weight))
    ids = torch.tensor([[0, 99, 5]])
    out = emb(ids)
    assert out.dtype == torch.float32 and torch.equal(out, weight.bfloat16().float()[ids])


def test_quantize_swaps_every_projection_including_gpt2_conv1d_and_the_tied_head(tokenizer):
    model = tiny(tokenizer)
    float_bytes = optimize.model_nbytes(model)
    swapped = [m.weight for m in model.modules() if isinstance(m, (Conv1D, torch.nn.Linear))]
    swapped_bytes = sum(w.numel() * 4 for w in {id(w): w for w in swapped}.values())  # the head is the token table
    optimize.prepare_for_inference(model, quantize=True, pool=None)
    c = optimize.int8_classes()
    counts = kinds(model)
    assert counts[Conv1D] == 0 and counts[torch.nn.Linear] == 0
    # encoder q,k,v,o,fc1,fc2 and decoder c_attn,c_proj,q_attn,cross c_attn,cross c_proj,c_fc,mlp c_proj per layer,
    # and ViT's pooler where the encoder has one
    pooler = int(getattr(model.encoder, "pooler", None) is not None)
    assert counts[c.Int8Linear] == 2 * 6 + 2 * 7 + pooler
    assert isinstance(model.decoder.transformer.wte, c.Bf16Embedding)
    assert isinstance(model.decoder.lm_head, c.RescoredHead)
    assert model.decoder.lm_head.table is model.decoder.transformer.wte.table  # still tied: one bf16 table
    # int8 is a quarter of float32; with the bf16 token table beside the int8 head, over half is saved
    assert optimize.model_nbytes(model) < float_bytes - 0.5 * swapped_bytes


def test_quantized_model_writes_valid_captions_close_to_float(tokenizer):
    model, reference = tiny(tokenizer), tiny(tokenizer)
    optimize.prepare_for_inference(model, quantize=True)
    px = pixels()
    got, expected = logits(model, px), logits(reference, px)
    assert torch.corrcoef(torch.stack([got.flatten(), expected.flatten()]))[0, 1] > 0.99
    ids = greedy(model, px)
    assert ids.shape == (2, 9)
    assert ((ids >= 0) & (ids < len(tokenizer))).all()
    texts = tokenizer.batch_decode(ids[:, 1:], skip_special_tokens=True)
    assert all(isinstance(t, str) for t in texts)


# ---------------------------------------------------------------- sharing

@pytest.mark.parametrize("quantize", [False, True])
def test_pool_shares_a_siblings_identical_tensors_and_the_sibling_stays_exact(tokenizer, quantize):
    base = tiny(tokenizer, seed=1)
    sibling = bench.fine_tuned_sibling(base, seed=7)  # differs in the last block, ln_f and the tied embeddings
    expected_sibling = logits(optimize.prepare_for_inference(bench.fine_tuned_sibling(base, seed=7),
                                                             quantize=quantize), pixels())
    expected_base = logits(optimize.prepare_for_inference(tiny(tokenizer, seed=1), quantize=quantize), pixels())

    alone = [optimize.model_nbytes(optimize.prepare_for_inference(m, quantize=quantize))
             for m in (tiny(tokenizer, seed=1), bench.fine_tuned_sibling(base, seed=7))]
    pool = optimize.TensorPool()
    a = optimize.prepare_for_inference(base, quantize=quantize, pool=pool)
    b = optimize.prepare_for_inference(sibling, quantize=quantize, pool=pool)

    assert pool.saved_bytes > 0.5 * alone[1]
    assert optimize.models_nbytes([a, b]) == sum(alone) - pool.saved_bytes
    same = lambda m: (m.weight_int8 if quantize else m.weight)  # noqa: E731
    layer = (lambda m: m.encoder.encoder.layer[0].attention.attention.query) if hasattr(a.encoder, "encoder") else \
        (lambda m: m.encoder.layers[0].attention.q_proj)
    assert same(layer(a)) is same(layer(b))
    assert same(a.decoder.transformer.h[0].mlp.c_fc) is same(b.decoder.transformer.h[0].mlp.c_fc)
    assert same(a.decoder.transformer.h[-1].mlp.c_fc) is not same(b.decoder.transformer.h[-1].mlp.c_fc)
    assert torch.equal(logits(b, pixels()), expected_sibling)
    assert torch.equal(logits(a, pixels()), expected_base)  # loading the sibling changed nothing in the first


def test_tied_head_stays_tied_when_float_weights_are_shared(tokenizer):
    pool = optimize.TensorPool()
    model = optimize.prepare_for_inference(tiny(tokenizer), quantize=False, pool=pool)
    assert model.decoder.lm_head.weight is model.decoder.transformer.wte.weight


def test_pool_lets_go_of_tensors_when_the_models_are_gone(tokenizer):
    pool = optimize.TensorPool()
    models = [optimize.prepare_for_inference(tiny(tokenizer, seed=s), quantize=True, pool=pool) for s in (0, 1)]
    assert len(pool) > 0
    del models
    gc.collect()
    assert len(pool) == 0


# ---------------------------------------------------------------- lean loading

def test_lean_loading_gives_the_same_model_as_loading_then_quantizing(tiny_model_dir):
    lean = optimize.load_int8_lean(str(tiny_model_dir))
    ordinary = optimize.prepare_for_inference(VisionEncoderDecoderModel.from_pretrained(tiny_model_dir), quantize=True)
    assert not any(t.device.type == "meta" for t in [*lean.parameters(), *lean.buffers()])
    assert lean.config._attn_implementation == ordinary.config._attn_implementation
    px = pixels()
    assert torch.equal(logits(lean, px), logits(ordinary, px))
    assert torch.equal(greedy(lean, px), greedy(ordinary, px))
    assert optimize.model_nbytes(lean) == optimize.model_nbytes(ordinary)


def test_lean_loading_shares_through_the_pool(tmp_path, tokenizer):
    base = tiny(tokenizer, seed=3)
    base.save_pretrained(tmp_path / "a")
    bench.fine_tuned_sibling(base, seed=4).save_pretrained(tmp_path / "b")
    pool = optimize.TensorPool()
    a = optimize.load_int8_lean(str(tmp_path / "a"), pool=pool)
    b = optimize.load_int8_lean(str(tmp_path / "b"), pool=pool)
    alone = optimize.load_int8_lean(str(tmp_path / "b"))
    assert pool.saved_bytes > 0
    assert a.decoder.transformer.h[0].attn.c_attn.weight_int8 is b.decoder.transformer.h[0].attn.c_attn.weight_int8
    assert torch.equal(logits(b, pixels()), logits(alone, pixels()))


def test_lean_loading_declines_checkpoints_without_safetensors(tiny_model_dir, tmp_path):
    (tmp_path / "config.json").write_bytes((tiny_model_dir / "config.json").read_bytes())
    with pytest.raises(optimize.LeanLoadUnsupported):
        optimize.load_int8_lean(str(tmp_path))


# ---------------------------------------------------------------- the settings switch them

@pytest.mark.parametrize("quantize, expect_int8", [(None, True), (True, True), (False, False)])
def test_load_options_switch_int8_on_cpu(tiny_model_dir, quantize, expect_int8):
    loaded = load_captioner(ModelSpec("t", "T", str(tiny_model_dir)), LoadOptions(device="cpu", quantize=quantize))
    assert loaded.quantized is expect_int8
    assert any(isinstance(m, optimize.int8_classes().Int8Linear) for m in loaded.model.modules()) is expect_int8


@pytest.mark.parametrize("value, expected", [("0", False), ("1", True), ("auto", None)])
def test_igcap_quantize_environment_variable(value, expected):
    assert LoadOptions.from_settings(Settings.from_env({"IGCAP_QUANTIZE": value})).quantize is expected


# ---------------------------------------------------------------- threads

@pytest.mark.parametrize("setting, expected", [("auto", None), ("", None), (" Auto ", None), ("2", 2), ("1", 1),
                                               ("3", 3), ("0", 1)])
def test_threads_setting_is_auto_or_a_number(setting, expected):
    assert threads.parse_threads(setting) == expected
    assert Settings.from_env({"IGCAP_THREADS": setting}).threads == expected


@pytest.mark.parametrize("fixed, expected", [(None, 2), (1, 1), (3, 3)])
def test_threads_use_every_core_unless_fixed(fixed, expected):
    assert threads.caption_threads(fixed, cores=2) == expected


def test_threads_setting_must_be_a_number():
    with pytest.raises(ValueError, match="IGCAP_THREADS"):
        threads.parse_threads("many")
    with pytest.raises(ConfigError, match="IGCAP_THREADS"):
        Settings.from_env({"IGCAP_THREADS": "many"})


def _new_thread_count() -> int:
    """torch threads a thread started now runs on (a new Streamlit script run, a model load, the warm-up)."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.skipif(threads.allowed_cores() < 2, reason="one core: every thread runs on one anyway")
def test_one_thread_blocks_ending_out_of_order_leave_new_threads_on_the_full_count():
    """torch.set_num_threads sets the calling thread's count and the count every new thread starts with. Two
    lanes each on one thread: the second entered when the first had set 1, so its "before" was 1, and ending
    last it set 1 for every thread started after (script runs, loads, the warm-up ran on one thread for good)."""
    full = threads.process_threads()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with threads.torch_threads(1):
            first_in.set()
            assert second_in.wait(10)
        first_out.set()

    def second():
        assert first_in.wait(10)
        with threads.torch_threads(1):
            second_in.set()
            assert first_out.wait(10)
            assert torch.get_num_threads() == 1

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert full > 1 and _new_thread_count() == full


def test_a_block_inside_another_gives_the_outer_count_back():
    with threads.torch_threads(3):
        with threads.torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == threads.process_threads()


@pytest.mark.parametrize("quantize", ["1", "0"])
def test_generate_runs_on_the_igcap_threads_setting_and_restores_them(tiny_model_dir, quantize, monkeypatch):
    """IGCAP_THREADS applies with int8 weights and without (it used to do nothing with IGCAP_QUANTIZE=0)."""
    before = torch.get_num_threads()
    wanted = before + 1
    monkeypatch.setenv("IGCAP_THREADS", str(wanted))
    monkeypatch.setenv("IGCAP_QUANTIZE", quantize)
    loaded = load_captioner(ModelSpec("t", "T", str(tiny_model_dir)),
                            dataclasses.replace(LoadOptions.from_settings(Settings.from_env()), device="cpu"))
    seen = []
    decoder_forward = loaded.model.decoder.forward
    monkeypatch.setattr(loaded.model.decoder, "forward",
                        lambda *a, **k: seen.append(torch.get_num_threads()) or decoder_forward(*a, **k))
    greedy(loaded.model, pixels(3))
    assert seen and set(seen) == {wanted} and torch.get_num_threads() == before


# ---------------------------------------------------------------- encoder outputs reused across a shared encoder

def test_siblings_sharing_an_encoder_reuse_its_output_and_stay_exact(tokenizer):
    base = tiny(tokenizer, seed=5)
    expected = logits(optimize.prepare_for_inference(bench.fine_tuned_sibling(base, seed=6), quantize=True), pixels())
    pool = optimize.TensorPool()
    a = optimize.prepare_for_inference(base, quantize=True, pool=pool)
    b = optimize.prepare_for_inference(bench.fine_tuned_sibling(tiny(tokenizer, seed=5), seed=6), quantize=True,
                                       pool=pool)
    other = optimize.prepare_for_inference(tiny(tokenizer, seed=9), quantize=True, pool=pool)
    optimize.ENCODER_MEMO.clear()
    hits = optimize.ENCODER_MEMO.hits
    greedy(a, pixels())
    greedy(b, pixels())  # same encoder, same photos: reused
    assert optimize.ENCODER_MEMO.hits == hits + 1
    greedy(other, pixels())  # another encoder: computed
    greedy(b, pixels(seed=1))  # other photos: computed
    assert optimize.ENCODER_MEMO.hits == hits + 1
    optimize.ENCODER_MEMO.clear()
    greedy(a, pixels())
    with torch.inference_mode():
        assert torch.equal(b.generate(pixel_values=pixels(), max_new_tokens=4, min_new_tokens=4),
                           optimize.prepare_for_inference(bench.fine_tuned_sibling(tiny(tokenizer, seed=5), seed=6),
                                                          quantize=True).generate(pixel_values=pixels(),
                                                                                  max_new_tokens=4, min_new_tokens=4))
    assert torch.equal(logits(b, pixels()), expected)


def test_lean_loaded_siblings_reuse_the_shared_encoders_output(tmp_path, tokenizer):
    base = tiny(tokenizer, seed=3)
    base.save_pretrained(tmp_path / "a")
    bench.fine_tuned_sibling(base, seed=4).save_pretrained(tmp_path / "b")
    pool = optimize.TensorPool()
    a, b = (optimize.load_int8_lean(str(tmp_path / k), pool=pool) for k in "ab")
    alone = greedy(optimize.load_int8_lean(str(tmp_path / "b")), pixels())
    optimize.ENCODER_MEMO.clear()
    hits = optimize.ENCODER_MEMO.hits
    greedy(a, pixels())
    assert torch.equal(greedy(b, pixels()), alone)
    assert optimize.ENCODER_MEMO.hits == hits + 1


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
def test_quantizing_a_loaded_model_lets_go_of_the_mapped_checkpoint(tiny_model_dir, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    model = VisionEncoderDecoderModel.from_pretrained(folder)
    mapped = lambda: str(folder / "model.safetensors") in Path("/proc/self/maps").read_text()  # noqa: E731
    assert mapped()  # from_pretrained maps the file instead of copying it
    optimize.prepare_for_inference(model, quantize=True)
    gc.collect()
    assert not mapped()  # nothing (biases inside the packed int8 matrices included) still points into it


def test_the_count_put_back_is_the_processs_own_so_omp_num_threads_holds():
    """Ending the outermost block put every allowed core back, so after the first caption a process started
    with OMP_NUM_THREADS=1 ran every later thread on all cores."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import threading, torch
        from igcap.threads import torch_threads
        with torch_threads(2):
            pass
        seen = []
        t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        t.start(); t.join()
        print(torch.get_num_threads(), seen[0])
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1"]
