"""An unreachable hub is found out once, in seconds, remembered with a retry time, and models that need it
are marked unavailable with the reason: no minutes of retries on every click. No test touches the network:
the hub address is a closed port on this machine."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from igcap import hub
from igcap.loading import LoadOptions, ModelCache, ModelLoadError, availability
from igcap.registry import ModelSpec


@pytest.fixture
def unreachable_hub(monkeypatch):
    """HF_HUB_OFFLINE off (as for a new user) and the hub at a loopback port nobody listens on."""
    from huggingface_hub import constants

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: connections are refused at once
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    probes = []
    real = hub._probe
    monkeypatch.setattr(hub, "_probe", lambda: probes.append(1) or real())
    hub.forget()
    yield probes
    hub.forget()


NOT_CACHED = ModelSpec(key="far-away", label="Far away", source="nobody/not-downloaded-model")


def test_unreachable_hub_marks_the_model_unavailable_fast_with_the_reason(unreachable_hub):
    start = time.monotonic()
    avail = availability(NOT_CACHED)
    assert time.monotonic() - start < 10
    assert not avail.usable and avail.state == "unreachable"
    assert "cannot be reached" in avail.detail and "127.0.0.1" in avail.detail and "asked again in" in avail.detail


def test_the_probe_is_remembered_and_shared_by_threads(unreachable_hub):
    results = []
    threads = [threading.Thread(target=lambda: results.append(hub.hub_state())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    availability(NOT_CACHED)
    assert len(unreachable_hub) == 1 and not any(r.reachable for r in results)
    assert 0 < results[0].retry_in_s() <= hub.RETRY_AFTER_S


def test_loading_a_model_from_an_unreachable_hub_fails_in_seconds(unreachable_hub):
    cache = ModelCache({NOT_CACHED.key: NOT_CACHED}, LoadOptions(device="cpu", quantize=False))
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        cache.get(NOT_CACHED.key)
    assert time.monotonic() - start < 10, "no minutes of hub retries"
    assert "cannot be reached" in err.value.message and "hf download nobody/not-downloaded-model" in err.value.hint
