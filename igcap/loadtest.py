"""A load test of the running app: N browser sessions at once doing a creator's job (upload a photo,
Generate, wait for the last model) and a rater's job (save a caption, rate one in the Gallery).

It starts ``streamlit run streamlit_app.py`` on a free loopback port with a fresh database and data
folder (the models come from the environment: IGCAP_MODELS_DIR, HF_HUB_CACHE, …), drives headless
Chromium with Playwright's async API (one browser, one context per session), and reports: jobs
completed, waits before generation started and whole generations (median, max), errors shown on the
pages, and the server's peak memory (VmHWM of its process). Bounded: a fixed number of jobs, and an
overall time limit after which sessions stop and count as not completed.

Playwright is a test dependency (requirements-dev.txt); it is imported only when a load test runs.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from igcap.config import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
STATUS_LABEL = ('[data-testid="stExpander"]:has([data-testid="stExpanderIconSpinner"], '  # st.status: an expander
                '[data-testid="stExpanderIconCheck"], [data-testid="stExpanderIconError"]) summary')  # with a state
ERRORS = '[data-testid="stAlertContentError"], [data-testid="stException"]'
WAITING = "Waiting for your turn"
DONE = "Done:"


@dataclass(frozen=True)
class LoadPlan:
    sessions: int = 4
    jobs_per_session: int = 1
    rate: bool = True  # each session also saves a caption and rates one in the Gallery
    preset: str | None = None  # a decoding preset to pick first (None: the page's default)
    time_limit: float = 600.0  # seconds for the whole run, server start included
    photo: Path | None = None  # default: a generated 640×480 JPEG

    def __post_init__(self):
        if not 1 <= self.sessions <= 32:
            raise ValueError("sessions must be between 1 and 32")
        if not 1 <= self.jobs_per_session <= 20:
            raise ValueError("jobs per session must be between 1 and 20")
        if self.time_limit <= 0:
            raise ValueError("the time limit must be positive")


@dataclass
class SessionReport:
    number: int
    jobs_done: int = 0
    ratings_done: int = 0
    waits: list[float] = field(default_factory=list)  # Generate → the job started (its place in line over)
    durations: list[float] = field(default_factory=list)  # Generate → the last model's cards
    errors: list[str] = field(default_factory=list)  # error boxes seen on the page (and drive failures)


@dataclass
class LoadReport:
    plan: LoadPlan
    sessions: list[SessionReport]
    seconds: float
    server_start_mb: float | None
    server_peak_mb: float | None

    @property
    def jobs_asked(self) -> int:
        return self.plan.sessions * self.plan.jobs_per_session

    @property
    def jobs_completed(self) -> int:
        return sum(s.jobs_done for s in self.sessions)

    @property
    def errors(self) -> list[str]:
        return [f"session {s.number}: {e}" for s in self.sessions for e in s.errors]

    @property
    def ok(self) -> bool:
        return self.jobs_completed == self.jobs_asked and not self.errors

    def lines(self) -> list[str]:
        waits = [w for s in self.sessions for w in s.waits]
        durations = [d for s in self.sessions for d in s.durations]
        ratings = sum(s.ratings_done for s in self.sessions)
        memory = "unknown (no /proc)" if self.server_peak_mb is None else \
            f"{self.server_peak_mb:,.0f} MiB (VmHWM; {self.server_start_mb:,.0f} MiB when it first answered)"
        out = [f"sessions: {self.plan.sessions} at once, {self.plan.jobs_per_session} generation(s) each",
               f"jobs completed: {self.jobs_completed} of {self.jobs_asked}"
               + (f"; ratings stored: {ratings} of {self.plan.sessions}" if self.plan.rate else ""),
               f"wait before generating (s): {_spread(waits)}",
               f"generation, Generate to last card (s): {_spread(durations)}",
               f"errors shown on pages: {len(self.errors)}",
               f"server peak memory: {memory}",
               f"elapsed: {self.seconds:.0f} s"]
        return out + [f"  {e}" for e in self.errors[:20]]


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"median {statistics.median(values):.1f}, max {max(values):.1f} (n={len(values)})"


# ---------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int, field_name: str = "VmHWM") -> float | None:
    """A process's memory figure from /proc (VmHWM: its peak resident memory), in MiB; None without /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    start_mb: float | None = None


@contextmanager
def serve_app(work: Path, env: dict[str, str] | None = None, timeout: float = 90):
    """``streamlit run streamlit_app.py`` on a free loopback port, headless, with a fresh SQLite file and
    data folder under ``work``; stopped by its own PID at the end. Yields a Server."""
    env = dict(os.environ if env is None else env)
    env.setdefault("DATABASE_URL", f"sqlite:///{work / 'igcap-load.sqlite3'}")
    env.setdefault("IGCAP_DATA_DIR", str(work / "data"))
    port = free_port()
    log = work / "streamlit.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_healthy(server.url, server.process, server.log, timeout)
        server.start_mb = memory_mb(process.pid, "VmRSS")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Until streamlit at ``url`` answers its health check; its log's tail in the error if it exits or hangs.
    The browser tests start their app servers with this too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


# ---------------------------------------------------------------- the sessions

def sample_photo(path: Path) -> Path:
    """A 640×480 JPEG with some structure (a gradient and a few shapes)."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((80, 60, 300, 280), fill=(220, 60, 40))
    draw.rectangle((360, 200, 600, 440), fill=(40, 90, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    path.write_bytes(buffer.getvalue())
    return path


def run_load(plan: LoadPlan, env: dict[str, str] | None = None, work: Path | None = None) -> LoadReport:
    """Start the app, drive ``plan.sessions`` browser sessions at once, stop the app; the figures."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="igcap-load-") as scratch:
        work = Path(work or scratch)
        photo = plan.photo or sample_photo(work / "load-photo.jpg")
        with serve_app(work, env) as server:
            left = plan.time_limit - (time.monotonic() - started)
            sessions = asyncio.run(_drive(server.url, plan, photo, left))
            peak = memory_mb(server.process.pid)
        return LoadReport(plan, sessions, time.monotonic() - started, server.start_mb, peak)


async def _drive(url: str, plan: LoadPlan, photo: Path, seconds: float) -> list[SessionReport]:
    from playwright.async_api import async_playwright

    reports = [SessionReport(i + 1) for i in range(plan.sessions)]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            tasks = [asyncio.create_task(_session(browser, url, plan, photo, r)) for r in reports]
            done, pending = await asyncio.wait(tasks, timeout=max(1.0, seconds))
            for task in pending:
                task.cancel()
            for task, report in zip(tasks, reports):
                if task in pending:
                    report.errors.append("did not finish within the time limit")
                elif task.exception() is not None:
                    report.errors.append(f"the session failed: {_short(task.exception())}")
        finally:
            await browser.close()
    return reports


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


async def _session(browser, url: str, plan: LoadPlan, photo: Path, report: SessionReport) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(90_000)  # a busy server answers slowly; the overall time limit still holds
    try:
        page = await context.new_page()
        await page.goto(url, timeout=120_000)
        await page.get_by_role("heading", name="Create captions").wait_for(timeout=120_000)
        await _settle(page)
        await page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
        await page.locator('[data-testid="stFileChipName"]', has_text=photo.name).wait_for(timeout=60_000)
        await page.locator('[data-testid="stFileChipIconSpinner"]').wait_for(state="detached", timeout=60_000)
        await _settle(page)
        if plan.preset:
            await _choose_preset(page, plan.preset)
        for job in range(plan.jobs_per_session):
            if await _generate(page, report, timeout=plan.time_limit, again=job > 0):
                report.jobs_done += 1
            report.errors += await _errors_on(page)
        if plan.rate and report.jobs_done:
            if await _rate(page, report.number):
                report.ratings_done += 1
            report.errors += await _errors_on(page)
    finally:
        await context.close()


async def _settle(page, timeout: float = 120_000) -> None:
    await page.wait_for_timeout(300)
    await page.wait_for_selector(IDLE, timeout=timeout)


async def _choose_preset(page, preset: str) -> None:
    await page.get_by_label("Style", exact=True).first.click()
    await page.get_by_role("option", name=preset.capitalize(), exact=True).first.click()
    await _settle(page)


async def _status(page) -> str:
    label = page.locator(STATUS_LABEL).first
    try:
        text = (await label.inner_text(timeout=500)).strip() if await label.count() else ""
        return text.splitlines()[-1].strip() if text else ""  # the state icon's name comes first ("check")
    except Exception:  # noqa: BLE001 - the element was redrawn between count and read: ask again
        return ""


async def _generate(page, report: SessionReport, timeout: float, again: bool = False) -> bool:
    """Press Generate (``again``: Regenerate all, as Generate is off once the photo has captions) and follow
    the status label to its final text; records the wait and the duration. Names are matched whole: a
    card's "🔄 Regenerate" holds "generate" too."""
    before = await _status(page)
    clicked = time.monotonic()
    name = re.compile(r"^\W*Regenerate all$" if again else r"^\W*Generate$")
    await page.get_by_role("button", name=name).click()
    started = None
    deadline = clicked + timeout
    changed = not before
    while time.monotonic() < deadline:
        label = await _status(page)
        changed = changed or (label and label != before) or label.startswith(WAITING)
        if changed and label:
            if started is None and not label.startswith(WAITING):
                started = time.monotonic()
            if label.startswith(DONE):
                await _settle(page)
                report.waits.append(started - clicked)
                report.durations.append(time.monotonic() - clicked)
                return True
            if label.startswith("Your place in line lapsed"):
                report.errors.append(label)
                return False
        await asyncio.sleep(0.1)
    report.errors.append(f"no final status within {timeout:.0f} s (last: {label!r})")
    return False


async def _rate(page, number: int) -> bool:
    """Save the first caption as a favourite, then rate the first caption in the Gallery 4 stars."""
    step = "save a caption as favourite"
    try:
        await page.get_by_role("button", name="Save as favourite").first.click()
        await _settle(page)
        await page.get_by_text("Saved in the gallery").first.wait_for()
        step = "open the Gallery"
        await page.locator('[data-testid="stSidebarNavLink"]', has_text="Gallery").click()
        await _settle(page)
        step = "type the rater's name"
        name = page.get_by_label("Your name (for ratings)", exact=True)
        await name.fill(f"Load tester {number}")
        await name.press("Enter")
        await _settle(page)
        step = "click 4 stars"
        await page.get_by_role("radio", name="4 out of 5 stars").first.click()
        await _settle(page)
    except Exception as err:  # noqa: BLE001 - say which step of the rater's job failed
        raise RuntimeError(f"rating, at '{step}': {_short(err)}") from err
    return True


async def _errors_on(page) -> list[str]:
    boxes = page.locator(ERRORS)
    found = [(await boxes.nth(i).inner_text()).strip()[:200] for i in range(await boxes.count())]
    cards = await page.get_by_text("Captioning failed").count()
    return found + ([f"{cards} model card(s) say 'Captioning failed'"] if cards else [])
