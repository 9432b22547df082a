"""The benchmark's machinery: the checkpoints it builds, its options, and a --quick run end to end
(JSON schema, both paths generating the same number of tokens). Timings are printed, never asserted."""

import json
import sys

import pytest
import torch

from igcap import bench
from igcap.cli import main


def test_real_vocab_tokenizer_has_gpt2_sizes_and_decodes_every_id():
    tok = bench.real_vocab_tokenizer()
    assert len(tok) == 50257
    assert tok.eos_token_id == 50256 and tok.convert_ids_to_tokens(50256) == "<|endoftext|>"
    text = tok.decode(list(range(0, 50256, 97)))
    assert isinstance(text, str) and text
    assert tok.decode(tok("hello world").input_ids) == "hello world"


def test_published_like_sibling_differs_only_in_the_last_block_final_norm_and_embeddings():
    model = bench.tiny_model(seed=0, vocab=300)
    sibling = bench.fine_tuned_sibling(model, seed=1)
    n_layers = len(model.decoder.transformer.h)
    trained = (f"decoder.transformer.h.{n_layers - 1}.", "decoder.transformer.ln_f.", "decoder.transformer.wte.")
    mine, theirs = dict(model.named_parameters()), dict(sibling.named_parameters())
    for name, p in mine.items():
        assert torch.equal(p, theirs[name]) != name.startswith(trained), name


def test_bench_photos_are_deterministic():
    a, b = bench.bench_photos(2), bench.bench_photos(2)
    assert [p.tobytes() for p in a] == [p.tobytes() for p in b]
    assert a[0].size == bench.PHOTO_SIZE and a[0].tobytes() != a[1].tobytes()


@pytest.mark.parametrize("kwargs", [{"tokens": 0}, {"repeats": 0}, {"sets": ("nope",)}, {"sets": ()}])
def test_options_refuse_impossible_values(kwargs):
    with pytest.raises(ValueError):
        bench.BenchOptions(**kwargs)


def test_each_lever_changes_only_its_own_load_options():
    """A lever variant is the engine as users get it with one lever changed: light models and lean decoding
    stay on (the variants once built their options afresh, so every one of them loaded transformers models
    while the default loaded light ones, and their figures did not compare)."""
    from igcap.config import Settings
    from igcap.loading import LoadOptions

    base = LoadOptions.from_settings(Settings.from_env())
    assert base.light and base.lean_decoding and base.int8_cache is not None
    for variant in bench.LEVER_VARIANTS:
        options = variant.load_options(base)
        assert (options.light, options.lean_decoding, options.device) == (base.light, base.lean_decoding, base.device)
        expected_cache = base.int8_cache if variant.int8_cache else None
        assert options.int8_cache == expected_cache, variant.name
        assert options.quantize == (base.quantize if variant.quantize is None else variant.quantize), variant.name
        assert options.share_weights == variant.share_weights and options.threads == (variant.threads or base.threads)
    assert bench.EngineVariant().load_options(base) == base


def test_cli_reports_a_bad_set_without_a_traceback(capsys):
    assert main(["bench", "--sets", "everything"]) == 2
    assert "--sets" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_writes_the_issue_schema_and_both_paths_do_the_same_work(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--sets", "published_like", "--cache", str(tmp_path / "ckpt"),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "published_like" in printed and "speedup" in printed
    result = json.loads(out.read_text())
    assert result["machine"]["cores"] >= 1 and result["tokens_per_caption"] == 4
    for scenario in ("one_photo", "eight_photos", "cold", "load"):  # load: the four models' load times
        entry = result["published_like"][scenario]
        for path in ("original", "igcap"):
            assert entry[path]["seconds"] > 0 and entry[path]["peak_rss_mb"] > 50
            assert entry[path]["peak_source"] == "VmHWM"
        assert entry["speedup"] == pytest.approx(entry["original"]["seconds"] / entry["igcap"]["seconds"], rel=0.01)
    for path in ("original", "igcap"):  # the part of a cold start spent importing the path's libraries
        cold = result["published_like"]["cold"][path]
        assert 0 < cold["imports_seconds"] < cold["seconds"]
    # with its int8 cache warm, igcap captions through light models: transformers is never imported
    assert result["published_like"]["cold"]["igcap"]["transformers_imported"] is False
    assert result["published_like"]["cold"]["original"]["transformers_imported"] is True
    assert "of which importing the path's libraries: original" in printed
    for path in ("original", "igcap"):  # the mapped files' pages, apart: part of the peak, not the engine's
        entry = result["published_like"]["one_photo"][path]
        assert 0 < entry["file_pages_mb"] < entry["peak_rss_mb"]
    assert "peak (published_like), of which mapped files' pages" in printed
    assert result["targets"] == [] and "issue 15's targets" not in printed  # tiny models say nothing of them
    first = result["published_like"]["igcap_empty_int8_cache"]  # the run that filled the int8 cache
    assert first["cold_seconds"] > 0 and first["load_seconds"] > 0 and first["peak_rss_mb"] > 50
    assert len(list(bench.int8_cache_dir(tmp_path / "ckpt" / "published_like").glob("*.safetensors"))) == 4
    for scenario, photos in (("one_photo", 1), ("eight_photos", 8)):
        entry = result["published_like"][scenario]
        assert entry["original"]["tokens"] == entry["igcap"]["tokens"] == 4 * photos * 4
    # the checkpoints are built once: a second build finds them ready
    ready = tmp_path / "ckpt" / "published_like" / bench.READY_FILE
    stamp = ready.stat().st_mtime_ns
    bench.build_set("published_like", tmp_path / "ckpt", quick=True)
    assert ready.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("where", ["tmp_path", "/dev/shm"])
def test_a_child_reports_the_file_pages_in_its_memory_apart(tmp_path, where):
    """The part of a child's resident memory that maps files (libraries, mostly) is reported beside its peak:
    it varies with the host's page cache, not with the engine (issue 15's ninth round). A file on disk or in
    tmpfs (where /tmp is one) counts alike."""
    import contextlib
    import mmap
    import tempfile
    from pathlib import Path

    from igcap.bench_child import ChildReport, file_pages_mb, finish

    if where != "tmp_path" and not Path(where).is_dir():
        pytest.skip(f"no {where} here")
    before = file_pages_mb()
    with contextlib.ExitStack() as stack:  # a folder made in /dev/shm goes, whatever the asserts say
        folder = tmp_path if where == "tmp_path" else Path(stack.enter_context(tempfile.TemporaryDirectory(dir=where)))
        data = folder / "pages.bin"
        data.write_bytes(b"\x07" * (48 << 20))
        with open(data, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            assert sum(mapped[i] for i in range(0, len(mapped), mmap.PAGESIZE)) == 7 * (len(mapped) // mmap.PAGESIZE)
            during = file_pages_mb()  # every page of the mapped file read: resident, and counted as a file's
            report = finish(ChildReport("test"))
    assert during - before > 40  # the 48 MB mapped and read, not anonymous memory
    assert report.peak_source == "VmHWM" and 40 < report.file_pages_mb <= report.peak_rss_mb
    assert report.transformers_imported == ("transformers" in sys.modules)


def _fake_result(speedups: dict, peaks: dict, load: float = 1.0, peer: float | None = 3.0) -> dict:
    """A run's medians as summarize writes them: ``speedups[set][scenario]`` and ``peaks[set]`` (igcap's)."""
    result = {"quick": False}
    for set_name in bench.SETS:
        result[set_name] = {}
        for scenario in bench.SCENARIOS:
            igcap = {"seconds": load if scenario == "load" else 1.0, "peak_rss_mb": peaks[set_name]}
            entry = {"original": {"seconds": speedups[set_name][scenario]}, "igcap": igcap,
                     "speedup": speedups[set_name][scenario]}
            if peer is not None:
                entry["peer"], entry["speedup_vs_peer"] = {"seconds": peer}, peer
            result[set_name][scenario] = entry
    return result


def test_a_run_says_which_of_issue_15s_targets_it_meets():
    at_targets = {"distinct": {"one_photo": 5.0, "eight_photos": 11.0, "cold": 2.0, "load": 1.5},
                  "published_like": {"one_photo": 7.0, "eight_photos": 14.0, "cold": 2.0, "load": 1.8}}
    checks = bench.check_targets(_fake_result(at_targets, {"distinct": 1600.0, "published_like": 1200.0}, load=4.0))
    assert len(checks) == 12 and all(c["met"] for c in checks)  # a figure exactly at its bound meets it
    below = {s: dict(v) for s, v in at_targets.items()}
    below["published_like"]["one_photo"] = 6.99
    checks = bench.check_targets(_fake_result(below, {"distinct": 1600.1, "published_like": 1150.0}, load=4.01,
                                              peer=0.9))
    missed = {(c["target"], c["set"]) for c in checks if not c["met"]}
    assert missed == {("one photo ≥ 7×", "published_like"), ("peak ≤ 1,600 MiB", "distinct"),
                      ("load of four ≤ 4 s", "distinct"), ("load of four ≤ 4 s", "published_like"),
                      ("ahead of the peer in every scenario", "distinct"),
                      ("ahead of the peer in every scenario", "published_like")}
    result = _fake_result(below, {"distinct": 1600.1, "published_like": 1150.0}, peer=None)
    checks = bench.check_targets(result)
    assert len(checks) == 10  # without the peer, nothing is said of it
    assert bench.targets_line(checks) == ("issue 15's targets: 8 of 10 met; not met: one photo ≥ 7× (published_like): "
                                          "6.99; peak ≤ 1,600 MiB (distinct): 1600.1")
    assert bench.targets_line(bench.check_targets(_fake_result(at_targets, {"distinct": 1.0, "published_like": 1.0}))) \
        == "issue 15's targets: 12 of 12 met"
    assert bench.check_targets({**result, "quick": True}) == []  # tiny models: not comparable


def _resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.mark.slow
def test_a_large_parent_does_not_leak_into_the_childs_peak_memory(tmp_path):
    """wait4's ru_maxrss starts from the parent's high-water mark at fork; the child's own VmHWM does not."""
    options = bench.BenchOptions(quick=True, tokens=2, repeats=1, sets=("distinct",), photos=1)
    set_dir = bench.build_set("distinct", tmp_path / "ckpt", quick=True)
    alone = bench.run_child("original", set_dir, options).peak_rss_mb
    ballast = bytearray(b"\x01") * (300 << 20)  # every page written: resident in the parent
    assert _resident_mb() > 300
    with_ballast = bench.run_child("original", set_dir, options)
    del ballast
    print(f"child peak alone {alone:.0f} MiB, beside a 300 MB larger parent {with_ballast.peak_rss_mb:.0f} MiB")
    assert 50 < with_ballast.peak_rss_mb < alone + 100  # the parent's 300 MB are not in it
    assert with_ballast.report.peak_source == "VmHWM"


def test_first_click_runs_each_setting_of_the_warm_start_in_fresh_processes(tmp_path, capsys):
    out = tmp_path / "click.json"
    assert main(["bench", "--quick", "--first-click", "1", "--sets", "distinct", "--cache", str(tmp_path / "ckpt"),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "click → first caption" in printed and "warm start" in printed
    result = json.loads(out.read_text())
    assert result["delay_s"] == 1 and result["preset"] == "balanced" and result["set"] == "distinct"
    off, on = result["warm_start_off"], result["warm_start_on"]
    for entry in (off, on):
        assert 0 < entry["first_caption_s"] <= entry["all_captions_s"]
    assert [r["warm_start"] for r in off["runs"]] == [False] and [r["warm_start"] for r in on["runs"]] == [True]
    assert off["runs"][0]["models_loaded_at_click"] == 0  # without the warm start nothing loads before the click


def test_first_click_refuses_a_negative_delay_and_the_peer(capsys):
    assert main(["bench", "--quick", "--first-click", "-1"]) == 2
    assert "0 or more" in capsys.readouterr().err
    assert main(["bench", "--quick", "--first-click", "1", "--peer"]) == 2
    assert "--first-click" in capsys.readouterr().err
