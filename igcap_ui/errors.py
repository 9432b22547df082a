"""Turn the errors a person can cause or fix into st.error messages: never a stack trace on the page."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from igcap_ui.plain import plain

log = logging.getLogger(__name__)
DB_BUSY = "The database is busy or unreachable right now. Nothing was lost; try again in a moment."
DELETED = ("This {what} was deleted (in another tab, or by someone else), so this change was not saved. "
           "The page now shows what is left.")


def user_message(err: BaseException) -> str | None:
    """What to tell a person about err, or None when it is not an error we know how to explain."""
    from igcap.config import ConfigError
    from igcap.decoding import DecodingError
    from igcap.generation_queue import JobCancelled, JobRefused
    from igcap.images import PhotoError
    from igcap.loading import ModelLoadError

    if isinstance(err, PhotoError):
        return err.message
    if isinstance(err, ModelLoadError):
        return failure_text(err)
    if isinstance(err, (DecodingError, ConfigError)):
        return str(err)
    if isinstance(err, JobRefused):
        return err.message
    if isinstance(err, JobCancelled):
        return "The generation was cancelled. What was saved before stays saved."
    return _database_message(err)


def _deleted_message(err: BaseException) -> str | None:
    from db.repo import CaptionChangedError, EmptyCaptionError, NotFoundError, PhotoInStudyError

    if isinstance(err, (PhotoInStudyError, EmptyCaptionError)):
        return str(err)
    if isinstance(err, CaptionChangedError):  # the Gallery's edit box and a Create card's "Update saved caption"
        return ("This caption was changed in the Gallery or in another tab (or by someone else) after your page "
                "showed it, so your edit was not saved; your text is kept in the box: save again to replace the "
                "caption with it. It now reads (below):")
    return DELETED.format(what=err.what) if isinstance(err, NotFoundError) else None


def _database_message(err: BaseException) -> str | None:
    from sqlalchemy.exc import OperationalError, TimeoutError as PoolTimeout

    from db.engine import DatabaseBusyError, DatabaseConfigError, DatabaseError, DatabaseUnavailableError

    if (deleted := _deleted_message(err)) is not None:
        return deleted
    if isinstance(err, DatabaseBusyError):
        return DB_BUSY
    if isinstance(err, (DatabaseConfigError, DatabaseUnavailableError)):
        return f"Database problem: {err.message}. Check DATABASE_URL (see the README)."
    if isinstance(err, DatabaseError):  # read-only, damaged, too new: the message says what to do
        return f"Database problem: {err.message}."
    if isinstance(err, (OperationalError, PoolTimeout)):
        return DB_BUSY
    return None


def failure_text(failure) -> str:
    """A model's failure in one line: what went wrong, then what to do (ModelLoadError, ModelFailure, ModelStatus)."""
    return f"{failure.message} {failure.hint or ''}".strip()


def show_failure(failure) -> None:
    """A model's failure as an error box, in plain text (it names sources and quotes exceptions)."""
    st.error(plain(failure_text(failure)), icon="⚠️")


def show_error(err: BaseException) -> None:
    message = user_message(err)
    if message is None:
        log.exception("unexpected error on the page", exc_info=err)
        message = f"Something went wrong ({type(err).__name__}). The details are in the server log."
    st.error(plain(message), icon="⚠️")  # library text with names, sources, exception text in it
    if (current := getattr(err, "current", None)) is not None:  # repo.CaptionChangedError: the text, as written
        st.text(current, width="stretch")


@contextmanager
def shown_errors() -> Iterator[None]:
    """Run a page action; known errors become an st.error, the rest of the page keeps working.

    Streamlit's st.rerun/st.stop raise BaseExceptions, so `except Exception` lets them through.
    """
    try:
        yield
    except Exception as err:  # noqa: BLE001 - the page must never show a traceback
        show_error(err)
