"""`python -m igcap demo-models DIR`: four tiny variants trained on synthetic shapes, in minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

from igcap.cli import CliError, file_problem


def add_parser(sub) -> None:
    p = sub.add_parser("demo-models", help="train four tiny demo models on synthetic shapes (offline, CPU)",
                       description="Pretrains two tiny bases on plain descriptions of synthetic shapes, then "
                                   "fine-tunes both strategies on each. The dashboard lists them as demo models when "
                                   "IGCAP_DEMO_MODELS_DIR points at DIR (default: IGCAP_DATA_DIR/demo-models). "
                                   "Example: python -m igcap demo-models data/demo-models")
    p.add_argument("dir", type=Path, nargs="?", metavar="DIR", help="default: the configured demo-models folder")
    p.add_argument("--data", type=Path, help="a dataset to fine-tune on (default: synthetic, written to DIR/_data)")
    p.add_argument("--photos", type=int, default=600, help="synthetic photos to write (default 600)")
    p.add_argument("--seed", type=int, default=42, help="data, split and initialisation seed")
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.config import Settings
    from igcap.demo import DemoPlan, build_demo_models, held_out_records, shape_accuracy, torch_threads
    from igcap.cli.train import run_training
    from igcap.shapes import MIN_PHOTOS

    if args.data is None and args.photos < MIN_PHOTOS:  # before the folder is made
        raise CliError(f"--photos: the demo dataset needs at least {MIN_PHOTOS} photos")
    folder = Path(args.dir or Settings.from_env().demo_dir)
    try:  # here, before training: run_training reads an OSError as the base model failing to load
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"cannot write {folder}: {file_problem(folder, err, folder=True)}") from None
    plan = DemoPlan(photos=args.photos, seed=args.seed)
    with torch_threads(1):
        made = run_training(lambda: build_demo_models(folder, data=args.data, plan=plan))
        # On the synthetic data, a caption is right when it names the shape's colour and kind.
        held_out = [] if args.data else held_out_records(Path(folder) / "_data", args.seed)
        accuracy = {key: shape_accuracy(path, held_out) for key, path in made.items()} if held_out else {}
    for key, path in made.items():
        score = f" (names colour and shape right on {accuracy[key]:.0%} of {len(held_out)} held-out photos)"
        print(f"{key}: {path}{score if key in accuracy else ''}")
    print(f"the dashboard lists them with IGCAP_DEMO_MODELS_DIR={Path(folder).resolve()}")
    return 0
