"""`python -m igcap bench`: igcap's engine against the original app's path, on random-weight checkpoints
of the real architecture (built once), each path in its own process."""

from __future__ import annotations

import json
from pathlib import Path

from igcap.cli import CliError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="benchmark igcap against the original app's path (speed and peak memory)",
        description="Build random-weight checkpoints of the real architecture once, then time the original "
                    "app's path and igcap's engine in separate processes. Example: python -m igcap bench "
                    "--json bench.json   (quick check of the machinery: python -m igcap bench --quick)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="where the checkpoints are built once (default: IGCAP_DATA_DIR/bench, about 7.3 GB)")
    p.add_argument("--tokens", type=int, default=None, help="new tokens per caption, forced (default 32; --quick: 4)")
    p.add_argument("--repeats", type=int, default=None, help="runs of each path, median reported (default 3; --quick: 1)")
    p.add_argument("--sets", default="distinct,published_like",
                   help="comma-separated: distinct (four unrelated models), published_like (two fine-tuned pairs)")
    p.add_argument("--quick", action="store_true", help="tiny models, few tokens, one repeat: checks the machinery in seconds")
    p.add_argument("--peer", type=Path, nargs="?", const=None, default=False, metavar="PYTHON",
                   help="add a third path: the ONNX Runtime int8 peer (Optimum's ORTModelForVision2Seq), run by "
                        "PYTHON, the python of its own environment (make peer-venv; default .venv-peer/bin/python); "
                        "exports and quantizes each checkpoint once before the rounds (see docs/performance.md)")
    p.add_argument("--levers", action="store_true",
                   help="instead: igcap's engine with each lever switched off or changed (int8, sharing, batching, "
                        "threads, SDPA, lean loading), on the first set given")
    p.add_argument("--agreement", action="store_true",
                   help="instead: how often int8 captions equal fp32 ones on the trained demo models' held-out "
                        "photos (the rule: int8 is the default only at ≥ 90%%); trains the demo models if missing")
    p.add_argument("--first-click", type=float, metavar="SECONDS",
                   help="instead: a person's first click SECONDS after the app's process starts (one photo × four "
                        "models, the default preset), with the app's warm start off and on, on the first set given")
    p.add_argument("--gpu", action="store_true",
                   help="instead: the GPU row: igcap's engine in float16 and bfloat16 on --device (one photo and "
                        "--photos photos × four models, the card named), then training samples/s (scripts/gpu-row.sh)")
    p.add_argument("--device", default="cuda", help="for --gpu: the accelerator (default cuda; cpu checks the machinery)")
    p.add_argument("--photos", type=int, default=None, help="for --gpu: photos in the batch scenario (default 64; --quick: 4)")
    p.add_argument("--demo", type=Path, metavar="DIR", help="demo models for --agreement (default: the configured folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap import bench

    peer = _peer_python(args, bench.DEFAULT_PEER_PYTHON)
    try:
        options = bench.BenchOptions(
            tokens=args.tokens or (4 if args.quick else 32), repeats=args.repeats or (1 if args.quick else 3),
            sets=tuple(s.strip().replace("-", "_") for s in args.sets.split(",") if s.strip()),
            cache_dir=args.cache, quick=args.quick, peer_python=peer)
    except ValueError as err:
        raise CliError(str(err)) from None
    if args.first_click is not None and args.first_click < 0:
        raise CliError("--first-click takes the seconds before the click (0 or more)")
    _check_writable(args.json)
    try:
        if args.gpu:
            result = _gpu_row(args)
        elif args.first_click is not None:
            from igcap import bench_click

            result = bench_click.run_first_click(options, args.first_click)
            print(bench_click.format_first_click(result))
        elif args.agreement:
            result = bench.int8_agreement(args.demo)
            print(f"int8 = fp32 greedy captions on {result['agreement_greedy']:.1%} of held-out photos "
                  f"({result['held_out_photos']} photos × {len(result['models'])} demo models); "
                  f"default preset: {result['agreement_default']:.1%}")
        elif args.levers:
            rows = bench.run_levers(options, set_name=options.sets[0])
            print(bench.format_levers(rows))
            result = {"machine": bench.machine_info(), "tokens_per_caption": options.tokens, "levers": rows}
        else:
            write = (lambda r: args.json.write_text(json.dumps(r, indent=2) + "\n")) if args.json else None
            result = bench.run_benchmark(options, partial=write)
            print(bench.format_table(result))
    except bench.BenchError as err:
        raise CliError(str(err)) from None
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _peer_python(args, default: Path) -> Path | None:
    """--peer's python: None without --peer, the default environment's for a bare --peer."""
    if args.peer is False:
        return None
    if args.levers or args.agreement or args.first_click is not None:
        raise CliError("--peer adds the peer to the comparison run; it does not go with --levers, --agreement "
                       "or --first-click")
    return args.peer or default


def _check_writable(path: Path | None) -> None:
    """Fail before a long run, not after it."""
    if path is not None and not path.parent.resolve().is_dir():
        raise CliError(f"cannot write {path}: the folder {path.parent} does not exist")


def _gpu_row(args) -> dict:
    from igcap import bench_gpu

    try:
        import torch

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise CliError("--gpu: no CUDA device here (torch.cuda.is_available() is False); --device cpu checks the machinery")
        options = bench_gpu.GpuRowOptions(
            device=args.device, photos=args.photos or (4 if args.quick else 64), batch_size=args.photos or (4 if args.quick else 64),
            tokens=args.tokens or (4 if args.quick else 32), repeats=args.repeats or (1 if args.quick else 3),
            cache_dir=args.cache, quick=args.quick, train_batch_size=4 if args.quick else 32,
            train_steps=2 if args.quick else 20)
    except ValueError as err:
        raise CliError(str(err)) from None
    result = bench_gpu.run_gpu_row(options)
    print(bench_gpu.format_gpu_row(result))
    return result
