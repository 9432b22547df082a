"""The load script (`python -m igcap loadtest`) with browser sessions at once on the tiny models:
every generation completes, every rating is stored, no page shows an error."""

from __future__ import annotations

import os

import pytest

from igcap.cli import main
from tests.e2e.conftest import CHROMIUM

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_sessions_at_once_all_complete_without_errors(hub_cache, tmp_path, monkeypatch, capsys):
    """Two sessions of two generations each: the second press found "Generate" in every card's "Regenerate"
    too (Playwright matches names by substring) and failed on a page with captions."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)")
    for key in [k for k in os.environ if k.startswith(("IGCAP_", "STREAMLIT_")) or k == "DATABASE_URL"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("IGCAP_DEMO_MODELS_DIR", str(tmp_path / "no-demo-models"))
    code = main(["loadtest", "--sessions", "2", "--jobs", "2", "--preset", "fast", "--time-limit", "900"])
    out = capsys.readouterr().out
    print(out)
    assert "jobs completed: 4 of 4; ratings stored: 2 of 2" in out
    assert "errors shown on pages: 0" in out
    assert "server peak memory: " in out and "MiB (VmHWM" in out
    assert code == 0
