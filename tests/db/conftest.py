"""Every data-layer test runs twice: on a SQLite file and on the live PostgreSQL server.

PostgreSQL isolation: each test session works in its own schemas (``igcap_t_<pid>_<random>``) of
the ``test`` database, reached through ``search_path`` in the URL, and drops them at the end, so
parallel runs and whatever else lives in ``test`` never meet. If the server is not reachable the
PostgreSQL tests fail with a message that says how to start it; they are never skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from db import repo
from db.engine import make_engine, upgrade

PG_URL = os.environ.get("IGCAP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]

NO_POSTGRES = """
PostgreSQL is not reachable at {url}
  ({error})
The data-layer tests run against SQLite AND PostgreSQL on every run; they are not skipped.
Start the server, then run the tests again:
  Debian/Ubuntu:  sudo pg_ctlcluster 15 main start     (or: sudo service postgresql start)
  Docker:         docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16
or point IGCAP_TEST_POSTGRES_URL at a server where the user may create schemas.
"""


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as err:  # noqa: BLE001 - any failure here means "no server": say so loudly
        pytest.fail(NO_POSTGRES.format(url=PG_URL, error=str(err).strip().splitlines()[0]), pytrace=False)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_schema(pg_admin: Engine) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty schemas; returns a URL whose connections work inside the new schema."""
    created: list[str] = []

    def new_schema() -> str:
        name = f"igcap_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with pg_admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        created.append(name)
        return f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{name}"

    yield new_schema
    with pg_admin.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_migrated_url(pg_schema) -> str:
    """One schema at the head revision, shared by the tests that only need a clean database."""
    url = pg_schema()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def blank_url(backend, tmp_path, request) -> str:
    """A database with no tables at all."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'blank.sqlite3'}"
    return request.getfixturevalue("pg_schema")()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file at the head revision; tests get copies (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "igcap.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def pg_cleaner(pg_migrated_url) -> Iterator[Engine]:
    engine = make_engine(pg_migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_url(backend, tmp_path, request) -> str:
    """A migrated, empty database: a new SQLite file, or the shared PostgreSQL schema emptied."""
    if backend == "sqlite":
        path = tmp_path / "igcap.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    with request.getfixturevalue("pg_cleaner").begin() as conn:
        conn.execute(text("DELETE FROM studies"))  # cascades to study photos, study captions and votes
        conn.execute(text("DELETE FROM photos"))  # cascades to captions and ratings
        conn.execute(text("DELETE FROM hashtag_sets"))
    return request.getfixturevalue("pg_migrated_url")


@pytest.fixture
def engine(db_url) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def photo_values(seed: str = "a", name: str | None = None) -> dict:
    """Arguments for repo.save_photo: a distinct content hash per seed (the bytes are not decoded here)."""
    return dict(sha256=hashlib.sha256(seed.encode()).hexdigest(), name=name or f"{seed}.jpg", width=640,
                height=480, format="JPEG", image_jpeg=b"\xff\xd8full-" + seed.encode(),
                thumbnail_jpeg=b"\xff\xd8thumb-" + seed.encode())


def add_photo_with_captions(session, seed: str = "a", keys=("vit-gpt2-all", "nlpconnect-all")):
    """A photo and one generated caption per model key; returns (photo, [captions])."""
    photo = repo.save_photo(session=session, **photo_values(seed))
    captions = [repo.add_caption(session=session, photo=photo, model_key=key, text=f"{seed} by {key}",
                                 generated_text=f"{seed} by {key}", model_source=f"Stoneman/{key}",
                                 settings={"num_beams": 4}, seconds=0.5) for key in keys]
    return photo, captions
