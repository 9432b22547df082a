"""``python -m igcap export``: the "rated captions" CSV (or one row per rating with --long)."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from igcap.cli import CliError, file_problem
from igcap.registry import load_registry

DESCRIPTION = 'Write the "rated captions" CSV (or one row per rating with --long).'
EXAMPLES = """examples:
  python -m igcap export --out rated.csv
  python -m igcap export --out - --long | head
  python -m igcap export --out ratings-long.csv --long --rater alice
  python -m igcap export --out best.csv --model vit-gpt2-all --model nlpconnect-all --min-stars 4 --since 2026-11-01

The file is UTF-8 with a BOM (opens in Excel with emoji intact). Text cells that a spreadsheet could run
as a formula (starting with = + - @ tab, carriage return or ') get one ' in front; see docs/data.md."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="write rated captions (or every rating) to a CSV file",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="FILE.csv", help="where to write the CSV (replaced if it exists; - for standard output)")
    p.add_argument("--long", action="store_true", help="one row per rating (rater, stars, criterion, time)")
    p.add_argument("--include-unrated", action="store_true", help="also captions nobody has rated yet")
    p.add_argument("--model", action="append", default=[], metavar="KEY",
                   help="only captions from this model key (repeatable; 'manual' for hand-written)")
    p.add_argument("--favourites", action="store_true", help="only captions marked as favourite")
    p.add_argument("--min-stars", type=float, metavar="N", help="only captions whose mean stars are at least N (1-5)")
    p.add_argument("--criterion", default="overall", help="criterion for --min-stars (default: overall)")
    p.add_argument("--rater", metavar="NAME", help="only captions this person rated")
    p.add_argument("--search", default="", metavar="TEXT", help="only captions containing TEXT")
    p.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="only captions created on or after this day")
    p.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="only captions created on or before this day")
    p.add_argument("--database", metavar="URL", help="database URL (default: DATABASE_URL or the local SQLite file)")
    p.set_defaults(func=run)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from db.engine import DatabaseError, transaction
    from db.export import write_export
    from db.repo import GalleryFilter  # the data layer imports SQLAlchemy: here, so `--help` stays fast
    from igcap.cli import open_database

    try:
        filters = GalleryFilter(model_keys=args.model, favourites_only=args.favourites, min_stars=args.min_stars,
                                criterion=args.criterion, rater=args.rater, search=args.search,
                                date_from=args.since, date_to=args.until)
    except ValueError as err:
        raise CliError(str(err)) from None
    engine = open_database(args.database)
    try:
        with transaction(engine, write=False) as session:
            count = write_export(args.out, long=args.long, session=session, filters=filters,
                                 include_unrated=args.include_unrated, labels=registry_or_nothing())
    except DatabaseError as err:
        raise CliError(err.message) from None
    except OSError as err:
        raise CliError(f"cannot write {args.out}: {file_problem(args.out, err)}") from None
    where = "standard output" if args.out == "-" else args.out
    print(f"wrote {count} {'ratings' if args.long else 'captions'} to {where}", file=sys.stderr if args.out == "-" else sys.stdout)
    return 0


def registry_or_nothing() -> dict:
    """The models' registry for their labels; empty when it cannot be read (the export shows keys instead)."""
    try:
        return load_registry()
    except Exception as err:  # noqa: BLE001 - a broken model config must not block an export of saved data
        print(f"model labels unavailable, exporting keys instead: {err}", file=sys.stderr)
        return {}
