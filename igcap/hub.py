"""Whether the Hugging Face hub can be reached: found out once, fast, and remembered for a while.

Without this, every click that needs a model not downloaded yet spent minutes in the hub client's
retries before failing (293 s for four models). One short request (a few seconds at most) answers for
the whole process; the answer is kept (``RETRY_AFTER_S`` when unreachable, ``RECHECK_AFTER_S`` when
reachable) and shared by every thread (Streamlit sessions, the CLI's models).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

PROBE_TIMEOUT_S = 3.0  # one request; a reachable hub answers well within this
RETRY_AFTER_S = 120.0  # an unreachable hub is asked again after this long, not on every click
RECHECK_AFTER_S = 900.0


@dataclass(frozen=True)
class HubState:
    reachable: bool
    reason: str  # why not, in words ("" when reachable)
    checked_at: float  # time.monotonic() of the probe
    retry_after_s: float

    def retry_in_s(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return max(0.0, self.checked_at + self.retry_after_s - now)


_lock = threading.Lock()
_state: HubState | None = None


def endpoint() -> str:
    """The hub address huggingface_hub uses (HF_ENDPOINT through Settings, else its default)."""
    from huggingface_hub import constants

    from igcap.config import Settings

    return (Settings.from_env().hub_endpoint or constants.ENDPOINT).rstrip("/")


def hub_state(*, refresh: bool = False) -> HubState:
    """The hub's reachability, probed at most once per retry period (one probe at a time for all threads)."""
    global _state
    with _lock:
        if refresh or _state is None or _state.retry_in_s() <= 0:
            _state = _probe()
        return _state


def forget() -> None:
    """Drop the remembered answer (the next question probes again)."""
    global _state
    with _lock:
        _state = None


def _probe() -> HubState:
    from huggingface_hub.utils import get_session

    url = endpoint()
    try:
        get_session().head(url, timeout=PROBE_TIMEOUT_S)  # any HTTP answer, even an error status, means reachable
    except Exception as err:  # noqa: BLE001 - DNS, refused, timeout, TLS, proxy: all mean "cannot reach"
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        return HubState(False, f"{url} did not answer ({reason})", time.monotonic(), RETRY_AFTER_S)
    return HubState(True, "", time.monotonic(), RECHECK_AFTER_S)
