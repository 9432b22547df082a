"""Models loaded before the first click: after a restart (Streamlit Community Cloud wakes a sleeping app
for its first visitor), the engine's libraries and the Create page's models load in the background while
the person picks a photo, instead of after they press Generate.

A cold click pays about 2.6 s importing torch and transformers, then reads the first model (0.5 s from
the int8 cache), before the first caption starts (issue 15 measured it with the benchmark's children);
a visitor needs longer than that to choose a photo. ``start`` runs that work on one daemon thread, once
per model cache: the models go through ``ModelCache.get``, so a generation that asks for a model being
loaded waits for that load (the cache loads each model once, whoever asks), and the cache's bounds hold
(at most ``max_models`` are loaded, and the warm-up stops once the memory budget is full). A model that
fails to load is recorded by the cache as it would be on first use (the Models page shows why); the
others still load.

Off with ``IGCAP_WARM_START=0`` (``Settings.warm_start``): models then load when first used.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence

from igcap import threads

log = logging.getLogger(__name__)

_STARTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model cache → its warm-up thread
_LOCK = threading.Lock()


def start(cache, keys: Sequence[str]) -> threading.Thread | None:
    """Load ``keys`` (in order, at most the cache's count bound) on a background thread; the thread, or
    None when this cache was already warmed (or is being warmed) or there is nothing to load."""
    keys = list(dict.fromkeys(keys))[: cache.max_models]
    with _LOCK:
        if cache in _STARTED or not keys:
            return None
        thread = threading.Thread(target=warm, args=(cache, keys), name="igcap-warm-start", daemon=True)
        _STARTED[cache] = thread
    thread.start()
    return thread


def warm(cache, keys: Sequence[str]) -> list[str]:
    """Load each model into the cache (skipping none for another's failure); returns the keys now loaded.
    Stops when a load made the cache drop a model this warm-up loaded (its memory budget is full):
    loading more would only trade one model for another."""
    from igcap.loading import ModelLoadError

    loaded = []
    for key in keys:
        try:
            with threads.torch_threads(threads.caption_threads(cache.options.threads)):  # as a Generate loads it
                cache.get(key)  # a model already loaded is handed back at once
        except ModelLoadError as err:  # recorded by the cache: the Models page and a later click say why
            log.info("warm start: %s did not load (%s)", key, err.message)
            continue
        except Exception:  # noqa: BLE001  a background thread must not die silently, nor take the app down
            log.exception("warm start: loading %s failed", key)
            continue
        loaded.append(key)
        if not set(loaded) <= set(cache.loaded_keys()):
            log.info("warm start: stopped at %s, the cache's memory budget is full", key)
            break
    log.info("warm start: %s loaded", ", ".join(loaded) or "nothing")
    return [k for k in loaded if k in cache.loaded_keys()]


def started(cache) -> threading.Thread | None:
    """The warm-up thread of this cache, if one was started (for tests)."""
    with _LOCK:
        return _STARTED.get(cache)
