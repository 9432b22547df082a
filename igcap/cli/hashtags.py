"""`igcap hashtags`: list, add and remove saved hashtag sets (used by `igcap caption --hashtags NAME`)."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """examples:
  igcap hashtags                                        list the saved sets
  igcap hashtags add travel "#travel #wanderlust #roadtrip"
  igcap hashtags remove travel
  igcap caption beach.jpg --hashtags travel             add a set to every caption (within Instagram's limits)"""


def add_parser(sub) -> None:
    p = sub.add_parser("hashtags", help="list, add or remove saved hashtag sets", epilog=EXAMPLES,
                       description="Saved hashtag sets, stored in the database with your captions.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=["list", "add", "remove"], default="list")
    p.add_argument("name", nargs="?", help="the set's name (add, remove)")
    p.add_argument("tags", nargs="*", help="add: the hashtags, with or without '#', separated by spaces or commas")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.add_argument("--database", metavar="URL", help="database URL (default: DATABASE_URL or the local SQLite file)")
    p.set_defaults(func=run)


def run(args) -> int:
    from db import hashtag_sets
    from db.engine import DatabaseError
    from db.repo import NotFoundError
    from igcap.cli import CliError
    from igcap.hashtags import HashtagSetError, parse_hashtag_set

    if args.action != "list" and not args.name:
        raise CliError(f"hashtags {args.action} needs the set's name")
    if args.action == "add" and not args.tags:
        raise CliError("hashtags add needs the hashtags, e.g. igcap hashtags add travel \"#travel #roadtrip\"")
    try:
        with session_for(args.database, create=args.action == "add") as session:
            if args.action == "add":
                saved = hashtag_sets.save_set(session=session, name=args.name,
                                              tags=parse_hashtag_set(" ".join(args.tags)))
                print(f"saved {saved.name}: {saved.tags}")
            elif args.action == "remove":
                hashtag_sets.delete_set(session=session, name=args.name)
                print(f"removed {hashtag_sets.clean_name(args.name)}")
            else:
                sets = [{"name": s.name, "tags": s.tag_list} for s in hashtag_sets.list_sets(session=session)]
                if args.json:
                    print(json.dumps(sets, indent=2, ensure_ascii=False))
                elif not sets:
                    print('no hashtag sets yet; add one with: igcap hashtags add travel "#travel #roadtrip"')
                else:
                    width = max(len(s["name"]) for s in sets)
                    print("\n".join(f"{s['name'].ljust(width)}  {' '.join(s['tags'])}" for s in sets))
    except (HashtagSetError, NotFoundError, ValueError) as err:
        raise CliError(str(err)) from None
    except DatabaseError as err:
        raise CliError(err.message) from None
    return 0


def session_for(url: str | None, create: bool = False):
    """A write transaction on the (migrated) database: ``url``, else the configured one (igcap.open_database)."""
    from db.engine import transaction
    from igcap.cli import open_database

    return transaction(open_database(url, create=create))


def load_tags(names: str, url: str | None = None) -> list[str]:
    """The hashtags of the comma-separated set names, in order; CliError naming an unknown set."""
    from db import hashtag_sets
    from db.engine import DatabaseError
    from igcap.cli import CliError

    tags: list[str] = []
    try:
        with session_for(url) as session:
            for name in filter(None, (n.strip() for n in names.split(","))):
                found = hashtag_sets.get_set(session=session, name=name)
                if found is None:
                    known = ", ".join(s.name for s in hashtag_sets.list_sets(session=session)) or "none yet"
                    raise CliError(f"no hashtag set called {name!r} (saved sets: {known}; add one with "
                                   "igcap hashtags add NAME TAGS)")
                tags += [t for t in found.tag_list if t.casefold() not in {x.casefold() for x in tags}]
    except ValueError as err:
        raise CliError(str(err)) from None
    except DatabaseError as err:
        raise CliError(err.message) from None
    return tags
