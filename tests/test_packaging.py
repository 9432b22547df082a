"""igcap as a distribution: build the wheel, install it into a fresh virtual environment, run the `igcap`
command from outside the checkout on tiny offline models.

Offline: the wheel is built with the setuptools already installed (no build isolation, no index), and the
fresh environment reaches the project's already-installed dependencies through a .pth file, so nothing is
downloaded; igcap itself comes only from the wheel (checked).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.builders import REAL_REPOS, photo_bytes

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kwargs)
    assert done.returncode == 0, (cmd, done.stdout[-2000:], done.stderr[-2000:])
    return done


def copy_sources(src: Path) -> Path:
    """A copy of what a distribution is built from, tests/ included (the checkout gets no build/ or egg-info)."""
    for name in ("igcap", "db", "tests", "LICENSES"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "MANIFEST.in", "README.md", "NOTICE"):
        shutil.copy(ROOT / name, src / name)
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the tracked sources."""
    src, dist = copy_sources(tmp_path_factory.mktemp("src")), tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(dist), str(src)])
    [built] = dist.glob("igcap-*.whl")
    return built


def test_the_sdist_holds_the_sources_and_no_tests(tmp_path):
    """The sdist shipped tests/test_import_graph.py, test_licences.py and test_packaging.py (setuptools adds
    tests/test*.py by default) without tests/builders.py and conftest.py they import: tests that cannot run.
    The tests need the checkout (the dashboard, builders, fixtures): none is in the sdist."""
    import tarfile

    src, dist = copy_sources(tmp_path / "src"), tmp_path / "dist"
    run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"], cwd=src)
    [built] = dist.glob("igcap-*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(built).getnames() if "/" in name}
    assert not any(name == "tests" or name.startswith("tests/") for name in names), sorted(names)
    sources = {p.relative_to(ROOT).as_posix() for folder in ("igcap", "db") for p in (ROOT / folder).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert sources | {"pyproject.toml", "README.md", "NOTICE", "LICENSES/Apache-2.0.txt"} <= names


@pytest.mark.slow
def test_the_wheel_holds_the_packages_migrations_and_console_script(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(ROOT).as_posix() for folder in ("igcap", "db") for p in (ROOT / folder).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert {"igcap/__main__.py", "igcap/cli/caption.py", "db/alembic.ini", "db/migrations/env.py",
            "db/migrations/script.py.mako", "db/migrations/versions/0001_initial_schema.py"} <= sources
    assert sources <= names  # every module, sub-package, migration and data file of igcap/ and db/
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "igcap = igcap.cli:main" in entry_points
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("torch") and "<" in r for r in requires)  # ranges, not pins
    assert not any("==" in r for r in requires)
    assert not any(n.startswith(("app_pages/", "igcap_ui/", "tests/")) for n in names)
    # Apache-2.0 §4: code adapted from transformers ships with its notice and licence
    assert {f"{dist_info}/licenses/NOTICE", f"{dist_info}/licenses/LICENSES/Apache-2.0.txt"} <= names


@pytest.mark.slow
def test_installed_wheel_runs_igcap_outside_the_checkout(wheel, tmp_path, hub_cache):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site_dir = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # The project's dependencies, already installed, without downloading them again. A plain path line: after
    # this environment's own site-packages, and without running that folder's .pth files (an editable igcap
    # installed there would otherwise shadow the wheel).
    (site_dir / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    igcap = venv / "bin" / "igcap"
    assert igcap.is_file()

    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "beach.jpg").write_bytes(photo_bytes("JPEG", colour="blue"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("IGCAP_")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub_cache), IGCAP_DATA_DIR=str(tmp_path / "data"),
               IGCAP_DEMO_MODELS_DIR=str(tmp_path / "no-demo-models"), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
    go = lambda *args: run([str(igcap), *args], cwd=work, env=env)  # noqa: E731

    where = run([str(python), "-c", "import igcap, db; print(igcap.__file__); print(db.__file__)"], cwd=work, env=env)
    assert all(Path(line).is_relative_to(site_dir) for line in where.stdout.split()), where.stdout
    assert go("--version").stdout.strip() == "igcap 0.1.0"

    models = json.loads(go("models", "--json").stdout)
    assert [m["key"] for m in models][:4] == list(REAL_REPOS) and all(m["available"] for m in models[:4])

    key = next(iter(REAL_REPOS))
    out = json.loads(go("caption", "beach.jpg", "--models", key, "--preset", "fast", "--max-new-tokens", "5",
                        "--json").stdout)
    [row] = out["captions"]
    assert (row["photo"], row["model"], out["errors"]) == ("beach.jpg", key, [])
    assert {"over_limit_chars", "over_limit_hashtags"} <= set(row)

    # loadtest drives the dashboard, which is not in the wheel: it says so (it failed with streamlit's
    # "File does not exist: streamlit_app.py" from site-packages).
    refused = subprocess.run([str(igcap), "loadtest", "--sessions", "1"], capture_output=True, text=True, cwd=work,
                             env=env, timeout=60)
    assert refused.returncode == 2 and "runs from a checkout" in refused.stderr and "Traceback" not in refused.stderr

    # The Alembic migrations run from site-packages: a fresh SQLite database is created and upgraded.
    go("export", "--out", "rated.csv", "--include-unrated")
    assert (work / "rated.csv").is_file() and (tmp_path / "data" / "igcap.sqlite3").is_file()
    assert not (site_dir / "data").exists()


def test_default_data_folder_is_the_checkouts_or_the_users_never_site_packages(tmp_path, monkeypatch):
    """igcap.config and db.engine apply one rule (db may not import igcap, so each holds it; they must agree)."""
    from db import engine
    from igcap import config

    assert config.default_data_dir() == engine.default_data_dir() == ROOT / "data"  # this checkout
    installed = tmp_path / "site-packages"
    installed.mkdir()
    monkeypatch.setattr(config, "PROJECT_ROOT", installed)
    monkeypatch.setattr(engine, "PROJECT_ROOT", installed)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.default_data_dir() == engine.default_data_dir() == tmp_path / "xdg" / "igcap"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert config.default_data_dir() == engine.default_data_dir() == Path.home() / ".local" / "share" / "igcap"
    monkeypatch.delenv("IGCAP_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert engine.resolve_url({}).endswith(str(tmp_path / "xdg" / "igcap" / "igcap.sqlite3"))
    assert config.Settings.from_env({}).data_dir == tmp_path / "xdg" / "igcap"


def test_the_readme_installs_the_wheel_where_pip_wheel_writes_it():
    """The README said `pip install igcap-0.1.0-py3-none-any.whl` after `pip wheel … -w dist .`: no such file
    in the folder it is run from."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip wheel --no-deps -w dist ." in readme
    assert f"pip install dist/igcap-{version}-py3-none-any.whl" in readme
