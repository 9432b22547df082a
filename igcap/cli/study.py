"""``python -m igcap study create|generate|list|export|delete``: evaluation studies from the command line."""

from __future__ import annotations

import argparse
import sys

from igcap.cli import CliError, file_problem, terminal_safe, whole_number
from igcap.decoding import SEED_MAX

DESCRIPTION = """Evaluation studies from the command line: create one over photos and models, write its
captions, list the studies, export or delete one."""
EXAMPLES = """examples:
  python -m igcap study create spring photos/ --models vit-gpt2-all,nlpconnect-all --preset balanced --k 3
  python -m igcap study create tone a.jpg b.heic --models vit-gpt2-all,nlpconnect-all --criteria overall,fits-photo
  python -m igcap study generate spring          # writes the captions; run again to resume after a stop
  python -m igcap study list
  python -m igcap study export spring --ratings ratings.csv --votes votes.csv
  python -m igcap study delete spring --yes      # with its captions, ratings and votes; the photos stay
  python -m igcap leaderboard --study spring

People rate a study blind on the dashboard's Rate page and compare captions in pairs on its Arena page."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("study", help="create evaluation studies, write their captions, export their ratings",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", metavar="URL",
                        help="database URL (default: DATABASE_URL or the local SQLite file)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = sub.add_parser("create", parents=[common], help="a new study over photos (files or folders) and models",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    create.add_argument("name", help="the study's name (unique)")
    create.add_argument("paths", nargs="+", metavar="PHOTO_OR_FOLDER", help="image files, or folders to search")
    create.add_argument("--models", help="comma-separated model keys (default: the four published models)")
    create.add_argument("--preset", default="balanced", help="decoding preset: balanced, creative, precise, fast")
    create.add_argument("--criteria", default="overall", help="comma-separated criteria to rate (default: overall)")
    create.add_argument("--k", type=int, default=3, help="ratings each caption needs (default 3)")
    create.add_argument("--seed", type=whole_number(0, SEED_MAX),
                        help=f"seed of the raters' order and the arena's pairs, 0 to {SEED_MAX} (default: random)")
    create.set_defaults(func=run_create)

    generate = sub.add_parser("generate", parents=[common],
                              help="write the study's captions (resumes where it stopped)")
    generate.add_argument("name")
    generate.add_argument("--batch", type=int, default=4, help="photos per batch, saved together (default 4)")
    generate.set_defaults(func=run_generate)

    listing = sub.add_parser("list", parents=[common],
                             help="the studies, with their photos, captions, ratings and votes")
    listing.set_defaults(func=run_list)

    export = sub.add_parser("export", parents=[common],
                            help="the study's ratings (one row per rating) and votes as CSV")
    export.add_argument("name")
    export.add_argument("--ratings", metavar="FILE.csv", help="where to write the ratings ('-' = standard output)")
    export.add_argument("--votes", metavar="FILE.csv", help="where to write the votes ('-' = standard output)")
    export.set_defaults(func=run_export)

    remove = sub.add_parser("delete", parents=[common],
                            help="delete a study with its captions, ratings and votes (its photos stay)")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true",
                        help="really delete (without it: say what would go, and change nothing)")
    remove.set_defaults(func=run_delete)


def _engine(args, create: bool = False):
    from igcap.cli import open_database

    return open_database(args.database, create=create)


def run_create(args) -> int:
    from argparse import Namespace

    from db import transaction
    from igcap.cli.caption import KNOBS, decoding_settings, model_keys, photo_batches, photo_files
    from igcap.registry import load_registry
    from igcap.study import create_study, store_photo

    registry = load_registry()
    keys = model_keys(args.models, registry)
    settings = decoding_settings(Namespace(preset=args.preset, keep_fragment=False, **dict.fromkeys(KNOBS)))
    engine = _engine(args, create=True)
    failed: dict = {}
    try:
        with transaction(engine) as session:
            ids = [store_photo(session=session, photo=photo).id  # a few photos in memory at a time
                   for batch in photo_batches(photo_files(args.paths), 4, failed) for photo in batch]
            if not ids:
                raise CliError("no photo could be read" + (f" ({len(failed)} failed)" if failed
                                                           else ": no image files found"))
            study = create_study(session=session, name=args.name, photo_ids=ids, models=keys, settings=settings,
                                 known_models=registry, criteria=args.criteria.split(","), k=args.k, seed=args.seed)
            summary = f"{len(set(ids))} photo(s) × {len(keys)} model(s), k = {study.k}, seed {study.seed}"
            name = study.name
    except (ValueError, LookupError) as err:  # bad input, or a photo gone meanwhile
        raise CliError(str(err)) from None
    print(f"created study {name!r}: {summary}")
    print(f"next: python -m igcap study generate {_quoted(name)}")
    return 1 if failed else 0


def run_generate(args) -> int:
    from igcap.captioner import Captioner
    from igcap.cli.caption import quiet_transformers
    from igcap.loading import cache_from_settings
    from igcap.study import format_seconds, generate_study

    engine = _engine(args)
    cache = cache_from_settings()
    sources = {key: f"{spec.source}@{spec.revision}" if spec.revision else spec.source
               for key, spec in cache.registry.items()}
    quiet_transformers(args.verbose)

    def show(event) -> None:  # photo names are as uploaded or given: printed as plain text
        if event.stage == "model":
            line = f"{event.model_key}: model {event.model_index + 1} of {event.models}"
        elif event.stage == "failed":
            line = f"{event.model_key} failed: {event.message}"
        else:
            left = format_seconds(event.seconds_left)
            line = (f"  [{event.done}/{event.total}] {event.model_key} · {event.photo_name}"
                    + (f" · {left} left" if left else ""))
        print(terminal_safe(line), file=sys.stderr)

    try:
        report = generate_study(engine, args.name, Captioner(cache), sources=sources, batch=args.batch, on_event=show)
    except LookupError as err:
        raise CliError(str(err)) from None
    made = sum(report.made.values())
    print(f"wrote {made} caption(s) in {report.seconds:.0f} s; {report.already_done} were there already")
    for key, message in report.failed.items():
        print(terminal_safe(f"{key} could not caption: {message}"))
    return 0 if report.complete else 1


def run_list(args) -> int:
    from db import studies, transaction

    with transaction(_engine(args), write=False) as session:
        rows = [(s, studies.study_counts(session=session, study=s)) for s in studies.list_studies(session=session)]
        if not rows:
            print("no studies yet: python -m igcap study create NAME PHOTOS… --models …")
        for study, n in rows:
            print(f"{study.name}\t{n['photos']} photos\t{len(study.models)} models\t"
                  f"{n['captions']}/{n['photos'] * len(study.models)} captions\t{n['ratings']} ratings\t"
                  f"{n['votes']} votes\tk={study.k}\tcriteria={','.join(study.criteria)}")
    return 0


def run_export(args) -> int:
    from db import studies, transaction
    from db.export import write_export, write_votes
    from db.repo import GalleryFilter
    from igcap.cli.export import registry_or_nothing

    if not args.ratings and not args.votes:
        raise CliError("say where to write: --ratings FILE.csv and/or --votes FILE.csv")
    target = None  # the file being written, for an error
    try:
        with transaction(_engine(args), write=False) as session:
            name = studies.get_study(session=session, name=args.name).name
            if args.ratings:
                target = args.ratings
                count = write_export(args.ratings, long=True, session=session, filters=GalleryFilter(study=name),
                                     labels=registry_or_nothing())
                _said(f"wrote {count} ratings to {args.ratings}", args.ratings)
            if args.votes:
                target = args.votes
                count = write_votes(args.votes, session=session, study=name)
                _said(f"wrote {count} votes to {args.votes}", args.votes)
    except LookupError as err:
        raise CliError(str(err)) from None
    except OSError as err:
        raise CliError(f"cannot write {target}: {file_problem(target, err)}" if target else str(err)) from None
    return 0


def _said(line: str, path: str) -> None:
    """What was written, on standard error when the file itself went to standard output (``-``)."""
    print(line, file=sys.stderr if path == "-" else sys.stdout)


def run_delete(args) -> int:
    from db import studies, transaction

    try:
        with transaction(_engine(args), write=args.yes) as session:
            study = studies.get_study(session=session, name=args.name)
            name = study.name
            going = len(studies.photos_deleted_with(session=session, study=study))
            n = (studies.delete_study(session=session, name=name) if args.yes
                 else studies.study_counts(session=session, study=study))
    except LookupError as err:
        raise CliError(str(err)) from None
    what = (f"{n['captions']} caption(s), {n['ratings']} rating(s), {n['votes']} vote(s) and {going} photo(s) "
            f"that nothing else uses; its {n['photos'] - going} other photo(s) stay")
    if not args.yes:
        raise CliError(f"study {name!r} holds {what}; nothing was deleted. "
                       f"Export them first if you need them, then run again with --yes: "
                       f"python -m igcap study delete {_quoted(name)} --yes")
    print(f"deleted study {name!r} with {what}")
    return 0


def _quoted(name: str) -> str:
    import shlex

    return shlex.quote(name)
