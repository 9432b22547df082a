"""``python -m igcap loadtest``: start the app and drive several browser sessions at once (see igcap.loadtest)."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """Start the app and drive several browser sessions at once, then report the waits, the
generation times, the errors shown on pages and the server's peak memory."""
EXAMPLES = """examples:
  python -m igcap loadtest                       # 4 sessions, one generation and one rating each
  python -m igcap loadtest --sessions 8 --jobs 2 --preset fast --time-limit 900
  IGCAP_MODELS_DIR=bench-models/full python -m igcap loadtest --sessions 3

The app runs on a free port of 127.0.0.1 with a fresh database and data folder; the models come from the
environment as for the app itself. Needs Playwright (requirements-dev.txt) and Chromium at /usr/bin/chromium.
Exit status 0 when every job completed with no error shown, 1 otherwise."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("loadtest", help="drive several browser sessions of the app at once and report",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=4, metavar="N", help="browser sessions at once (default 4)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="generations per session (default 1)")
    p.add_argument("--no-rating", action="store_true", help="skip the rater's job (save a caption, rate it)")
    p.add_argument("--preset", choices=["balanced", "creative", "precise", "fast"],
                   help="decoding style to pick (default: the page's default, balanced)")
    p.add_argument("--photo", type=Path, metavar="FILE", help="the photo to upload (default: a generated JPEG)")
    p.add_argument("--time-limit", type=float, default=600, metavar="S", help="seconds for the whole run (default 600)")
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.cli import CliError
    from igcap.config import PROJECT_ROOT

    if not (PROJECT_ROOT / "streamlit_app.py").is_file():  # an installed wheel holds no dashboard
        raise CliError("the load test drives the dashboard, which runs from a checkout: run it there "
                       "(git clone …, make run installs it), not from an installed package")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise CliError("the load test needs Playwright: pip install -r requirements-dev.txt") from None
    from igcap.loadtest import LoadPlan, run_load

    if args.photo is not None and not args.photo.is_file():
        raise CliError(f"no photo at {args.photo}")
    try:
        plan = LoadPlan(sessions=args.sessions, jobs_per_session=args.jobs, rate=not args.no_rating,
                        preset=args.preset, time_limit=args.time_limit, photo=args.photo)
        report = run_load(plan)
    except (ValueError, RuntimeError) as err:
        raise CliError(str(err)) from None
    print("\n".join(report.lines()))
    return 0 if report.ok else 1
