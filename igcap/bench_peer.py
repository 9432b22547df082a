"""The ONNX Runtime int8 peer for ``python -m igcap bench --peer PYTHON``: the same four checkpoints served
the way a performance-savvy user would, with Hugging Face Optimum's ``ORTModelForVision2Seq``.

The peer runs in its own virtual environment (``make peer-venv`` → ``.venv-peer``, pins in
``requirements-peer.txt``): Optimum's ONNX exporter needs an older transformers than igcap's. So this file
is run by that environment's python as a script, never imported as ``igcap.bench_peer`` there (importing
the ``igcap`` package would pull igcap's own modules into a transformers they were not written for). It
imports nothing from igcap; what every benchmark child shares (the report's shape, the photos, the peak
memory reading) comes from ``bench_child.py`` beside it, loaded by its path. At the top it imports only the
standard library, so igcap's tests can import it in igcap's environment and check its pure parts.

The peer, as set up here:

* export: ``optimum.exporters.onnx.main_export``, task ``image-to-text-with-past`` (an encoder and a
  decoder with a key/value cache), tied weights deduplicated (accelerate is in the environment for that);
* dynamic int8 quantization, per channel, with ``ORTQuantizer`` and ``AutoQuantizationConfig`` for the
  CPU's instruction set (``avx512_vnni``, ``avx512``, ``avx2`` or ``arm64``, read from /proc/cpuinfo),
  of the encoder and of the merged decoder (one graph for the first step and the steps with a cache);
* ONNX Runtime's CPU provider, ``intra_op_num_threads`` = the thread count given (2), one inter-op thread,
  graph optimizations at ONNX Runtime's default (all);
* the models are loaded up front (like the original path), each photo preprocessed once, one photo × four
  models one after another, and eight photos as one batch of eight per model (the peer's best case);
  greedy, every caption forced to exactly N new tokens (``min_new_tokens = max_new_tokens = N``).

Export and quantization happen once per checkpoint, as a separate ``prepare`` step that is not timed;
the files are kept in ``ONNX_ROOT/<model key>/`` with a marker recording the recipe (the checkpoint's
files, sizes and modification times, the instruction set, the packages' versions), so a stale one is
rebuilt and a current one reused.

Commands (the parent runs them; each writes JSON to OUT):

    PYTHON igcap/bench_peer.py check OUT
    PYTHON igcap/bench_peer.py prepare SET_DIR ONNX_ROOT KEYS OUT
    PYTHON igcap/bench_peer.py child SET_DIR ONNX_ROOT KEYS TOKENS PHOTOS THREADS OUT

KEYS is a comma-separated list of the model folders' names under SET_DIR.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

PEER_FORMAT = 1  # bump when the export or quantization recipe changes, so kept files are rebuilt
TASK = "image-to-text-with-past"
READY_FILE = "peer-ready.json"
ENCODER = "encoder_model.onnx"
DECODER = "decoder_model_merged.onnx"
KEPT = ("config.json", "generation_config.json", "preprocessor_config.json")  # beside the int8 graphs
# what the peer needs: module to import → the distribution that provides it
MODULES = {"optimum.onnxruntime": "optimum-onnx", "optimum.exporters.onnx": "optimum-onnx",
           "onnxruntime": "onnxruntime", "onnx": "onnx", "transformers": "transformers", "torch": "torch",
           "numpy": "numpy", "PIL": "pillow"}
DISTRIBUTIONS = ("optimum-onnx", "optimum", "onnxruntime", "onnx", "transformers", "torch", "accelerate")
MISSING_EXIT = 3  # the exit status of `check` when a package is missing


class PeerError(RuntimeError):
    """The peer cannot run as asked (a missing package, files not prepared)."""


# ---------------------------------------------------------------- pure parts

def quantization_isa(flags: set[str], machine: str = "x86_64") -> str:
    """The ``AutoQuantizationConfig`` constructor for a CPU with these /proc/cpuinfo flags."""
    if machine.lower() in ("aarch64", "arm64"):
        return "arm64"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def source_fingerprint(checkpoint: Path) -> dict[str, list[int]]:
    """The checkpoint folder's files: name → [size, modification time in ns]. Rebuilt checkpoints differ."""
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(Path(checkpoint).iterdir()) if p.is_file()}


def recipe(checkpoint: Path, isa: str, versions: dict[str, str]) -> dict:
    """Everything the kept int8 files depend on; the marker holds it, and a difference means rebuild."""
    return {"peer_format": PEER_FORMAT, "task": TASK, "merged_decoder": True,
            "quantization": {"isa": isa, "per_channel": True, "is_static": False},
            "source": str(Path(checkpoint).resolve()), "files": source_fingerprint(checkpoint),
            "versions": dict(sorted(versions.items()))}


def is_ready(target: Path, wanted: dict) -> bool:
    marker = Path(target) / READY_FILE
    try:
        return json.loads(marker.read_text()) == wanted and all((Path(target) / f).is_file() for f in (ENCODER, DECODER))
    except (OSError, ValueError):
        return False


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for dist in DISTRIBUTIONS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def missing_modules() -> list[str]:
    """The distributions whose modules this python cannot find (found, not imported: a quick check)."""
    missing = []
    for module, dist in MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # its parent package is missing
            found = False
        if not found and dist not in missing:
            missing.append(dist)
    return missing


def bench_child():
    """``bench_child.py`` beside this file, loaded by its path (the igcap package is not imported)."""
    return _beside("bench_child")


def cpu():
    """``cpu.py`` beside this file (the CPU's flags), loaded by its path."""
    return _beside("cpu")


def _beside(stem: str):
    name = f"igcap_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before exec: dataclasses looks its module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def _isa() -> str:
    import platform

    return quantization_isa(cpu().cpu_flags(), platform.machine())


# ---------------------------------------------------------------- prepare: export + quantize, once

def prepare(set_dir: Path, onnx_root: Path, keys: list[str], log=print) -> dict:
    """Each checkpoint exported and quantized into ONNX_ROOT/<key>/ unless a current one is there.

    Returns, per key: whether it was reused, and the export and quantization seconds when it was not."""
    isa, found = _isa(), versions()
    done = {}
    for key in keys:
        checkpoint, target = Path(set_dir) / key, Path(onnx_root) / key
        wanted = recipe(checkpoint, isa, found)
        if is_ready(target, wanted):
            done[key] = {"reused": True}
            log(f"peer: {key}: kept from an earlier run (its recipe still holds)")
            continue
        log(f"peer: exporting and quantizing {key} ({isa}) …")
        done[key] = dict(_export_and_quantize(checkpoint, target, isa, wanted), reused=False)
        log(f"peer: {key}: export {done[key]['export_seconds']:.1f} s, quantize {done[key]['quantize_seconds']:.1f} s, "
            f"{done[key]['onnx_mb']:.0f} MB")
    return {"isa": isa, "versions": found, "models": done}


def _export_and_quantize(checkpoint: Path, target: Path, isa: str, wanted: dict) -> dict:
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    work = target.with_name(f"{target.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    exported, quantized = work / "fp32", work / "int8"
    started = time.perf_counter()
    main_export(str(checkpoint), exported, task=TASK, do_validation=False, local_files_only=True)
    export_seconds = time.perf_counter() - started
    config = getattr(AutoQuantizationConfig, isa)(is_static=False, per_channel=True)
    started = time.perf_counter()
    for name in (ENCODER, DECODER):
        ORTQuantizer.from_pretrained(exported, file_name=name).quantize(save_dir=quantized, quantization_config=config)
        (quantized / name.replace(".onnx", "_quantized.onnx")).rename(quantized / name)  # the names Optimum looks for
    quantize_seconds = time.perf_counter() - started
    for name in KEPT:
        if (exported / name).is_file() and not (quantized / name).is_file():
            shutil.copy2(exported / name, quantized / name)
    shutil.rmtree(exported)  # the fp32 graphs (three decoders, about 2.5 GB at full size) are not kept
    (quantized / READY_FILE).write_text(json.dumps(wanted))
    shutil.rmtree(target, ignore_errors=True)
    quantized.rename(target)  # whole or not at all: a reader never sees a half-written folder
    shutil.rmtree(work, ignore_errors=True)
    size = sum(p.stat().st_size for p in target.iterdir()) / 2**20
    return {"export_seconds": round(export_seconds, 2), "quantize_seconds": round(quantize_seconds, 2),
            "onnx_mb": round(size, 1)}


# ---------------------------------------------------------------- the measured child

def run_peer(set_dir: Path, onnx_root: Path, keys: list[str], tokens: int, photos: int, threads: int):
    """The same scenarios as the other children (see igcap.bench), through ONNX Runtime."""
    import onnxruntime
    import torch
    from optimum.onnxruntime import ORTModelForVision2Seq
    from transformers import PreTrainedTokenizerFast, ViTImageProcessor

    imported = time.time()
    shared = bench_child()
    torch.set_num_threads(threads)  # Optimum's generate loop runs its small tensor work in torch
    isa, found = _isa(), versions()
    for key in keys:
        if not is_ready(Path(onnx_root) / key, recipe(Path(set_dir) / key, isa, found)):
            raise PeerError(f"{Path(onnx_root) / key} is missing or stale: run `prepare` first")
    report = shared.ChildReport("peer", threads=threads, imports_done_at=imported, variant={
        "runtime": "onnxruntime", "api": "optimum ORTModelForVision2Seq", "task": TASK, "merged_decoder": True,
        "quantization": f"dynamic int8, per channel, {isa}", "intra_op_threads": threads, "versions": found,
        "eight_photos": "one batch of eight per model"})

    def session_options():
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return options

    start = time.perf_counter()
    processor = ViTImageProcessor.from_pretrained(Path(set_dir) / keys[0])
    models = [(ORTModelForVision2Seq.from_pretrained(Path(onnx_root) / key, use_merged=True, session_options=session_options(),
                                                     provider="CPUExecutionProvider"),
               # the checkpoints' tokenizer_config names a transformers-5 class; the tokenizer itself is tokenizer.json
               PreTrainedTokenizerFast(tokenizer_file=str(Path(set_dir) / key / "tokenizer.json")))
              for key in keys]
    report.load_seconds = time.perf_counter() - start
    images = shared.bench_photos(photos)

    def caption_all(batch, on_caption=None):
        pixel_values = processor(images=batch, return_tensors="pt").pixel_values  # each photo once, for all models
        texts, n = [], 0
        for model, tokenizer in models:
            out = model.generate(pixel_values, max_new_tokens=tokens, min_new_tokens=tokens, num_beams=1, do_sample=False)
            texts += tokenizer.batch_decode(out, skip_special_tokens=True)
            n += out.shape[0] * (out.shape[1] - 1)  # the first id of each row is the decoder start token
            if on_caption:
                on_caption()
        return texts, n

    return shared.time_scenarios(report, caption_all, images)


# ---------------------------------------------------------------- entry point

def main(argv: list[str]) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # the parent shows the progress lines as they come
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "check" and len(args) == 1:
            missing = missing_modules()
            if missing:
                print(f"this python lacks {', '.join(missing)} (make peer-venv builds the peer's environment "
                      f"from requirements-peer.txt)", file=sys.stderr)
                return MISSING_EXIT
            Path(args[0]).write_text(json.dumps({"versions": versions(), "isa": _isa(), "python": sys.version.split()[0]}))
        elif command == "prepare" and len(args) == 4:
            set_dir, onnx_root, keys, out = args
            result = prepare(Path(set_dir), Path(onnx_root), keys.split(","))
            Path(out).write_text(json.dumps(result))
        elif command == "child" and len(args) == 7:
            set_dir, onnx_root, keys, tokens, photos, threads, out = args
            report = run_peer(Path(set_dir), Path(onnx_root), keys.split(","), int(tokens), int(photos), int(threads))
            bench_child().finish(report)
            Path(out).write_text(json.dumps(asdict(report)))
        else:
            print(__doc__.split("Commands")[1], file=sys.stderr)
            return 2
    except PeerError as err:
        print(f"peer: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
