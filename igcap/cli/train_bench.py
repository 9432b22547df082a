"""`python -m igcap train-bench`: training samples/second of the full-size architecture (synthetic data)."""

from __future__ import annotations

from igcap.cli import CliError, check_device


def add_parser(sub) -> None:
    p = sub.add_parser("train-bench", help="measure training throughput of the full-size model (synthetic data)",
                       description="Builds ViT-base/16 + GPT-2 small from configs (random weights, no download) and "
                                   "times training steps on random batches. Example: python -m igcap train-bench "
                                   "--batch-size 32 --steps 30")
    p.add_argument("--strategy", choices=["last-block", "all", "both"], default="both")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="timed steps (after 3 untimed warm-up steps)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="auto: bf16 where the GPU has it, else fp16; fp32 on a CPU (fp16/bf16 need a CUDA GPU)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.train import TrainError
    from igcap.train_bench import measure

    if args.batch_size < 1 or args.steps < 1:
        raise CliError("batch size and steps must be at least 1")
    device = check_device(args.device) if args.device else None  # None: cuda when available
    strategies = ["last-block", "all"] if args.strategy == "both" else [args.strategy]
    for strategy in strategies:
        try:
            result = measure(strategy, args.batch_size, args.steps, precision=args.precision, device=device)
        except TrainError as err:
            raise CliError(str(err)) from None
        print(result.line(), flush=True)
    return 0
