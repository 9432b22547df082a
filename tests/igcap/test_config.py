"""One reader of the environment: igcap.config.Settings."""

from pathlib import Path

import pytest

from igcap.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
# Who may touch os.environ besides Settings: torchrun's RANK/WORLD_SIZE (train), the secrets copied into the
# environment (igcap_ui.secrets), the benchmark's child processes (bench), the load test's app process (loadtest).
ALLOWED = {"igcap/config.py", "igcap/train.py", "igcap_ui/secrets.py", "igcap/bench.py", "igcap/loadtest.py"}


def test_settings_read_the_database_url_the_data_folder_and_the_threads(tmp_path):
    s = Settings.from_env({"DATABASE_URL": " postgresql://h/db ", "IGCAP_DATA_DIR": str(tmp_path),
                           "IGCAP_THREADS": "3"})
    assert (s.database_url, s.data_dir, s.threads) == ("postgresql://h/db", tmp_path, 3)
    assert (Settings.from_env({}).database_url, Settings.from_env({}).threads) == (None, None)


def test_bad_thread_setting_names_the_key():
    with pytest.raises(ConfigError, match="IGCAP_THREADS"):
        Settings.from_env({"IGCAP_THREADS": "lots"})


@pytest.mark.parametrize("raw, expected", [(None, True), ("auto", True), ("1", True), ("0", False), ("off", False)])
def test_the_lean_decoding_switch_is_on_unless_turned_off(raw, expected):
    assert Settings.from_env({} if raw is None else {"IGCAP_LEAN_DECODING": raw}).lean_decoding is expected


def test_only_settings_read_the_environment():
    readers = {str(p.relative_to(ROOT)) for folder in ("igcap", "igcap_ui", "app_pages") for p in (ROOT / folder).rglob("*.py")
               if "os.environ" in p.read_text(encoding="utf-8") or "getenv" in p.read_text(encoding="utf-8")}
    assert readers <= ALLOWED
    assert "igcap/config.py" in readers


def test_the_app_opens_the_database_settings_name(tmp_path):
    from db.engine import database_url

    assert database_url(None, None, tmp_path) == f"sqlite:///{(tmp_path / 'igcap.sqlite3').resolve()}"
    assert database_url("postgres://u@h/db", None, tmp_path) == "postgresql+psycopg://u@h/db"


def test_path_settings_lose_spaces_around_them_and_blank_is_unset(tmp_path):
    settings = Settings.from_env({"IGCAP_DATA_DIR": f"  {tmp_path}/data ", "IGCAP_MODELS_DIR": " ",
                                  "IGCAP_INT8_CACHE_DIR": f"{tmp_path}/int8\t"})
    assert settings.data_dir == tmp_path / "data" and settings.int8_cache_dir == tmp_path / "int8"
    assert settings.models_dir is None
