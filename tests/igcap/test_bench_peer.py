"""The ONNX Runtime peer in the benchmark (`bench --peer PYTHON`): the parent's handling of a third path
(through a fake peer python that speaks the peer script's commands), the options, and the peer script's pure
parts (it runs in its own environment, which CI does not build). One opt-in test runs the real peer on tiny
models when `.venv-peer` exists (`make peer-venv`)."""

from __future__ import annotations

import ast
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from igcap import bench, bench_peer
from igcap.bench import BenchOptions, ChildReport, Measurement
from igcap.cli import main

KEYS = bench.KEYS


# ---------------------------------------------------------------- the peer script stands alone

STDLIB = set(sys.stdlib_module_names)


@pytest.mark.parametrize("name", ["bench_peer.py", "bench_child.py"])
def test_the_peer_script_and_what_it_loads_import_nothing_from_igcap_and_only_the_stdlib_at_the_top(name):
    """It runs in an environment whose transformers is not igcap's: importing igcap there would break."""
    tree = ast.parse((Path(bench.__file__).parent / name).read_text())
    everywhere = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    everywhere |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "igcap" not in everywhere
    top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert top <= STDLIB | {"__future__"}, top - STDLIB


def test_the_peer_captions_the_same_photos_as_the_other_paths():
    peer_photos = bench_peer.bench_child().bench_photos(2)  # loaded by path, as in the peer's environment
    assert [p.tobytes() for p in peer_photos] == [p.tobytes() for p in bench.bench_photos(2)]


@pytest.mark.parametrize("flags, machine, isa", [
    ({"avx2", "avx512f", "avx512_vnni"}, "x86_64", "avx512_vnni"),
    ({"avx2", "avx512f"}, "x86_64", "avx512"),
    ({"avx2", "fma"}, "x86_64", "avx2"),  # this project's AMD EPYC
    ({"asimd"}, "aarch64", "arm64"),
])
def test_quantization_follows_the_cpus_instruction_set(flags, machine, isa):
    assert bench_peer.quantization_isa(flags, machine) == isa


def test_the_peer_reads_the_cpus_flags_without_the_igcap_package():
    """cpu.py is loaded by its path, as bench_child.py is: the same flags as igcap.cpu gives."""
    from igcap import cpu

    assert bench_peer.cpu().__name__ == "igcap_cpu" and bench_peer.cpu().cpu_flags() == cpu.cpu_flags()


def _checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def _prepared(target: Path, wanted: dict) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in (bench_peer.ENCODER, bench_peer.DECODER):
        (target / name).write_bytes(b"onnx")
    (target / bench_peer.READY_FILE).write_text(json.dumps(wanted))


def test_kept_onnx_files_are_used_only_while_their_recipe_still_holds(tmp_path):
    checkpoint, target = _checkpoint(tmp_path / "ckpt"), tmp_path / "onnx"
    versions = {"onnxruntime": "1.32.0", "optimum-onnx": "0.1.0"}
    wanted = bench_peer.recipe(checkpoint, "avx2", versions)
    assert not bench_peer.is_ready(target, wanted)  # nothing there yet
    _prepared(target, wanted)
    assert bench_peer.is_ready(target, wanted)
    assert bench_peer.is_ready(target, bench_peer.recipe(checkpoint, "avx2", dict(reversed(versions.items()))))
    # each of these makes the kept files stale
    assert not bench_peer.is_ready(target, bench_peer.recipe(checkpoint, "avx512_vnni", versions))
    assert not bench_peer.is_ready(target, bench_peer.recipe(checkpoint, "avx2", {**versions, "onnxruntime": "1.33.0"}))
    (checkpoint / "model.safetensors").write_bytes(b"\1" * 65)  # the checkpoint was rebuilt
    assert not bench_peer.is_ready(target, bench_peer.recipe(checkpoint, "avx2", versions))


def test_a_half_prepared_or_damaged_folder_is_not_ready(tmp_path):
    checkpoint, target = _checkpoint(tmp_path / "ckpt"), tmp_path / "onnx"
    wanted = bench_peer.recipe(checkpoint, "avx2", {})
    _prepared(target, wanted)
    (target / bench_peer.DECODER).unlink()
    assert not bench_peer.is_ready(target, wanted)
    _prepared(target, wanted)
    (target / bench_peer.READY_FILE).write_text("{not json")
    assert not bench_peer.is_ready(target, wanted)


def test_a_python_without_the_peers_packages_is_refused_with_the_recipe():
    """igcap's own environment has no Optimum: the check says what is missing and how to build the peer's."""
    with pytest.raises(bench.BenchError) as err:
        bench.check_peer(Path(sys.executable))
    assert "optimum-onnx" in str(err.value) and "make peer-venv" in str(err.value)


# ---------------------------------------------------------------- options and the command line

def test_options_refuse_a_peer_python_that_does_not_exist(tmp_path):
    with pytest.raises(ValueError, match="--peer"):
        BenchOptions(peer_python=tmp_path / "nope" / "python")
    assert BenchOptions().paths == ("original", "igcap")
    assert BenchOptions(peer_python=Path(sys.executable)).paths == ("original", "igcap", "peer")


def test_cli_reports_a_missing_peer_python_without_a_traceback(tmp_path, capsys):
    assert main(["bench", "--quick", "--peer", str(tmp_path / "python")]) == 2
    err = capsys.readouterr().err
    assert "--peer" in err and "make peer-venv" in err


@pytest.mark.parametrize("other", ["--levers", "--agreement"])
def test_cli_refuses_the_peer_with_levers_or_agreement(other, capsys):
    assert main(["bench", "--peer", sys.executable, other]) == 2
    assert "--peer" in capsys.readouterr().err


def test_a_bare_peer_flag_means_the_default_environment(monkeypatch):
    seen = {}

    def fake_run(options, progress=print, partial=None):
        seen["peer"] = options.peer_python
        raise bench.BenchError("stop here")

    monkeypatch.setattr(bench, "DEFAULT_PEER_PYTHON", Path(sys.executable))
    monkeypatch.setattr(bench, "run_benchmark", fake_run)
    assert main(["bench", "--quick", "--peer"]) == 2
    assert seen["peer"] == Path(sys.executable)


# ---------------------------------------------------------------- the parent with a third path

FAKE_PEER = '''#!{python}
"""Speaks bench_peer.py's commands with made-up figures, and records how it was called."""
import json, os, sys, time
script, command, *args = sys.argv[1:]
log = {log!r}
with open(log, "a") as f:
    f.write(json.dumps({{"script": script, "command": command, "args": args,
                         "env": {{k: v for k, v in os.environ.items() if k.startswith(("IGCAP_", "PYTHONPATH", "HF_"))}}}}) + "\\n")
out = args[-1]
if command == "check":
    result = {{"versions": {{"onnxruntime": "1.32.0", "optimum-onnx": "0.1.0", "transformers": "4.57.6"}}, "isa": "avx2"}}
elif command == "prepare":
    set_dir, onnx_root, keys, _ = args
    print("exporter chatter")
    print("peer: exporting and quantizing " + keys.split(",")[0], flush=True)
    result = {{"models": {{k: {{"reused": False, "export_seconds": 21.0, "quantize_seconds": 9.0}} for k in keys.split(",")}}}}
else:
    set_dir, onnx_root, keys, tokens, photos, threads, _ = args
    n, tokens, photos = len(keys.split(",")), int(tokens), int(photos)
    result = {{"path": "peer", "load_seconds": 4.0, "first_caption_at": time.time(), "one_photo_seconds": 2.0,
              "eight_photos_seconds": 8.0, "one_photo_tokens": n * tokens, "eight_photos_tokens": n * tokens * photos,
              "threads": int(threads), "captions": ["a"] * n, "variant": {{"runtime": "onnxruntime"}},
              "peak_rss_mb": 2900.0, "peak_source": "VmHWM"}}
with open(out, "w") as f:
    json.dump(result, f)
'''

FIGURES = {"original": (1.3, 5.0, 40.0, 4100.0), "igcap": (0.5, 1.0, 4.0, 1900.0)}  # load, one photo, eight, peak


def _fake_peer_python(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "peer-calls.jsonl"
    python = tmp_path / "peer-python"
    python.write_text(FAKE_PEER.format(python=sys.executable, log=str(log)))
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return python, log


def _run_with_fake_children(tmp_path, monkeypatch, peer_python: Path | None, repeats: int = 2):
    """run_benchmark with the original and igcap children replaced by fixed figures; the peer's child is
    the real run_child, talking to the fake peer python in a real process."""
    order, real_run_child = [], bench.run_child

    def run_child(path, set_dir, options, variant=None):
        order.append(path)
        if path == "peer":
            return real_run_child(path, set_dir, options, variant)
        load, one, eight, peak = FIGURES[path]
        tokens = len(KEYS) * options.tokens
        report = ChildReport(path, load_seconds=load, one_photo_seconds=one, eight_photos_seconds=eight,
                             one_photo_tokens=tokens, eight_photos_tokens=tokens * options.photos, peak_rss_mb=peak,
                             peak_source="VmHWM")
        return Measurement(report, cold_seconds=load + one / 4, peak_rss_mb=peak)

    monkeypatch.setattr(bench, "run_child", run_child)
    monkeypatch.setattr(bench, "build_set", lambda name, folder, quick=False: Path(folder) / name)
    monkeypatch.setenv("IGCAP_THREADS", "1")  # igcap's settings must not reach the peer
    options = BenchOptions(tokens=4, repeats=repeats, sets=("distinct",), cache_dir=tmp_path / "ckpt", quick=True,
                           peer_python=peer_python)
    partials, progress = [], []
    result = bench.run_benchmark(options, progress=progress.append, partial=partials.append)
    return result, order, partials, progress


def test_the_peer_runs_as_a_third_path_alternating_with_the_others(tmp_path, monkeypatch):
    python, log = _fake_peer_python(tmp_path)
    result, order, partials, progress = _run_with_fake_children(tmp_path, monkeypatch, python)
    rounds = order[1:]  # the first igcap run fills the int8 cache
    assert order[0] == "igcap" and rounds == ["original", "igcap", "peer", "peer", "igcap", "original"]
    assert result["paths"] == ["original", "igcap", "peer"]
    for scenario in ("one_photo", "eight_photos", "cold", "load"):
        entry = result["distinct"][scenario]
        assert entry["speedup_vs_peer"] == pytest.approx(entry["peer"]["seconds"] / entry["igcap"]["seconds"], abs=0.006)
        assert entry["peer"]["peak_rss_mb"] == 2900.0 and entry["peer"]["peak_source"] == "VmHWM"
    assert result["distinct"]["one_photo"]["speedup_vs_peer"] == 2.0  # 2.0 s vs igcap's 1.0 s
    assert result["distinct"]["eight_photos"]["peer"]["tokens"] == result["distinct"]["eight_photos"]["igcap"]["tokens"]
    assert result["distinct"]["cold"]["peer"]["seconds"] > 0  # spawn → the child's first caption
    assert partials and all("peer" in p["distinct"]["one_photo"] for p in partials)
    assert f"    peer: exporting and quantizing {KEYS[0]}" in progress  # the preparation's own lines, as they come
    assert not any("chatter" in line for line in progress)

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["command"] for c in calls] == ["check", "prepare", "child", "child"]  # prepared once, before the rounds
    assert all(Path(c["script"]) == bench.PEER_SCRIPT for c in calls)
    prepare, child = calls[1], calls[2]
    onnx_root = str(bench.peer_onnx_dir(tmp_path / "ckpt" / "distinct"))
    assert prepare["args"][:3] == [str(tmp_path / "ckpt" / "distinct"), onnx_root, ",".join(KEYS)]
    assert child["args"][:6] == [str(tmp_path / "ckpt" / "distinct"), onnx_root, ",".join(KEYS), "4", "8", "2"]
    assert all(not c["env"].get("PYTHONPATH") and not any(k.startswith("IGCAP_") for k in c["env"]) for c in calls)
    assert all(c["env"].get("HF_HUB_OFFLINE") == "1" for c in calls)

    peer = result["peer"]
    assert peer["isa"] == "avx2" and peer["threads"] == 2 and peer["python"] == str(python)
    assert peer["preparation"]["distinct"][KEYS[0]]["export_seconds"] == 21.0

    table = bench.format_table(result)
    header = next(line for line in table.splitlines() if line.startswith("set "))
    assert "peer s" in header and "igcap vs peer" in header and "peer peak MB" in header
    row = next(line for line in table.splitlines() if line.startswith("distinct") and "one_photo" in line)
    assert "2.00×" in row and "2900" in row
    assert "ONNX Runtime 1.32.0" in table and "avx2" in table and "21 + 9 s" in table


def test_without_peer_the_run_and_table_are_as_before(tmp_path, monkeypatch):
    result, order, _, progress = _run_with_fake_children(tmp_path, monkeypatch, None, repeats=1)
    assert "peer" not in order and result["paths"] == ["original", "igcap"] and "peer" not in result
    assert not any("peer" in line for line in progress)
    assert "speedup_vs_peer" not in result["distinct"]["one_photo"]
    table = bench.format_table(result)
    assert "peer" not in table
    assert (f"{'set':<15}{'scenario':<14}{'original s':>11}{'igcap s':>9}{'speedup':>9}{'orig tok/s':>12}"
            f"{'igcap tok/s':>12}{'orig peak MB':>14}{'igcap peak MB':>15}") in table.splitlines()
    row = next(line for line in table.splitlines() if line.startswith("distinct") and "one_photo" in line)
    assert row.split()[2:5] == ["5.00", "1.00", "5.00×"]


def test_a_failing_peer_child_stops_the_run_with_its_output(tmp_path, monkeypatch):
    python = tmp_path / "peer-python"
    python.write_text(f"#!{sys.executable}\nimport sys\nif sys.argv[2] == 'child':\n    sys.exit('peer: exploded')\n"
                      f"open(sys.argv[-1], 'w').write('{{\"isa\": \"avx2\", \"versions\": {{}}, \"models\": {{}}}}')\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(bench.BenchError, match="(?s)the peer path failed.*exploded"):
        _run_with_fake_children(tmp_path, monkeypatch, python, repeats=1)


# ---------------------------------------------------------------- opt-in: the real peer

@pytest.mark.slow
@pytest.mark.skipif(not os.access(bench.DEFAULT_PEER_PYTHON, os.X_OK),
                    reason="the peer's environment is not built (make peer-venv makes .venv-peer); CI does not build it")
def test_the_real_peer_on_tiny_models(tmp_path):
    options = BenchOptions(quick=True, tokens=3, repeats=1, sets=("distinct",), photos=2,
                           peer_python=bench.DEFAULT_PEER_PYTHON)
    set_dir = bench.build_set("distinct", tmp_path / "ckpt", quick=True)
    checked = bench.check_peer(options.peer_python)
    assert checked["versions"]["onnxruntime"] and checked["isa"] in ("avx2", "avx512", "avx512_vnni", "arm64")
    prepared = bench.prepare_peer(options.peer_python, set_dir)["models"]
    assert set(prepared) == set(KEYS) and not any(p["reused"] for p in prepared.values())
    for key in KEYS:
        assert (bench.peer_onnx_dir(set_dir) / key / bench_peer.DECODER).is_file()
    assert all(p["reused"] for p in bench.prepare_peer(options.peer_python, set_dir)["models"].values())
    m = bench.run_child("peer", set_dir, options)
    assert m.report.path == "peer" and m.report.threads == 2
    assert m.report.one_photo_tokens == len(KEYS) * 3 and m.report.eight_photos_tokens == len(KEYS) * 3 * 2
    assert len(m.report.captions) == len(KEYS)
    assert m.cold_seconds > 0 and m.report.load_seconds > 0 and 50 < m.peak_rss_mb and m.report.peak_source == "VmHWM"
    assert 0 < m.report.file_pages_mb < m.peak_rss_mb  # the peer's child reports its mapped files' pages too
