"""Where the database is, how to connect to it, migrations at start, and transactions.

SQLite (the default) gets foreign keys, WAL and a busy timeout on every connection, and every
write transaction starts with ``BEGIN IMMEDIATE``: in WAL mode a transaction that read first and
writes later fails at once with "database is locked" when another writer committed in between
(the busy timeout does not help there), so writers take the write lock up front and queue instead.
PostgreSQL goes through psycopg 3. Nothing here imports Streamlit: the app passes ``st.secrets`` in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """``data/`` in a checkout (beside pyproject.toml); installed from a wheel, the user's data folder
    (``$XDG_DATA_HOME/igcap``, default ``~/.local/share/igcap``), never site-packages.
    The same rule as igcap.config.default_data_dir (db does not import igcap; a test checks they agree)."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "data"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "igcap"


SQLITE_FILE = "igcap.sqlite3"
BUSY_TIMEOUT_SECONDS = 15.0  # how long a writer waits for another writer before DatabaseBusyError
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_BEGIN_OPTION = "igcap_sqlite_begin"  # execution option: "IMMEDIATE" (default) or "DEFERRED"
_PG_MIGRATION_LOCK = 7_302_611  # advisory lock id: two app processes starting at once migrate in turn


class DatabaseError(Exception):
    """A database problem a person can act on; ``message`` says what happened and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DatabaseConfigError(DatabaseError, ValueError):
    """The database URL cannot be used."""


class DatabaseBusyError(DatabaseError):
    """Another writer held the database longer than the busy timeout; trying again later works."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached or opened (server down, wrong URL, unwritable folder)."""


class DatabaseReadOnlyError(DatabaseError):
    """The database can be read but not written (a read-only file, folder or server); waiting will not help."""


class DatabaseCorruptError(DatabaseError):
    """The SQLite file is damaged or is not a database at all; waiting will not help."""


def database_url(url: str | None, secrets: Mapping[str, Any] | None = None,
                 data_dir: Path | None = None) -> str:
    """The database URL: ``url`` (igcap's Settings pass ``DATABASE_URL``), else ``[connections.igcap] url``
    in secrets, else the SQLite file in ``data_dir`` (``IGCAP_DATA_DIR``; default :func:`default_data_dir`),
    which is created here."""
    url = (url or "").strip() or _secrets_url(secrets)
    if url:
        return normalise_url(url)
    data_dir = Path(data_dir or default_data_dir()).expanduser()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatabaseUnavailableError(f"cannot create the data folder {data_dir}: {err.strerror}") from err
    return f"sqlite:///{(data_dir / SQLITE_FILE).resolve()}"


def resolve_url(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> str:
    """database_url from the environment's ``DATABASE_URL`` and ``IGCAP_DATA_DIR``, for callers without
    igcap's Settings (the alembic command line, ``make_engine()`` with no URL). The app and the CLI pass
    their Settings' values to database_url instead."""
    env = os.environ if env is None else env
    return database_url(env.get("DATABASE_URL"), secrets, env.get("IGCAP_DATA_DIR") or default_data_dir())


def _secrets_url(secrets: Mapping[str, Any] | None) -> str:
    # st.secrets behaves like nested mappings but raises its own errors for missing keys.
    try:
        return str(secrets["connections"]["igcap"]["url"]).strip() if secrets is not None else ""
    except (KeyError, TypeError, AttributeError, FileNotFoundError):
        return ""


_PG_DRIVERS = ("", "psycopg", "psycopg2")  # psycopg 3 reads psycopg2's URLs the same way


def normalise_url(url: str | URL) -> str:
    """``postgres://``, ``postgresql://`` and ``postgresql+psycopg2://`` (as hosts and SQLAlchemy's docs hand
    them out) become psycopg 3 URLs; another PostgreSQL driver is refused, naming it."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as err:
        raise DatabaseConfigError(f"DATABASE_URL is not a database URL: {_hide_password(str(url))!r}") from err
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in _PG_DRIVERS:
            raise DatabaseConfigError(
                f"DATABASE_URL asks for the PostgreSQL driver {driver}, which igcap does not use; use "
                "postgresql://USER:PASSWORD@HOST:5432/DBNAME (igcap connects through psycopg 3)")
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _hide_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparseable>"


def make_engine(url: str | None = None, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    """An engine for ``url`` (default: :func:`resolve_url`), with the SQLite settings described above."""
    url = normalise_url(url or resolve_url())
    try:
        return _engine_for(make_url(url), busy_timeout)
    except exc.ArgumentError as err:  # e.g. a driver SQLAlchemy does not know
        raise DatabaseConfigError(f"cannot use database {_hide_password(url)}: {err}") from err
    except ImportError as err:  # a driver SQLAlchemy knows but that is not installed (sqlite+aiosqlite)
        raise DatabaseConfigError(f"DATABASE_URL asks for the driver {make_url(url).drivername}, which is not "
                                  "installed; use sqlite:///path or postgresql://…") from err


CONNECT_TIMEOUT_S = 10  # how long a PostgreSQL connection may take before the server counts as unreachable


def _engine_for(url: URL, busy_timeout: float) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout)
    if url.get_backend_name() == "postgresql":
        # pre_ping: hosted servers drop idle connections; a dead one is replaced, not shown as an error.
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    raise DatabaseConfigError(f"igcap stores data in SQLite or PostgreSQL, not {url.get_backend_name()} "
                              "(DATABASE_URL must start with sqlite:// or postgresql://)")


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names; None for another database, an in-memory one, a ``file:`` URI, or a URL
    that cannot be read (make_engine says why)."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except exc.ArgumentError:
        return None
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path).expanduser()


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    if not url.database or url.database == ":memory:" or ":memory:" in url.database or "mode=memory" in url.database:
        raise DatabaseConfigError("an in-memory database would be empty for every session; use a file: "
                                  "sqlite:///path (or leave DATABASE_URL unset for the data folder's file)")
    if (file := sqlite_file(url)) is not None:
        folder = file.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # e.g. a path through a file, or under /proc
            raise DatabaseUnavailableError(
                f"cannot create the folder {folder} for the SQLite file ({err.strerror or err}); set DATABASE_URL "
                "or IGCAP_DATA_DIR to a folder igcap can write") from err
    engine = create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Hand BEGIN to SQLAlchemy (see _on_begin); sqlite3's own transaction handling skips it for SELECT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (pages render them after the transaction)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """A session inside one transaction: committed when the block ends, rolled back if it raises.

    ``write=False`` lets a read-only block on SQLite run beside a writer instead of queueing
    behind it. Lock time-outs and connection failures come out as :class:`DatabaseError` subclasses.
    """
    bind = engine if write else engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
    with translate_errors(engine), Session(bind, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def translate_errors(engine: Engine | None = None) -> Iterator[None]:
    """Re-raise the database failures a person can act on as DatabaseError subclasses that say what to do:
    lock time-outs (busy), connection failures (unavailable), read-only files or servers, damaged files."""
    try:
        yield
    except exc.DatabaseError as err:  # OperationalError is one; IntegrityError and DataError pass through
        translated = _translate(err, _where(engine))
        if translated is None:
            raise
        raise translated from err


_PG_BUSY_CODES = {"55P03", "40001", "40P01"}  # lock_not_available, serialization_failure, deadlock
_PG_READ_ONLY_CODES = {"25006"}  # read_only_sql_transaction (a hot standby, default_transaction_read_only)
_SQLITE_CORRUPT = ("file is not a database", "database disk image is malformed", "malformed database schema")
_UNKNOWN_HOST = ("failed to resolve host", "could not translate host", "name or service not known",
                 "nodename nor servname")
_MOVE_ASIDE = ("Restore it from a backup, or move it aside and igcap starts an empty one there (or set "
               "DATABASE_URL or IGCAP_DATA_DIR to use another place)")


def _translate(err: exc.DatabaseError, where: str) -> DatabaseError | None:
    text = str(err.orig).lower()
    first_line = str(err.orig).strip().splitlines()[0] if str(err.orig).strip() else type(err.orig).__name__
    code = getattr(err.orig, "sqlstate", None)
    if "database is locked" in text or "database is busy" in text or code in _PG_BUSY_CODES:
        return DatabaseBusyError("the database is busy with another change; try again in a moment")
    if "readonly database" in text or "read-only" in text or code in _PG_READ_ONLY_CODES:
        return DatabaseReadOnlyError(
            f"{where} is read-only, so nothing can be saved ({first_line}); nothing was changed. Make the file "
            "and its folder writable by the user running igcap, or set DATABASE_URL or IGCAP_DATA_DIR to a "
            "writable place")
    if any(sign in text for sign in _SQLITE_CORRUPT):
        return DatabaseCorruptError(f"{where} is damaged or is not an igcap database ({first_line}). {_MOVE_ASIDE}")
    if any(sign in text for sign in _UNKNOWN_HOST):  # psycopg 3.3's wording, libpq's, the resolver's
        return DatabaseUnavailableError(f"cannot reach the database: {first_line}; check the host name in "
                                        "DATABASE_URL (waiting will not help)")
    if "invalid connection option" in text:  # e.g. ?pgbouncer=true, an option of Prisma's, not libpq's
        return DatabaseConfigError(f"DATABASE_URL has an option PostgreSQL does not know ({first_line}); remove "
                                   "it from the URL")
    if isinstance(err, exc.OperationalError) and ("unable to open database" in text or "connection" in text):
        return DatabaseUnavailableError(f"cannot reach the database: {first_line}")
    return None


def _where(engine: Engine | None) -> str:
    """The database named for a person: the SQLite file's path, or the server without the password."""
    if engine is None:
        return "the database"
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = (url.database or "").removeprefix("file:").split("?")[0]
        return f"the SQLite file {path}" if path and path != ":memory:" else "the SQLite database"
    return f"the database {url.render_as_string(hide_password=True)}"


def alembic_config(url: str | None = None):
    """An Alembic Config pointing at db/migrations, usable from any current directory."""
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR.parent / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (the app calls this at start; a no-op when up to date)."""
    _migrate(engine, revision, "upgrade")


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (what each migration's downgrade says it drops is lost)."""
    _migrate(engine, revision, "downgrade")


def _migrate(engine: Engine, revision: str, direction: str) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    try:
        _run_migration(engine, revision, getattr(command, direction))
    except CommandError as err:  # e.g. a database written by a newer igcap than this one
        raise DatabaseError(f"cannot migrate the database to {revision}: {err} "
                            "(was it written by a newer version of igcap?)") from err


def _run_migration(engine: Engine, revision: str, step) -> None:
    config = alembic_config()
    with translate_errors(engine), engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # SQLite rebuilds tables to alter them; with foreign keys on, dropping a parent table would
            # cascade-delete its children. The pragma only takes effect outside a transaction.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
                config.attributes["connection"] = conn
                step(config, revision)
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("migration left rows pointing at missing parents; rolled back")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def head_revision() -> str:
    """The newest schema revision this igcap knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
