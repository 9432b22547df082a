"""``python -m igcap COMMAND``: each command is a module of this package with ``add_parser(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import re
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="igcap", description="Instagram captions from four fine-tuned ViT-GPT2 models "
                     "(igcap COMMAND, or python -m igcap COMMAND).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and library messages")
    parser.add_argument("--version", action="version", version=f"igcap {version()}")
    parser.commands = parser.add_subparsers(dest="command", metavar="COMMAND")  # required: _Parser checks
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}").add_parser(parser.commands)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with its usage errors said by the parser they concern: an option no parser knows
    is reported with the command's usage (``igcap caption --bogus x`` showed the top-level one), and
    ``igcap --bogus`` says so instead of "the following arguments are required: COMMAND"."""

    commands = None  # the COMMAND subparsers' action

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        command = getattr(parsed, "command", None)
        if extras:
            (self.commands.choices[command] if command else self).error(f"unrecognized arguments: {' '.join(extras)}")
        if command is None:
            self.error("choose a COMMAND (igcap --help lists them)")
        return parsed


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CliError as err:
        print_error(err)
        return 2
    except BrokenPipeError:  # the reader went away (`igcap caption … | head`): stop quietly, as other tools do
        import os

        try:  # no second error when Python flushes standard output at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # standard output without a descriptor (captured)
            pass
        return 141  # 128 + SIGPIPE, what the shell reports for a tool stopped this way
    except Exception as err:  # noqa: BLE001 - a setting or the database: one line, the traceback with -v only
        message = _known_error(err)
        if message is None:
            raise
        if args.verbose:
            logging.exception("details")
        print_error(message)
        return 2


def print_error(message) -> None:
    """``error: message`` on stderr, each line as plain text: a message can quote a file's cells, its column
    names or a path, and their control characters are written as escapes, never obeyed by the terminal."""
    print("\n".join(terminal_safe(line) for line in f"error: {message}".split("\n")), file=sys.stderr)


def _known_error(err: Exception) -> str | None:
    """One line for an error a person can act on (a setting, the models file, the database), else None."""
    from igcap.config import ConfigError

    if isinstance(err, ConfigError):
        return str(err)
    if "db" in sys.modules:  # only commands that opened a database can fail in it
        from sqlalchemy.exc import SQLAlchemyError

        from db.engine import DatabaseError

        if isinstance(err, DatabaseError):
            return err.message
        if isinstance(err, SQLAlchemyError):  # e.g. a study deleted by another run while this one wrote to it
            detail = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
            return f"the database refused this ({type(err).__name__}: {detail}); nothing more was written"
    return None


def version() -> str:
    """The installed distribution's version; in a checkout that is not installed, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version
    from pathlib import Path

    try:
        return installed_version("igcap")
    except PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        import tomllib

        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


def whole_number(low: int = 0, high: int | None = None):
    """An argparse type: a whole number from ``low`` (to ``high``, when given), else a one-line usage error
    naming the value."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        return value

    parse.__name__ = f"whole number >= {low}" if high is None else f"whole number from {low} to {high}"
    return parse


class CliError(Exception):
    """A problem with the user's input, printed as one line without a traceback."""


def check_device(flag: str | None, configured: str = "auto") -> str:
    """The device a command runs on: ``--device`` when given, else IGCAP_DEVICE (``configured``); resolved
    once, before any model or data is loaded, so a GPU asked for where there is none is one line (exit 2),
    not a failure per model. The error names the one that asked: the flag, or the setting's ConfigError."""
    from igcap.config import ConfigError
    from igcap.loading import pick_device

    try:
        return pick_device(flag or configured)
    except ConfigError:
        if not flag:
            raise
        raise CliError(f"--device {flag}, but this host has no {flag} device that torch can use; "
                       "use --device auto or cpu") from None


def file_problem(path, err: OSError, folder: bool = False) -> str:
    """Why ``path`` could not be written or read, in words: a part of it that is a file where a folder must be
    (the system says "File exists" or "Not a directory" for it), else the system's reason. ``folder``:
    ``path`` itself is to be a folder."""
    from pathlib import Path

    path = Path(path)
    for part in [path, *path.parents] if folder else path.parents:
        if part.exists():
            if not part.is_dir():
                return f"{part} is a file, not a folder"
            break
    return err.strerror or str(err)


def open_database(url: str | None = None, *, create: bool = False):
    """The engine for ``--database URL``, else the configured database, migrated; CliError if it cannot open.

    A SQLite file named by ``--database`` or ``DATABASE_URL`` must exist unless the command writes
    (``create``: study create, hashtags add): a mistyped path made a new, empty database and `export` said
    "wrote 0 captions", `study list` "no studies yet". The default file in IGCAP_DATA_DIR is made on first use."""
    from db.engine import DatabaseError, database_url, make_engine, sqlite_file, upgrade
    from igcap.config import Settings

    settings = Settings.from_env()
    try:
        target = url or database_url(settings.database_url, data_dir=settings.data_dir)
        file = sqlite_file(target) if (url or settings.database_url) and not create else None
        if file is not None and not file.exists():
            raise CliError(f"no database at {file}: check --database / DATABASE_URL (a new one is made only by "
                           "commands that write, e.g. study create, or by the app)")
        engine = make_engine(target)
        upgrade(engine)
        return engine
    except DatabaseError as err:
        raise CliError(err.message) from None


# C0 and C1 control characters (ESC starts ANSI sequences; tab and newline would break the columns) and the
# bidirectional overrides that make a terminal show a file name other than it is. Emoji joiners stay.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``), so what a file name or a
    caption contains is printed, never obeyed by the terminal."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
