"""A browser session's saves in click order, although Streamlit may run two of its script runs at once.

With ``runner.fastReruns`` (Streamlit's default) a click that arrives while the script runs does not wait:
Streamlit asks that run to stop and starts a new run on a new thread at once, and the old thread goes on
until its next st.* call. An old run in the middle of a save could therefore commit after the new run had
saved the later click, and the database kept the earlier click while the page showed the later one
(issue 12 item 3, seen in Chromium with stars clicked in a burst).

``in_click_order()`` takes the session's lock, then passes one Streamlit yield point: a run that a newer
one has superseded stops there (Streamlit's StopException, or its RerunException) and leaves the save to
the newer run; a run that gets past it saves before any newer run of the session can, because the newer
run waits for the lock. Nothing here is shared between sessions.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

_YIELD_KEY = "run_order.yield"  # read only to reach Streamlit's yield point; never set


class _SessionLock:
    __slots__ = ("lock", "__weakref__")

    def __init__(self):
        self.lock = threading.Lock()


_LOCKS: weakref.WeakValueDictionary[str, _SessionLock] = weakref.WeakValueDictionary()  # gone when unused
_GUARD = threading.Lock()


def _session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else ""


def _lock_of(session_id: str) -> _SessionLock:
    with _GUARD:
        held = _LOCKS.get(session_id)
        if held is None:
            held = _LOCKS[session_id] = _SessionLock()
        return held


@contextmanager
def in_click_order() -> Iterator[None]:
    """Hold this session's save lock; a superseded run raises Streamlit's control exception on entry."""
    held = _lock_of(_session_id())  # a strong reference for as long as the block runs
    with held.lock:
        st.session_state.get(_YIELD_KEY)  # the yield point: a stopped or superseded run ends here
        yield
