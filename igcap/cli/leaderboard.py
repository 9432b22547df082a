"""``python -m igcap leaderboard``: which model people prefer, with intervals and rater agreement."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from igcap.cli import CliError, file_problem, terminal_safe, whole_number

DESCRIPTION = """Rank the models by which captions people prefer, from star ratings and pairwise votes,
with intervals and rater agreement."""
EXAMPLES = """examples:
  python -m igcap leaderboard --ratings ratings-long.csv --votes votes.csv
  python -m igcap leaderboard --ratings ratings-long.csv --criterion "fits the photo" --json board.json
  python -m igcap leaderboard --votes votes.csv --bootstrap 2000 --seed 7 --json -
  python -m igcap leaderboard --study spring --criterion fits-photo

--ratings reads the one-row-per-rating export (python -m igcap export --long): the columns photo_sha256,
model_key, rater, criterion and stars are needed (caption_id and caption are used when present);
--votes reads the votes export (photo_sha256, model_a, model_b, winner a/b/tie/both_bad, rater).
Other columns are ignored. Intervals resample photos; figures with too little data say how much more
is needed instead of showing a number. From files, the automatic measures cover the captions in the
ratings file (those rated); --study covers every caption of the study."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("leaderboard", help="rank models from star ratings and pairwise votes",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", metavar="NAME", help="a study in the database (instead of --ratings/--votes)")
    p.add_argument("--database", metavar="URL", help="with --study: database URL (default: DATABASE_URL or the "
                                                     "local SQLite file)")
    p.add_argument("--ratings", metavar="RATINGS.csv", help="star ratings, one row per rating")
    p.add_argument("--votes", metavar="VOTES.csv", help="pairwise votes, one row per vote")
    p.add_argument("--criterion", help="which criterion's stars to use (default: overall, or the study's first)")
    p.add_argument("--bootstrap", type=whole_number(0), default=1000, metavar="N",
                   help="bootstrap resamples for the 95%% intervals (default 1000; 0 = no intervals)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the leaderboard as JSON to FILE ('-' = only JSON, "
                                                  "to standard output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from igcap.leaderboard import LeaderboardDataError, compute_leaderboard
    from igcap.leaderboard_table import format_leaderboard

    if args.study:
        board = study_board(args)
        rated = bool(board.criteria)
    else:
        args.criterion = args.criterion or "overall"
        ratings, votes, captions = load_rows(args)
        try:
            board = compute_leaderboard(ratings, votes, captions, criterion=args.criterion,
                                        bootstrap=args.bootstrap, seed=args.seed)
        except LeaderboardDataError as err:
            raise CliError(str(err)) from None
        rated = bool(ratings)
    if board.criterion not in board.criteria and rated:
        print(terminal_safe(f"note: no ratings for criterion {board.criterion!r}; the data has: "
                            f"{', '.join(board.criteria) or 'none'}"), file=sys.stderr)
    if args.json == "-":
        print(json.dumps(board.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(format_leaderboard(board))
    if args.json:
        _write_json(args.json, board.to_json())
        print(f"\nwrote {args.json}")
    return 0


def study_board(args: argparse.Namespace):
    """The leaderboard of ``--study`` from the database."""
    from db.engine import DatabaseError, transaction
    from igcap.cli import open_database
    from igcap.study import study_leaderboard

    if args.ratings or args.votes:
        raise CliError("give either --study or --ratings/--votes, not both")
    engine = open_database(args.database)
    try:
        with transaction(engine, write=False) as session:
            return study_leaderboard(session=session, name=args.study, criterion=args.criterion,
                                     bootstrap=args.bootstrap, seed=args.seed)
    except DatabaseError as err:
        raise CliError(err.message) from None
    except (LookupError, ValueError) as err:
        raise CliError(str(err)) from None


def load_rows(args: argparse.Namespace):
    """(ratings, votes, captions) from the files named on the command line."""
    from igcap.leaderboard import (LeaderboardDataError, captions_from_records, ratings_from_records,
                                   votes_from_records)

    if not args.ratings and not args.votes:
        raise CliError("give --study NAME, or --ratings RATINGS.csv and/or --votes VOTES.csv")
    try:
        records = in_rating_order(read_records(args.ratings)) if args.ratings else []
        ratings = ratings_from_records(records, args.ratings) if args.ratings else []
        captions = captions_from_records(records)
        votes = votes_from_records(latest_votes(read_records(args.votes)), args.votes) if args.votes else []
    except LeaderboardDataError as err:
        raise CliError(str(err)) from None
    return ratings, votes, captions


def in_rating_order(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows as db.studies reads a study's ratings: each person under the name of their first rating (by
    rating_id), in the order the ratings were last given, (rated_utc, rating_id), so that a person's latest
    rating of a caption is the one that counts. The export lists ratings by caption, and a rating given again
    keeps its row and its id, so the file's order is neither. Files without those columns keep their order."""
    if not records or "rated_utc" not in records[0] or "rating_id" not in records[0]:
        return one_name_per_person(records)

    def number(record: dict[str, str]) -> int:
        text = (record.get("rating_id") or "").strip()
        return int(text) if text.isdigit() else -1

    named = one_name_per_person(sorted(records, key=number))
    return sorted(named, key=lambda record: (record.get("rated_utc") or "", number(record)))


def one_name_per_person(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each rater's rows under the name the person first appears with (``db.people``: "Maya" and "maya" are
    one rater, as in the app). Read as two, both counted in the figures, the agreement and the rater table;
    with one name the leaderboard keeps each person's last rating of a caption, as the database does."""
    from db.people import first_names, person

    names = first_names(record.get("rater") for record in records)
    return [{**record, "rater": names[who]} if (who := person(record.get("rater"))) else record for record in records]


def latest_votes(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """One vote per person, photo and pair of models, the last in the file (an export lists votes in the
    order given), as the database keeps them since votes replace each other (``db.people.last_per_person``,
    as db.studies does): a file from before that rule, or gathered elsewhere, counted each repeat."""
    from db.people import last_per_person

    return last_per_person(one_name_per_person(records), rater=lambda record: record.get("rater"),
                           unit=lambda record: (record.get("photo_sha256", ""),
                                                *sorted((record.get("model_a", ""), record.get("model_b", "")))))


def read_records(path: str) -> list[dict[str, str]]:
    """The rows of an Excel-safe igcap CSV export (UTF-8 with or without BOM) with every cell restored
    from formula neutralising (one leading ' removed)."""
    from db.export import restore_cell

    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # captions and comments have no length cap (was 128 KiB)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = [{restore_cell(k or ""): restore_cell(v) if isinstance(v, str) else "" for k, v in row.items()}
                    for row in reader]
            if not rows and reader.fieldnames is None:
                raise CliError(f"{path} is empty")
            return rows
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text (is it a CSV export?)") from None
    except (OSError, csv.Error) as err:
        raise CliError(f"cannot read {path}: {file_problem(path, err) if isinstance(err, OSError) else err}") from None


def _write_json(path: str, data: dict) -> None:
    """Whole or not at all, as the exports: on a full disk the old file stays (it was truncated first)."""
    from db.export import write_bytes

    try:
        write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    except OSError as err:
        raise CliError(f"cannot write {path}: {file_problem(path, err)}") from None
