"""Process-wide resources, built on first use and shared by every session (st.cache_resource).

Nothing here runs at import time: the first page renders before any model loads or the database opens.
"""

from __future__ import annotations

import copy
import threading
import time

import streamlit as st

from igcap_ui.secrets import read_secrets


@st.cache_resource(show_spinner=False)
def settings():
    from igcap.config import Settings

    return Settings.from_env()


def registry():
    """The model registry, read again when its sources change on disk (a new demo model appears without a
    restart); otherwise the copy read before."""
    from igcap.registry import sources_fingerprint

    return _registry_for(sources_fingerprint(settings()))


@st.cache_resource(show_spinner=False, max_entries=4)
def _registry_for(fingerprint: tuple):
    from igcap.registry import load_registry

    return load_registry(settings())


def model_cache():
    """The bounded, lazily filled model cache (models load on first use, not here), on the current registry."""
    cache = _model_cache()
    cache.use_registry(registry())
    return cache


@st.cache_resource(show_spinner=False)
def _model_cache():
    from igcap.loading import cache_from_settings

    return cache_from_settings(settings())


@st.cache_resource(show_spinner=False)
def captioner():
    from igcap.captioner import Captioner

    return Captioner(model_cache(), max_rows=settings().max_batch_rows)


@st.cache_resource(show_spinner=False)
def generation_queue():
    """The one line every session's generations wait in (igcap.generation_queue)."""
    from igcap.generation_queue import GenerationQueue, limits_from_settings
    from igcap.loading import pick_device

    return GenerationQueue(limits_from_settings(settings(), pick_device(settings().device)))


def session_owner() -> str:
    """This browser session's id: whose jobs are whose in the queue."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


DB_FAILURE_MEMORY_SECONDS = 15.0  # a database that could not be opened is not tried again sooner
_db_failure: dict = {}  # database URL → (monotonic time, the error), the last failure to open it
_db_failure_lock = threading.Lock()


def _fresh(error: Exception) -> Exception:
    """A copy of a remembered error for one session to raise: raising the one object from every session
    grew its traceback with each session's frames (kept alive until the next failure), from several threads."""
    try:
        return copy.copy(error).with_traceback(None)
    except Exception:  # noqa: BLE001 - an error that cannot be copied: its message, in a plain one
        return RuntimeError(str(error))


@st.cache_resource(show_spinner="Opening the database…")
def db_engine():
    """The database engine, upgraded to the newest schema once per process.

    A failure is not cached by Streamlit, and sessions wait in turn for this function: with a server that
    does not answer, each would wait out the connection time-out after the one before. So a failure to open
    a URL is remembered for DB_FAILURE_MEMORY_SECONDS and given at once to every session in that time."""
    from db.engine import database_url, make_engine, upgrade  # SQLAlchemy: not before the first page draws

    config = settings()
    url = database_url(config.database_url, read_secrets(), config.data_dir)
    with _db_failure_lock:
        when, error = _db_failure.get(url, (None, None))
    if error is not None and time.monotonic() - when < DB_FAILURE_MEMORY_SECONDS:
        raise _fresh(error) from None
    engine = None
    try:
        engine = make_engine(url)
        upgrade(engine)
    except Exception as err:
        if engine is not None:
            engine.dispose()
        with _db_failure_lock:
            _db_failure[url] = (time.monotonic(), err)
        raise
    with _db_failure_lock:
        _db_failure.pop(url, None)
    return engine


def default_models(specs: dict, available: dict) -> list[str]:
    """The models the Create page captions with unless the person chooses: every usable model that is not
    a demo, else the usable demos."""
    usable = [k for k in specs if available[k].usable]
    return [k for k in usable if not specs[k].demo] or usable


@st.cache_resource(show_spinner=False)
def warm_start() -> bool:
    """Once per process, after the first creator's page: the Create page's models start loading in the
    background (igcap.warm_start), unless IGCAP_WARM_START=0. True when it started."""
    if not settings().warm_start:
        return False
    from igcap import warm_start as warming

    return warming.start(model_cache(), default_models(registry(), availability())) is not None


def availability() -> dict:
    """Model key → igcap.loading.Availability: the one answer every page uses (loaded, failed and why,
    or judged from files and one remembered hub probe). Not cached: files and the cache change."""
    from igcap.loading import model_availability

    return model_availability(model_cache())
