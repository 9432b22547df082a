"""`python -m igcap train-all`: the four published variants (vit-gpt2/nlpconnect × last-block/all) in one go."""

from __future__ import annotations

from pathlib import Path

from igcap.cli.train import _print_result, add_training_arguments, run_training, settings_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("train-all", help="train the four variants (both bases × both strategies)",
                       description="Train vit-gpt2-last-block, vit-gpt2-all, nlpconnect-last-block and nlpconnect-all "
                                   "into OUT/<key>; run again with --resume after a failure: finished variants are "
                                   "skipped, the failed one continues, the rest start fresh. Example: python -m igcap "
                                   "train-all --data instagram/ --out models --epochs 3 --batch-size 16 "
                                   "--learning-rate 5e-5")
    p.add_argument("--data", required=True, type=Path, help="Kaggle-layout folder, or a folder/CSV of (image, caption)")
    p.add_argument("--out", required=True, type=Path, help="folder that receives one sub-folder per variant")
    add_training_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.train import train_all

    template = settings_from_args(args)
    results = run_training(lambda: train_all(template, args.out))
    for result in results.values():
        _print_result(result)
    print(f"point the dashboard at them: IGCAP_MODELS_DIR={args.out.resolve()}")
    return 0
