"""igcap's data layer: the only place that knows the schema.

``db.engine`` finds and opens the database (and migrates it), ``db.models`` is the schema,
``db.repo`` holds the queries (keyword-only ``session``, never committing), ``db.studies`` the evaluation
studies and their rate and arena queues, ``db.export`` the CSV files.
Nothing here imports torch or Streamlit.
"""

from db.engine import (DatabaseBusyError, DatabaseConfigError, DatabaseCorruptError, DatabaseError,
                       DatabaseReadOnlyError, DatabaseUnavailableError, database_url, make_engine, resolve_url,
                       session_factory, transaction, upgrade)
from db.models import MANUAL, Base, Caption, Photo, Rating, Study, StudyPhoto, Vote

__all__ = [
    "Base", "Caption", "DatabaseBusyError", "DatabaseConfigError", "DatabaseCorruptError", "DatabaseError",
    "DatabaseReadOnlyError", "DatabaseUnavailableError",
    "MANUAL", "Photo", "Rating", "Study", "StudyPhoto", "Vote", "database_url", "make_engine", "resolve_url",
    "session_factory", "transaction", "upgrade",
]
