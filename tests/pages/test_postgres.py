"""The pages against the live PostgreSQL server (what a hosted app uses): save, rate, export.

Each test gets its own schema in the ``test`` database (search_path in the URL), dropped afterwards.
If the server is not there the tests fail and say so; they are never skipped.
"""

import os
import uuid

import pytest
from sqlalchemy import create_engine, select, text

from db import Caption, Rating, make_engine, transaction
from tests import builders
from tests.pages.conftest import no_exceptions, open_page, set_rater

pytestmark = pytest.mark.postgres
PG_URL = os.environ.get("IGCAP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def db_url():
    """Overrides the SQLite file of tests/pages/conftest.py: a fresh PostgreSQL schema."""
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT")
    name = f"igcap_pages_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as err:  # noqa: BLE001 - no server: say so loudly, never skip
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {str(err).splitlines()[0]} "
                    "(see tests/db/conftest.py for how to start it)", pytrace=False)
    yield f"{PG_URL}?options=-csearch_path%3D{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def test_save_rate_and_export_on_postgres(app, db_url):
    from igcap_ui import resources

    set_rater(app, "Pat")
    app.file_uploader(key="create.upload").set_value([("red.jpg", builders.photo_bytes(), "image/jpeg")]).run()
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    manual.set_value("Hosted 🌍 caption").run()
    app.button(key=f"{manual.key}.save").click().run()
    no_exceptions(app)
    assert resources.db_engine().dialect.name == "postgresql"
    engine = make_engine(db_url)
    with transaction(engine, write=False) as session:
        [caption] = session.scalars(select(Caption))
    at = open_page(app, "gallery.py")
    at.feedback(key=f"stars.{caption.id}.Pat").set_value(4).run()
    no_exceptions(at)
    with transaction(engine, write=False) as session:
        assert [(r.rater, r.stars) for r in session.scalars(select(Rating))] == [("Pat", 5)]
    at = open_page(at, "evaluation.py")
    no_exceptions(at)
    assert at.dataframe[0].value.set_index("Model").loc["Written by hand", "5★"] == 1
    engine.dispose()
    resources.db_engine().dispose()  # let the schema be dropped
