"""The app in its own process (tiny hub models, fresh SQLite) and headless Debian chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from igcap.loadtest import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



@contextmanager
def serve_app(work: Path, hub_cache: Path, *, port: int | None = None, secrets: Path | None = None,
              address: str = "127.0.0.1", script: str = "streamlit_app.py"):
    """Run `streamlit run streamlit_app.py` offline on a free port with a fresh SQLite file; stop it by PID.

    Listens on ``address`` (loopback: the app's local mode, no sign-in); ``secrets`` is a secrets.toml
    (e.g. sign-in settings) read instead of the user's own; ``script`` another page to serve (a test's,
    relative to the checkout). Yields (base url, database url)."""
    db_url = f"sqlite:///{work / 'igcap-e2e.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGCAP_", "STREAMLIT_")) and k != "DATABASE_URL"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_CACHE=str(hub_cache), DATABASE_URL=db_url,
               IGCAP_DATA_DIR=str(work / "data"), IGCAP_DEMO_MODELS_DIR=str(work / "no-demo-models"),
               PYTHONPATH=str(ROOT))
    port = port or free_port()
    log = work / "streamlit.log"
    extra = ["--secrets.files", str(secrets if secrets else work / "no-secrets.toml")]
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script,
                                 "--server.headless", "true", "--server.port", str(port),
                                 "--browser.gatherUsageStats", "false",
                                 "--server.fileWatcherType", "none", "--server.address", address, *extra],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url, db_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(f"\nstreamlit log: {log}")


@pytest.fixture(scope="module")
def app_server(hub_cache, tmp_path_factory):
    """The app serving the tiny models under the real hub ids."""
    with serve_app(tmp_path_factory.mktemp("e2e-app"), hub_cache) as server:
        yield server


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory):
    """The app with no model downloaded and the hub offline: what a user sees with no internet."""
    work = tmp_path_factory.mktemp("e2e-offline")
    (work / "empty-hub").mkdir()
    with serve_app(work, work / "empty-hub") as server:
        yield server


@pytest.fixture(scope="module")
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {SCREENSHOTS}")
    return SCREENSHOTS
