"""The int8 cache: the first int8 load writes an entry, later loads build the model from it without
reading the float checkpoint and give bit-identical outputs; damaged, truncated and stale entries are
detected and rebuilt, never used; the folder stays under its size bound."""

import json
import logging
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from igcap import int8_cache, optimize
from igcap.config import ConfigError, Settings
from igcap.int8_cache import Int8CacheOptions, entry_key, entry_name, read_header
from igcap.loading import LoadOptions, load_captioner
from igcap.optimize.file_table import FileTable
from igcap.registry import ModelSpec, load_registry
from tests import builders


def load(source, cache_dir, pool=None, max_mb=64):
    options = LoadOptions(device="cpu", quantize=True, int8_cache=Int8CacheOptions(cache_dir, max_mb))
    return load_captioner(ModelSpec("m", "m", str(source)), options, pool).model


def outputs(model):
    """Greedy ids for two fixed images, and the logits of a forward pass over them."""
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ids = model.generate(pixel_values=pixels, max_new_tokens=6, min_new_tokens=6, num_beams=1, do_sample=False)
        logits = model(pixel_values=pixels, decoder_input_ids=ids).logits
    return ids, logits


def same(a, b) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def entries(cache_dir):
    return sorted(p for p in cache_dir.glob("*") if p.is_file())


@pytest.fixture
def model_dir(tmp_path):
    return builders.save_tiny_model(tmp_path / "model", seed=3)


def refuse_checkpoint_reads(monkeypatch) -> list:
    """From now on, reading the float checkpoint (lean or ordinary) is recorded and fails."""
    from transformers import VisionEncoderDecoderModel

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the float checkpoint was read")

    monkeypatch.setattr(optimize, "load_int8_lean", refuse)
    monkeypatch.setattr(VisionEncoderDecoderModel, "from_pretrained", refuse)
    return calls


def damage_in_place(path):
    """Overwrite a file with other bytes of the same size, keeping its modification time."""
    stat = path.stat()
    path.write_bytes(b"\x00" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_the_second_load_reads_the_entry_not_the_float_weights(model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load(model_dir, cache)
    [entry] = entries(cache)
    from safetensors import safe_open

    with safe_open(entry, "pt") as f:  # a valid safetensors file, with the key inside
        meta = json.loads(f.metadata()[int8_cache.METADATA_KEY])
        assert meta["key"]["source"] == str(model_dir) and meta["format"] == int8_cache.FORMAT_VERSION
        assert {f.get_tensor(n).dtype for n in f.keys()} >= {torch.int8, torch.bfloat16, torch.float64}
    expected = outputs(first)
    # the float weights become unreadable garbage of the same size and time: the entry's key still matches
    damage_in_place(model_dir / "model.safetensors")
    calls = refuse_checkpoint_reads(monkeypatch)
    second = load(model_dir, cache)
    assert calls == []
    assert same(outputs(second), expected)
    classes = optimize.int8_classes()
    kinds = {type(m) for m in second.modules()}
    assert {classes.Int8Linear, classes.RescoredHead, classes.Bf16Embedding} <= kinds
    assert second.decoder.lm_head.table is second.decoder.transformer.wte.table  # still tied


def test_hub_ids_are_cached_by_their_snapshot(hub_cache, tmp_path, monkeypatch):
    spec = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path)}))["vit-gpt2-last-block"]
    options = LoadOptions(device="cpu", quantize=True, int8_cache=Int8CacheOptions(tmp_path / "cache"))
    first = load_captioner(spec, options).model
    [entry] = entries(tmp_path / "cache")
    _, meta, _ = read_header(entry)
    assert meta["key"]["commit"] == "0" * 40 and meta["key"]["source"] == spec.source
    calls = refuse_checkpoint_reads(monkeypatch)
    assert same(outputs(load_captioner(spec, options).model), outputs(first))
    assert calls == []


ASKED = "config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"
WEIGHT_LAYOUTS = {  # the repo's weight files → what the key asks the hub for, and what it names
    "safetensors and a .bin": (["model.safetensors", "pytorch_model.bin"], ASKED[:2], ["model.safetensors"]),
    "sharded safetensors and a .bin": (["model.safetensors.index.json", "pytorch_model.bin"],
                                       [*ASKED[:3], "shard.safetensors"],
                                       ["model.safetensors.index.json", "shard.safetensors"]),
    "a .bin alone": (["pytorch_model.bin"], ASKED, ["pytorch_model.bin"]),
}


@pytest.mark.parametrize("layout", list(WEIGHT_LAYOUTS), ids=list(WEIGHT_LAYOUTS))
def test_a_hub_key_asks_for_the_weight_files_in_transformers_order_and_stops_at_the_first(tmp_path, monkeypatch,
                                                                                          layout):
    """A repo that ships safetensors and a pytorch_model.bin: the key needs the file transformers reads (the
    first of model.safetensors, its index, pytorch_model.bin), never a download (or a request) of the others."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    present, asked, named = WEIGHT_LAYOUTS[layout]
    snapshot = tmp_path / "models--org--repo" / "snapshots" / ("1" * 40)
    snapshot.mkdir(parents=True)
    for name in ["config.json", "shard.safetensors", *present]:
        index = {"weight_map": {"a": "shard.safetensors"}}
        (snapshot / name).write_text(json.dumps(index) if "index" in name else name)
    calls = []

    def download(repo_id, filename, revision=None, **kwargs):  # the hub, as a spy: nothing leaves the process
        calls.append(filename)
        if not (snapshot / filename).is_file():
            raise LocalEntryNotFoundError(f"{filename} is not in {repo_id}")
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    key = entry_key("org/repo", None)
    assert calls == list(asked)
    assert [name for name, *_ in key["weights"]] == named and key["commit"] == "1" * 40


def test_a_local_key_names_only_the_weight_file_transformers_reads(model_dir):
    before = entry_key(str(model_dir), None)
    (model_dir / "pytorch_model.bin").write_bytes(b"an old checkpoint beside the safetensors")
    assert entry_key(str(model_dir), None) == before  # what is read did not change: the same entry


def _flip_a_weight_byte(path):
    header, _, start = read_header(path)
    info = next(i for i in header.values() if i["dtype"] == "I8")
    offset = start + info["data_offsets"][0] + 5
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 1000)


def _garbage_header(path):
    with open(path, "r+b") as f:
        f.seek(8)
        f.write(b"{not json")


def _empty(path):
    path.write_bytes(b"")


def _same_length_header_edit(old: bytes, new: bytes):
    """A one-token change of the header that keeps it valid JSON and the same length (what a single bad byte
    of a recipe or a module path does): the tensors' own checksums do not cover it."""
    def damage(path):
        data = path.read_bytes()
        assert data.count(old) >= 1 and len(old) == len(new)
        path.write_bytes(data.replace(old, new, 1))
    damage.__name__ = f"header {old.decode()} -> {new.decode()}"
    return damage


@pytest.mark.parametrize("damage", [_flip_a_weight_byte, _truncate, _garbage_header, _empty,
                                    # the head's candidates 16 -> 1: it loaded and gave other captions
                                    _same_length_header_edit(b'\\"candidates\\": 16', b'\\"candidates\\":  1'),
                                    # a module path "h.0" -> "hy0": every load failed and the entry stayed
                                    _same_length_header_edit(b".h.0.", b".hy0.")])
def test_a_damaged_entry_is_detected_and_rebuilt_never_used(model_dir, tmp_path, damage, caplog):
    cache = tmp_path / "cache"
    expected = outputs(load(model_dir, cache))
    [entry] = entries(cache)
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="igcap.int8_cache"):
        rebuilt = load(model_dir, cache)
    assert "ignoring" in caplog.text and "rebuilding" in caplog.text
    assert same(outputs(rebuilt), expected)
    [again] = entries(cache)  # written afresh, whole
    assert again == entry and read_header(again)


def test_an_entry_for_other_weights_in_the_place_of_this_models_is_rejected(model_dir, tmp_path, caplog):
    cache = tmp_path / "cache"
    other = builders.save_tiny_model(tmp_path / "other", seed=4)
    load(other, cache)
    [foreign] = entries(cache)
    fresh = outputs(load(model_dir, tmp_path / "elsewhere"))
    shutil.copy(foreign, cache / entry_name(entry_key(str(model_dir), None)))  # as if a hash collided
    with caplog.at_level(logging.WARNING, logger="igcap.int8_cache"):
        got = outputs(load(model_dir, cache))
    assert "stale" in caplog.text
    assert same(got, fresh)


def test_weights_that_change_while_they_are_read_are_not_kept_under_the_new_files_key(model_dir, tmp_path,
                                                                                      monkeypatch):
    """`igcap train` or `demo-models` rewrote a folder while the app quantized it: the entry was keyed by the
    files as they were after the load, so later starts served the old model for the new files."""
    from igcap import loading

    cache = tmp_path / "cache"
    real = loading._quantized_from_checkpoint

    def read_then_the_folder_changes(spec, pool):
        model = real(spec, pool)  # the seed-3 weights
        builders.save_tiny_model(model_dir, seed=5)  # meanwhile the folder gets new ones
        return model

    monkeypatch.setattr(loading, "_quantized_from_checkpoint", read_then_the_folder_changes)
    load(model_dir, cache)
    monkeypatch.setattr(loading, "_quantized_from_checkpoint", real)
    assert entries(cache) == []  # nothing kept: the files changed during the load
    expected = outputs(load(model_dir, tmp_path / "elsewhere"))
    assert same(outputs(load(model_dir, cache)), expected)


def test_changed_weights_in_a_local_folder_are_not_served_from_the_old_entry(model_dir, tmp_path):
    cache = tmp_path / "cache"
    before = outputs(load(model_dir, cache))
    builders.save_tiny_model(model_dir, seed=5)  # the folder now holds other weights
    expected = outputs(load(model_dir, tmp_path / "elsewhere"))
    after = outputs(load(model_dir, cache))
    assert same(after, expected) and not same(after, before)
    assert len(entries(cache)) == 2  # the old entry waits for eviction


def test_a_format_version_change_makes_old_entries_stale(model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    load(model_dir, cache)
    monkeypatch.setattr(int8_cache, "FORMAT_VERSION", int8_cache.FORMAT_VERSION + 1)
    calls = []
    lean = optimize.load_int8_lean
    monkeypatch.setattr(optimize, "load_int8_lean", lambda *a, **k: calls.append(1) or lean(*a, **k))
    load(model_dir, cache)
    assert calls == [1]
    assert {read_header(p)[1]["format"] for p in entries(cache)} == {int8_cache.FORMAT_VERSION - 1,
                                                                     int8_cache.FORMAT_VERSION}


def test_entries_are_evicted_least_recently_used_first(tmp_path):
    cache = tmp_path / "cache"
    models = {name: builders.save_tiny_model(tmp_path / name, seed=seed) for seed, name in enumerate("abc")}
    load(models["a"], cache)
    size = entries(cache)[0].stat().st_size
    bound = 2.5 * size / 2**20  # room for two entries
    names = {}
    for name in ("b", "a", "c"):  # "a" is used again after "b" was written: "b" is the least recently used
        load(models[name], cache, max_mb=bound)
        names[name] = entry_name(entry_key(str(models[name]), None))
    assert sorted(p.name for p in entries(cache)) == sorted([names["a"], names["c"]])


def test_a_cache_too_small_for_one_entry_keeps_nothing_and_the_model_still_loads(model_dir, tmp_path):
    model = load(model_dir, tmp_path / "cache", max_mb=0.01)
    assert entries(tmp_path / "cache") == [] and outputs(model)


def test_a_write_that_fails_midway_leaves_nothing_behind(model_dir, tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"
    calls = {"n": 0}
    crc32 = int8_cache.zlib.crc32

    def failing(data, *rest):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return crc32(data, *rest)

    monkeypatch.setattr(int8_cache.zlib, "crc32", failing)
    with caplog.at_level(logging.WARNING, logger="igcap.int8_cache"):
        model = load(model_dir, cache)
    assert "No space left" in caplog.text
    assert list(cache.iterdir()) == []  # neither an entry nor a temporary file
    monkeypatch.undo()
    assert same(outputs(load(model_dir, cache)), outputs(model))


def test_loads_racing_to_write_the_same_entry_all_succeed_and_leave_one_whole_entry(model_dir, tmp_path):
    cache = tmp_path / "cache"
    results, errors = [], []

    def worker():
        try:
            results.append(outputs(load(model_dir, cache)))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4
    assert all(same(r, results[0]) for r in results)
    [entry] = entries(cache)
    assert not list(cache.glob(".*.tmp")) and read_header(entry)


def test_cached_siblings_share_what_they_hold_identically(tmp_path, tokenizer):
    from igcap.bench import fine_tuned_sibling

    model = builders.make_tiny_model(tokenizer, seed=7)
    a, b = tmp_path / "a", tmp_path / "b"
    for path, m in ((a, model), (b, fine_tuned_sibling(model, seed=8))):
        m.save_pretrained(path)
        tokenizer.save_pretrained(path)
        builders.make_processor().save_pretrained(path)
    cache = tmp_path / "cache"
    fresh_pool = optimize.TensorPool()
    fresh = [load(p, cache, fresh_pool) for p in (a, b)]
    cached_pool = optimize.TensorPool()
    cached = [load(p, cache, cached_pool) for p in (a, b)]
    assert cached_pool.hits > 0
    together = optimize.models_nbytes(fresh)
    assert together < 2 * optimize.model_nbytes(fresh[0])
    # the cached models hold the same, but their token tables, which stay in the entries' files
    in_files = {id(m.table): m.table.nbytes for c in cached for m in c.modules() if isinstance(getattr(m, "table", None), FileTable)}
    assert len(in_files) == 2 and optimize.models_nbytes(cached) == together - sum(in_files.values())
    for f, c in zip(fresh, cached):
        assert same(outputs(f), outputs(c))
    # a cached model also shares with a freshly quantized one loaded beside it through the same pool
    mixed_pool = optimize.TensorPool()
    mixed = [load(a, cache, mixed_pool), load(b, tmp_path / "no-cache", mixed_pool)]
    assert isinstance(mixed[0].decoder.transformer.wte.table, FileTable)  # the cached one's table, in its file
    assert optimize.models_nbytes(mixed) == together - mixed[0].decoder.transformer.wte.table.nbytes


def test_settings_place_and_bound_the_cache(tmp_path):
    s = Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path)})
    assert s.int8_cache_folder == tmp_path / "int8-cache" and s.int8_cache_mb == int8_cache.DEFAULT_MAX_MB
    s = Settings.from_env({"IGCAP_INT8_CACHE_DIR": str(tmp_path / "x"), "IGCAP_INT8_CACHE_MB": "0"})
    assert s.int8_cache_folder == tmp_path / "x" and not LoadOptions.from_settings(s).int8_cache.enabled
    with pytest.raises(ConfigError, match="IGCAP_INT8_CACHE_MB"):
        Settings.from_env({"IGCAP_INT8_CACHE_MB": "-1"})


def test_a_switched_off_cache_writes_nothing(model_dir, tmp_path):
    load(model_dir, tmp_path / "cache", max_mb=0)
    assert not (tmp_path / "cache").exists()


def test_a_cached_load_packs_its_matrices_on_first_use_or_in_the_background_once_each(model_dir, tmp_path,
                                                                                     monkeypatch):
    """Packing (most of a cached load's cost) is left out of the load: the values are read and checked
    then, each matrix is packed once, by whichever comes first, its first use or the background packer;
    the outputs are bit-identical to the model that wrote the entry, however many threads ask at once."""
    cache = tmp_path / "cache"
    expected = outputs(load(model_dir, cache))
    calls = []
    prepack = int8_cache._prepack
    monkeypatch.setattr(int8_cache, "_prepack", lambda *a: calls.append(1) or prepack(*a))
    monkeypatch.setattr(optimize.BACKGROUND_PACKER, "add", lambda matrices: None)  # no background packing
    second = load(model_dir, cache)
    matrices = {id(m.weight_int8): m.weight_int8 for m in second.modules() if hasattr(m, "weight_int8")}
    assert calls == [] and not any(m.is_packed for m in matrices.values())
    results = []
    threads = [threading.Thread(target=lambda: results.append(outputs(second))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(same(r, expected) for r in results)
    assert len(calls) == len(matrices) and all(m.is_packed for m in matrices.values())
    monkeypatch.undo()
    third = load(model_dir, cache)  # the background packer packs everything without being asked
    assert optimize.BACKGROUND_PACKER.wait(timeout=60)
    assert all(m.weight_int8.is_packed for m in third.modules() if hasattr(m, "weight_int8"))
    assert same(outputs(third), expected)


def wte(model):
    return model.decoder.transformer.wte


def test_a_cached_models_token_table_stays_in_its_file_and_gives_the_same_outputs(model_dir, tmp_path):
    cache = tmp_path / "cache"
    fresh = load(model_dir, cache)  # quantized now: its table in memory
    cached = load(model_dir, cache)
    assert not isinstance(wte(fresh).table, FileTable) and isinstance(wte(cached).table, FileTable)
    assert cached.decoder.lm_head.table is wte(cached).table  # tied: one table for lookup and rescoring
    assert torch.equal(wte(cached).table.materialize(), wte(fresh).table)
    assert same(outputs(cached), outputs(fresh))


def test_a_model_reading_its_table_from_the_file_survives_eviction_and_rebuilding_of_its_entry(model_dir, tmp_path):
    cache = tmp_path / "cache"
    expected = outputs(load(model_dir, cache))
    cached = load(model_dir, cache)
    [entry] = entries(cache)
    entry.unlink()  # evicted while the model is loaded
    assert same(outputs(cached), expected)
    load(model_dir, cache)  # rebuilt from the checkpoint: a new file renamed into the same place
    [again] = entries(cache)
    assert again == entry
    other = builders.save_tiny_model(tmp_path / "other", seed=4)
    os.replace(next(iter(entries_of(other, tmp_path / "other-cache"))), entry)  # replaced by other bytes
    assert same(outputs(cached), expected)


def entries_of(source, cache_dir):
    load(source, cache_dir)
    return entries(cache_dir)


def test_a_model_loaded_from_the_cache_can_be_written_as_an_entry_again(model_dir, tmp_path):
    cache = tmp_path / "cache"
    expected = outputs(load(model_dir, cache))
    cached = load(model_dir, cache)
    key = {"copy": 1}
    int8_cache.write_entry(tmp_path / "copy.safetensors", key, cached)  # its table streamed from the file
    again = int8_cache.read_entry(tmp_path / "copy.safetensors", key, str(model_dir), None)
    assert same(outputs(again), expected)


def test_writing_an_entry_unpacks_each_int8_matrix_once_and_writes_what_unpacking_gives(model_dir, tmp_path,
                                                                                       monkeypatch):
    """The first load after a wake writes the entry while the person waits; unpacking a matrix (about 6 ms
    for 768 × 3072 on an AVX2 CPU) was done four times per matrix: to check it, and once each for its
    values, scales and bias (3.6 of a full-size model's 13 s load). Its scales and bias are now kept from
    its quantization: one unpack per matrix, for its values, and the same bytes as learning all by unpacking."""
    pool = optimize.TensorPool()  # as the app loads (its keys name the matrices; without one, a key is hashed)
    model = load(model_dir, tmp_path / "cache", pool)
    matrices = {id(m.weight_int8): m.weight_int8 for m in model.modules() if hasattr(m, "weight_int8")}
    assert matrices and all(m.parts is not None for m in matrices.values())
    calls = []
    unpack = torch.ops.quantized.linear_unpack
    monkeypatch.setattr(torch.ops.quantized, "linear_unpack", lambda p: calls.append(1) or unpack(p))
    int8_cache.write_entry(tmp_path / "kept.safetensors", {"k": 1}, model, pool)
    assert len(calls) == len(matrices)
    for m in matrices.values():
        m.parts = None  # as a matrix made elsewhere: everything learnt by unpacking
    int8_cache.write_entry(tmp_path / "unpacked.safetensors", {"k": 1}, model, pool)
    assert (tmp_path / "kept.safetensors").read_bytes() == (tmp_path / "unpacked.safetensors").read_bytes()


def test_entries_written_from_several_threads_at_once_equal_those_written_one_at_a_time(tmp_path, tokenizer):
    """Sessions load (and so write) at once, and a published pair shares its matrices, their Int8Parts
    included, through one pool: six writers on two sharing siblings, each entry byte for byte the one
    written alone."""
    from igcap.bench import fine_tuned_sibling

    model = builders.make_tiny_model(tokenizer, seed=11)
    folders = [tmp_path / "a", tmp_path / "b"]
    for path, m in zip(folders, (model, fine_tuned_sibling(model, seed=12))):
        m.save_pretrained(path)
        tokenizer.save_pretrained(path)
        builders.make_processor().save_pretrained(path)
    pool = optimize.TensorPool()
    models = [load(f, tmp_path / "cache", pool) for f in folders]
    assert pool.hits > 0  # the premise: the siblings share matrices
    alone = {}
    for i, m in enumerate(models):
        int8_cache.write_entry(tmp_path / f"alone-{i}.safetensors", {"k": i}, m, pool)
        alone[i] = (tmp_path / f"alone-{i}.safetensors").read_bytes()
    errors = []

    def write(n: int):
        try:
            int8_cache.write_entry(tmp_path / f"together-{n}.safetensors", {"k": n % 2}, models[n % 2], pool)
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all((tmp_path / f"together-{n}.safetensors").read_bytes() == alone[n % 2] for n in range(6))


def test_a_damaged_token_table_is_found_before_the_model_exists(model_dir, tmp_path, caplog):
    cache = tmp_path / "cache"
    expected = outputs(load(model_dir, cache))
    [entry] = entries(cache)
    header, meta, start = read_header(entry)
    recipe = json.loads(json.dumps(meta["recipe"]))
    name = next(iter(recipe["embeddings"].values()))["table"]["name"]
    offset = start + header[name]["data_offsets"][0] + 100
    with open(entry, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    with caplog.at_level(logging.WARNING, logger="igcap.int8_cache"):
        rebuilt = load(model_dir, cache)
    assert "fails its checksum" in caplog.text
    assert same(outputs(rebuilt), expected)


EXIT_WHILE_PACKING = """
import time
import torch
from igcap.optimize.int8 import PackedInt8, pack_int8, pack_in_background

weights = [torch.randn(3072, 768) for _ in range(16)]
matrices = [PackedInt8(None, w.numel(), make=lambda w=w: pack_int8(w).packed) for w in weights]
pack_in_background(matrices)
while not matrices[-1].is_packed:  # the packer is at work (it takes the last first)
    time.sleep(0.001)
assert not all(m.is_packed for m in matrices), "all packed before the exit: nothing to test"
print("exiting", flush=True)
"""


def test_a_process_that_exits_while_the_background_packer_works_exits_cleanly(tmp_path):
    """A daemon thread still inside torch's packing when the interpreter shut down aborted the process
    ("terminate called without an active exception", exit status 134: a command or app that had just
    loaded models from the int8 cache and ended). The packer now stops at exit after the matrix in hand."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", EXIT_WHILE_PACKING], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert "exiting" in done.stdout, done.stderr
    assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr
