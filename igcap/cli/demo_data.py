"""`python -m igcap demo-data DIR`: a synthetic dataset in the Kaggle layout, for trying the pipeline offline."""

from __future__ import annotations

from pathlib import Path

from igcap.cli import CliError, file_problem


def add_parser(sub) -> None:
    p = sub.add_parser("demo-data", help="write a synthetic captioned-shapes dataset in the Kaggle layout",
                       description="Coloured shapes on plain backgrounds with Instagram-style captions (emoji, a "
                                   "hashtag); a few broken rows on purpose. Example: python -m igcap demo-data "
                                   "data/demo --n 600")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("--n", type=int, default=600, help="number of photos (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.demo import write_demo_data

    if args.dir.is_dir() and any(args.dir.iterdir()):
        raise CliError(f"{args.dir} is not empty; choose a new folder (nothing was overwritten)")
    try:
        made = write_demo_data(args.dir, n=args.n, seed=args.seed)
    except ValueError as err:
        raise CliError(str(err)) from None
    except OSError as err:  # a file where a folder must be, a read-only disk, a full one
        raise CliError(f"cannot write {args.dir}: {file_problem(args.dir, err, folder=True)}") from None
    print(f"wrote {made.rows} rows to {made.root}: {len(made.empty_captions)} empty captions, "
          f"{len(made.missing_images)} missing and {len(made.corrupt_images)} corrupt images on purpose")
    print(f"next: python -m igcap train --data {made.root} --out models/shapes --base tiny --strategy all "
          f"--epochs 18 --learning-rate 3e-3 --batch-size 16 --demo")
    return 0
