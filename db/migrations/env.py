"""Alembic environment: db.engine.upgrade() passes its connection in; the alembic CLI builds one."""

from logging.config import fileConfig

from alembic import context

from db.engine import make_engine, resolve_url
from db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things, so Alembic rebuilds the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)  # only for the alembic CLI: the app keeps its own logging
    engine = make_engine(config.get_main_option("sqlalchemy.url") or resolve_url())
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":  # as in db.engine.upgrade: table rebuilds must not cascade
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        run_migrations(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
