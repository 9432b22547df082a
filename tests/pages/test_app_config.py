"""App-wide wiring: upload limit, secrets → environment, a light first render."""

import subprocess
import sys
import tomllib

from igcap.images import MAX_UPLOAD_MB
from igcap_ui.secrets import copy_secrets_to_env
from tests.pages.conftest import ROOT, shown


def test_upload_limit_matches_the_engine():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB


def test_streamlit_reads_the_project_settings_and_collects_no_garbage_after_each_run():
    """The project's config.toml is what `streamlit run` reads (a misspelt key would be ignored with a
    warning): no full collection after every script run, which stalled the server behind a burst of clicks."""
    script = ("from streamlit import config\n"
              "print(config.get_option('runner.postScriptGC'), config.get_option('server.maxUploadSize'),\n"
              "      config.get_option('client.toolbarMode'))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT / "no-home")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", str(MAX_UPLOAD_MB), "viewer"]  # viewer: no Deploy button for visitors


def test_example_secrets_parse_and_name_known_keys_and_copied_as_is_keep_the_default_database():
    # Copied as is (its first line says to), the example's active placeholder URL sent the app to a host
    # named HOST: "The database is busy or unreachable" on every page. Every database setting is commented.
    text = (ROOT / ".streamlit" / "secrets.toml.example").read_text()
    example = tomllib.loads(text)
    assert "connections" not in example and "DATABASE_URL" not in example
    assert "IGCAP_MAX_LOADED_MODELS" in example
    shown = tomllib.loads("\n".join(line.removeprefix("# ") for line in text.splitlines()
                                    if line.startswith(("# [connections", "# url = "))))
    assert shown["connections"]["igcap"]["url"].startswith("postgresql+psycopg://")


def test_configuration_secrets_are_copied_over_the_environment():
    env = {"IGCAP_DEVICE": "cpu"}
    secrets = {"DATABASE_URL": "postgresql://x", "IGCAP_DEVICE": "cuda", "IGCAP_MAX_LOADED_MODELS": 2,
               "connections": {"igcap": {"url": "sqlite://"}}, "api_token": "not ours"}
    copied = copy_secrets_to_env(secrets, env)
    assert sorted(copied) == ["DATABASE_URL", "IGCAP_DEVICE", "IGCAP_MAX_LOADED_MODELS"]
    assert env == {"IGCAP_DEVICE": "cuda", "DATABASE_URL": "postgresql://x", "IGCAP_MAX_LOADED_MODELS": "2"}


def test_a_secret_wins_over_the_environment_whatever_its_toml_type(tmp_path, monkeypatch):
    """Read from a file as `streamlit run` reads it: Streamlit copies text and number secrets over the
    environment itself, so "the environment wins" held only for booleans; every key follows the secret now."""
    import os

    import streamlit as st
    from streamlit import config

    from igcap.config import Settings
    from igcap_ui.secrets import read_secrets

    path = tmp_path / "secrets.toml"
    path.write_text('IGCAP_MAX_LOADED_MODELS = "4"\nIGCAP_JOBS_PER_SESSION = 3\nIGCAP_WARM_START = false\n')
    for key, value in {"IGCAP_MAX_LOADED_MODELS": "2", "IGCAP_JOBS_PER_SESSION": "1", "IGCAP_WARM_START": "1"}.items():
        monkeypatch.setenv(key, value)
    before = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])
    st.secrets._reset()
    try:
        copy_secrets_to_env(read_secrets(), os.environ)
        settings = Settings.from_env()
        assert (settings.max_loaded_models, settings.jobs_per_session, settings.warm_start) == (4, 3, False)
    finally:
        config.set_option("secrets.files", before)
        st.secrets._reset()


def test_first_page_renders_without_importing_torch(tmp_path):
    """Nothing heavy at start: the Create page's first run neither loads a model nor imports torch."""
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(ROOT / 'streamlit_app.py')!r}, default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "assert at.title[0].value.startswith('✍️ Create')\n"
        "print('torch' in sys.modules)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "IGCAP_DATA_DIR": str(tmp_path),
           "HF_HUB_CACHE": str(tmp_path / "hub"), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_bad_database_url_is_a_message_not_a_stack_trace(app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, open_page

    monkeypatch.setenv("DATABASE_URL", "definitely not a url")
    at = open_page(AppTest.from_file(APP, default_timeout=60).run(), "gallery.py")
    assert not at.exception
    assert any("DATABASE_URL" in shown(e.value) for e in at.error)


def test_an_unexpected_error_shows_no_stack_trace(app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from igcap_ui import resources
    from tests.pages.conftest import APP, open_page

    def broken():
        raise RuntimeError("internal detail")

    monkeypatch.setattr(resources, "db_engine", broken)
    at = open_page(AppTest.from_file(APP, default_timeout=60).run(), "evaluation.py")
    assert not at.exception
    [error] = at.error
    assert "RuntimeError" in error.value and "internal detail" not in error.value


def test_the_entry_script_runs_on_every_rerun(app_env, monkeypatch):
    """The sign-in gate, navigation by role and the error guard live in streamlit_app.py, so it must run on
    every rerun. With the pages in a folder named pages/ Streamlit ran its older multipage mode whenever it
    had not yet seen st.navigation (AppTest on every run after the first): the page alone ran, without them."""
    from streamlit.testing.v1 import AppTest

    from igcap_ui import access
    from tests.pages.conftest import APP, ROOT, open_page

    calls = []
    real_gate = access.gate
    monkeypatch.setattr(access, "gate", lambda: calls.append(1) or real_gate())
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.run()
    open_page(at, "gallery.py")
    assert len(calls) == 3
    assert not (ROOT / "pages").exists()


def test_the_create_page_says_on_every_run_that_the_database_cannot_be_opened(app_env, monkeypatch, tmp_path):
    """Saving needs the database: the Create page said so on its first run only (its hashtag sets remember
    the failure), and from the second run nothing showed until a save failed."""
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{blocker / 'db.sqlite3'}")
    at = AppTest.from_file(APP, default_timeout=60).run()
    for _ in range(2):
        assert not at.exception
        assert at.title[0].value.startswith("✍️")  # the page still works: generating needs no database
        assert len([e for e in at.error if "a-file" in shown(e.value)]) == 1, [shown(e.value) for e in at.error]
        at = at.run()
