"""One configuration story: environment variables (the app copies Streamlit secrets into them).

A user who sets nothing gets SQLite in ./data, the four hub models, lazy loading, int8 weights on CPU.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from igcap.instagram import InstagramLimits
from igcap.threads import THREADS_ENV, parse_threads

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """``data/`` in a checkout (beside pyproject.toml); installed from a wheel, the user's data folder
    (``$XDG_DATA_HOME/igcap``, default ``~/.local/share/igcap``), never site-packages.
    db.engine.default_data_dir applies the same rule (db does not import igcap; a test checks they agree)."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "data"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "igcap"


DEVICES = ("auto", "cpu", "cuda", "mps")
DEFAULT_INT8_CACHE_MB = 4096  # four full-size models' prepared int8 weights take about 1.3 GB


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and what is allowed."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: default_data_dir())  # IGCAP_DATA_DIR: SQLite file, demo models
    database_url: str | None = None  # DATABASE_URL: None = the SQLite file in data_dir (or the app's secrets)
    models_dir: Path | None = None  # IGCAP_MODELS_DIR: one sub-folder per model key (downloaded weights)
    models_file: Path | None = None  # IGCAP_MODELS_FILE: TOML with [models.<key>] overrides and extras
    demo_models_dir: Path | None = None  # IGCAP_DEMO_MODELS_DIR: demo models (default data_dir/demo-models)
    source_overrides: Mapping[str, str] | None = None  # IGCAP_MODEL_<KEY>: hub id or local directory
    max_loaded_models: int = 4  # IGCAP_MAX_LOADED_MODELS: the model cache's count bound
    memory_budget_mb: int | None = None  # IGCAP_MODEL_MEMORY_MB: the model cache's memory bound
    device: str = "auto"  # IGCAP_DEVICE: auto, cpu, cuda, mps
    quantize: bool | None = None  # IGCAP_QUANTIZE: None = auto (int8 on CPU only)
    threads: int | None = None  # IGCAP_THREADS: torch threads for captioning; None = auto (every allowed core)
    lean_decoding: bool = True  # IGCAP_LEAN_DECODING: greedy captions through igcap.lean_decoding (0 = generate)
    hub_endpoint: str | None = None  # HF_ENDPOINT: the hub address huggingface_hub uses (None = its default)
    int8_cache_dir: Path | None = None  # IGCAP_INT8_CACHE_DIR: prepared int8 weights (default data_dir/int8-cache)
    int8_cache_mb: int = DEFAULT_INT8_CACHE_MB  # IGCAP_INT8_CACHE_MB: the int8 cache's size bound; 0 switches it off
    instagram: InstagramLimits = InstagramLimits()  # IGCAP_INSTAGRAM_*: Instagram's caption limits
    jobs_at_once: int | None = None  # IGCAP_JOBS_AT_ONCE: generations running together; None = auto (1 on CPU)
    jobs_per_session: int = 2  # IGCAP_JOBS_PER_SESSION: generations one session may have waiting or running
    max_captions_per_job: int = 100  # IGCAP_MAX_CAPTIONS_PER_JOB: photos × models × variants in one generation
    max_batch_rows: int = 16  # IGCAP_MAX_BATCH_ROWS: sequences decoded together (photos × beams): a job's memory
    warm_start: bool = True  # IGCAP_WARM_START: the app loads the Create page's models in the background (0 = on first use)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ConfigError(f"IGCAP_DEVICE must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.max_loaded_models < 1:
            raise ConfigError("IGCAP_MAX_LOADED_MODELS must be at least 1")
        if self.memory_budget_mb is not None and self.memory_budget_mb < 1:
            raise ConfigError("IGCAP_MODEL_MEMORY_MB must be a positive number of megabytes")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"{THREADS_ENV} must be auto or a whole number of at least 1")
        if self.int8_cache_mb < 0:
            raise ConfigError("IGCAP_INT8_CACHE_MB must be 0 (off) or a positive number of megabytes")
        for key, value in (("IGCAP_JOBS_AT_ONCE", self.jobs_at_once), ("IGCAP_JOBS_PER_SESSION", self.jobs_per_session),
                           ("IGCAP_MAX_CAPTIONS_PER_JOB", self.max_captions_per_job),
                           ("IGCAP_MAX_BATCH_ROWS", self.max_batch_rows)):
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be at least 1")

    @property
    def demo_dir(self) -> Path:
        return self.demo_models_dir or self.data_dir / "demo-models"

    @property
    def int8_cache_folder(self) -> Path:
        return self.int8_cache_dir or self.data_dir / "int8-cache"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        # spaces around a path are a typing slip ("/srv/igcap " was a folder with a space at the end); blank = unset
        path = lambda key: Path(env[key].strip()).expanduser() if env.get(key, "").strip() else None  # noqa: E731
        return cls(
            data_dir=path("IGCAP_DATA_DIR") or default_data_dir(),
            database_url=env.get("DATABASE_URL", "").strip() or None,
            models_dir=path("IGCAP_MODELS_DIR"),
            models_file=path("IGCAP_MODELS_FILE"),
            demo_models_dir=path("IGCAP_DEMO_MODELS_DIR"),
            source_overrides=source_overrides(env),
            max_loaded_models=_int(env, "IGCAP_MAX_LOADED_MODELS", 4),
            memory_budget_mb=_int(env, "IGCAP_MODEL_MEMORY_MB", None),
            device=env.get("IGCAP_DEVICE", "auto").strip().lower() or "auto",
            quantize=_tristate(env, "IGCAP_QUANTIZE"),
            threads=_threads(env),
            lean_decoding=_tristate(env, "IGCAP_LEAN_DECODING") is not False,
            hub_endpoint=env.get("HF_ENDPOINT", "").strip() or None,
            int8_cache_dir=path("IGCAP_INT8_CACHE_DIR"),
            int8_cache_mb=_int(env, "IGCAP_INT8_CACHE_MB", DEFAULT_INT8_CACHE_MB),
            instagram=instagram_limits(env),
            jobs_at_once=None if env.get("IGCAP_JOBS_AT_ONCE", "").strip().lower() == "auto"
            else _int(env, "IGCAP_JOBS_AT_ONCE", None),
            jobs_per_session=_int(env, "IGCAP_JOBS_PER_SESSION", 2),
            max_captions_per_job=_int(env, "IGCAP_MAX_CAPTIONS_PER_JOB", 100),
            max_batch_rows=_int(env, "IGCAP_MAX_BATCH_ROWS", 16),
            warm_start=_tristate(env, "IGCAP_WARM_START") is not False,
        )


INSTAGRAM_KEYS = {  # environment key → InstagramLimits field
    "IGCAP_INSTAGRAM_MAX_CHARS": "max_chars",
    "IGCAP_INSTAGRAM_MAX_HASHTAGS": "max_hashtags",
    "IGCAP_INSTAGRAM_PREVIEW_CHARS": "preview_chars",
    "IGCAP_INSTAGRAM_MAX_MENTIONS": "max_mentions",
}


def instagram_limits(env: Mapping[str, str] | None = None) -> InstagramLimits:
    """Instagram's limits (igcap.instagram), each overridable by its IGCAP_INSTAGRAM_* key."""
    env = os.environ if env is None else env
    defaults = InstagramLimits()
    values = {field: _int(env, key, getattr(defaults, field)) for key, field in INSTAGRAM_KEYS.items()}
    for key, field in INSTAGRAM_KEYS.items():
        if values[field] < 1:
            raise ConfigError(f"{key} must be a whole number of 1 or more, not {values[field]}")
    return InstagramLimits(**values)


MODEL_VARIABLE_PREFIX = "IGCAP_MODEL_"


def env_key(model_key: str) -> str:
    """The override variable for a model key: vit-gpt2-all → IGCAP_MODEL_VIT_GPT2_ALL."""
    return MODEL_VARIABLE_PREFIX + "".join(c if c.isalnum() else "_" for c in model_key).upper()


def key_of_variable(variable: str) -> str:
    """The key of the model an IGCAP_MODEL_<KEY> variable adds (one the registry does not hold already):
    IGCAP_MODEL_MY_MODEL → my-model. Not always env_key's inverse: env_key("My_Model") names a model whose key
    is my-model."""
    return variable.removeprefix(MODEL_VARIABLE_PREFIX).lower().replace("_", "-")


def source_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """IGCAP_MODEL_<KEY>=source pairs, keyed by the variable's suffix (matched to model keys later)."""
    prefix = MODEL_VARIABLE_PREFIX
    skip = {"IGCAP_MODEL_MEMORY_MB"}
    return {k: v for k, v in env.items() if k.startswith(prefix) and k not in skip and v.strip()}


def _int(env: Mapping[str, str], key: str, default: int | None) -> int | None:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, not {raw!r}") from None


def _threads(env: Mapping[str, str]) -> int | None:
    try:
        return parse_threads(env.get(THREADS_ENV))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _tristate(env: Mapping[str, str], key: str) -> bool | None:
    raw = env.get(key, "auto").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be auto, 1 or 0, not {raw!r}")
