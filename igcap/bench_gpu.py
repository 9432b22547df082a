"""The GPU row (issue 15, item 6): igcap's engine on an accelerator, in float16 and in bfloat16.

On the benchmark's random-weight checkpoints of the real architecture (``bench.build_set``, the
``distinct`` set), for each precision: the four models' load, four captions for one photo and
``photos`` photos × four models (greedy, every caption forced to ``tokens`` new tokens, as in the CPU
benchmark), median of ``repeats``, with the peak of the accelerator's memory; then the training
throughput of both strategies (``train_bench``). The card, its driver's CUDA and the library versions
are named in the result.

Run by ``python -m igcap bench --gpu`` (``scripts/gpu-row.sh`` on a lent GPU machine, which has no
network: everything is built there). ``device="cpu"`` runs the same code without an accelerator: the
tests check the machinery that way, on tiny models.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from igcap.architecture import GPT2_EOS_ID as EOS_ID
from igcap.loading import FLOAT_DTYPES

GPU_DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class GpuRowOptions:
    device: str = "cuda"
    dtypes: tuple[str, ...] = GPU_DTYPES
    photos: int = 64  # the batch scenario: photos × four models
    batch_size: int = 64  # photos per batch (the CPU engine's default is 8)
    tokens: int = 32
    repeats: int = 3
    cache_dir: Path | None = None  # where the checkpoints are built once (default IGCAP_DATA_DIR/bench)
    quick: bool = False  # tiny models: checks the machinery
    train_batch_size: int = 32
    train_steps: int = 20  # timed training steps per strategy (0: no training figures)

    def __post_init__(self):
        unknown = [d for d in self.dtypes if d not in FLOAT_DTYPES]
        if unknown or not self.dtypes:
            raise ValueError(f"precisions must be among {', '.join(FLOAT_DTYPES)}, not {', '.join(unknown) or 'none'}")
        for name in ("photos", "batch_size", "tokens", "repeats", "train_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 1")
        if self.train_steps < 0:
            raise ValueError("train steps must be 0 or more")


def accelerator_info(device: str) -> dict:
    """The card and the software that drives it (on the CPU: just the device)."""
    import torch

    if not device.startswith("cuda"):
        return {"device": device}
    index = torch.device(device).index or 0
    props = torch.cuda.get_device_properties(index)
    return {"device": device, "name": torch.cuda.get_device_name(index), "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count, "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def run_gpu_row(options: GpuRowOptions, progress=print) -> dict:
    """Every precision's figures and the training throughput, as one JSON-ready dict."""
    from igcap import bench

    folder = Path(options.cache_dir) if options.cache_dir else bench.default_cache_dir(options.quick)
    set_dir = bench.build_set("distinct", folder, quick=options.quick)
    result = {"machine": bench.machine_info(), "accelerator": accelerator_info(options.device),
              "set": "distinct", "tokens_per_caption": options.tokens, "repeats": options.repeats,
              "photos": options.photos, "batch_size": options.batch_size, "rows": []}
    for dtype in options.dtypes:
        progress(f"{dtype}: loading four models, then one photo and {options.photos} photos × four models …")
        result["rows"].append(measure_precision(set_dir, options, dtype))
    result["train"] = training_rows(options, progress) if options.train_steps else []
    result["machine"]["load_average_end"] = list(os.getloadavg())
    return result


def measure_precision(set_dir: Path, options: GpuRowOptions, dtype: str) -> dict:
    """One precision: load the four models (timed), a warm-up caption, then the two scenarios."""
    import torch

    from igcap import bench
    from igcap.captioner import Captioner
    from igcap.config import Settings
    from igcap.decoding import DecodingSettings
    from igcap.loading import LoadOptions, ModelCache
    from igcap.optimize import ENCODER_MEMO
    from igcap.registry import DEFAULT_KEYS as KEYS
    from igcap.registry import load_registry

    cuda = options.device.startswith("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        registry = load_registry(Settings.from_env(bench._child_env(set_dir, Path(tmp))))  # the set, no demo models
    load = LoadOptions(device=options.device, quantize=False, dtype=dtype, lean_decoding=True)
    cache = ModelCache({k: registry[k] for k in KEYS}, load, max_models=len(KEYS))
    captioner = Captioner(cache, batch_size=options.batch_size)
    decoding = DecodingSettings(strategy="greedy", num_beams=1, no_repeat_ngram_size=0, min_new_tokens=options.tokens,
                                max_new_tokens=options.tokens, drop_fragment=False)
    images = bench.bench_photos(options.photos)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(options.device)

    def timed(photos) -> tuple[float, list]:
        ENCODER_MEMO.clear()  # as the CPU benchmark: no encoder output left over from the run before
        if cuda:
            torch.cuda.synchronize(options.device)
        start = time.perf_counter()
        runs = captioner.caption(photos, KEYS, decoding)
        if cuda:
            torch.cuda.synchronize(options.device)
        return time.perf_counter() - start, bench._raise_failures(runs)

    start = time.perf_counter()
    for key in KEYS:
        cache.get(key)
    load_seconds = time.perf_counter() - start
    timed(images[:1])  # warm-up: kernels chosen, memory pools filled
    one = [timed(images[:1]) for _ in range(options.repeats)]
    many = [timed(images) for _ in range(options.repeats)]
    row = {
        "dtype": dtype, "load_seconds": round(load_seconds, 3),
        "one_photo_seconds": round(statistics.median(t for t, _ in one), 4),
        "one_photo_runs": [round(t, 4) for t, _ in one],
        "many_photos_seconds": round(statistics.median(t for t, _ in many), 4),
        "many_photos_runs": [round(t, 4) for t, _ in many],
        "captions": [r.raw_text for run in one[0][1] for r in run.results],
        "tokens_one_photo": sum(r.tokens for run in one[0][1] for r in run.results),
        "tokens_many_photos": sum(r.tokens for run in many[0][1] for r in run.results),
        "lean_decoding": all(cache.get(k).lean_decoding for k in KEYS),
        "weights_dtype": str(cache.get(KEYS[0]).input_dtype).removeprefix("torch."),
        "peak_memory_mib": round(torch.cuda.max_memory_allocated(options.device) / 2**20, 1) if cuda else None,
    }
    row["captions_per_second"] = round(options.photos * len(KEYS) / row["many_photos_seconds"], 1)
    row["tokens_per_second"] = round(row["tokens_many_photos"] / row["many_photos_seconds"], 1)
    del cache, captioner
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


def training_rows(options: GpuRowOptions, progress=print) -> list[dict]:
    """train_bench's samples per second for both strategies, on this device in its automatic precision."""
    from igcap import bench, train_bench

    rows = []
    for strategy in ("last-block", "all"):
        progress(f"training throughput, {strategy} …")
        model = bench.tiny_model(seed=0, vocab=EOS_ID + 1) if options.quick else None  # None: full size
        found = train_bench.measure(strategy, batch_size=options.train_batch_size, steps=options.train_steps,
                                    device=options.device, model=model, caption_tokens=min(options.tokens, 32))
        rows.append(asdict(found))
    return rows


def format_gpu_row(result: dict) -> str:
    """The figures as plain text: one line per precision, then the training lines."""
    card = result["accelerator"]
    name = card.get("name") or card["device"]
    m = result["machine"]
    lines = [f"igcap GPU row · {m['date']} · {name}" + (f" ({card['memory_gib']} GiB, CUDA {card['cuda']})" if "cuda" in card else "")
             + f" · torch {m['torch']} · transformers {m['transformers']} · {result['tokens_per_caption']} tokens per "
             f"caption · median of {result['repeats']}", ""]
    lines.append(f"{'precision':<11}{'load four':>11}{'one photo × four':>18}{result['photos']:>5} photos × four"
                 f"{'captions/s':>12}{'tokens/s':>11}{'peak MiB':>10}")
    for row in result["rows"]:
        peak = f"{row['peak_memory_mib']:,.0f}" if row["peak_memory_mib"] is not None else "–"
        lines.append(f"{row['dtype']:<11}{row['load_seconds']:>10.2f}s{row['one_photo_seconds']:>17.3f}s"
                     f"{row['many_photos_seconds']:>19.3f}s{row['captions_per_second']:>12,.1f}"
                     f"{row['tokens_per_second']:>11,.0f}{peak:>10}")
    for row in result.get("train", []):
        memory = f", peak {row['peak_memory_mb']:,.0f} MB" if row.get("peak_memory_mb") else ""
        lines.append(f"training, {row['strategy']}: {row['samples_per_second']:.1f} samples/s ({row['precision']}, "
                     f"batch {row['batch_size']}, {row['steps']} timed steps{memory})")
    return "\n".join(lines)
