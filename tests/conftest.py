"""Test-wide setup: never touch the network, and give every test the tiny-model fixtures.

The hub cache location and offline mode are read by huggingface_hub at import time, so they are
set here, before anything imports it.
"""

import os
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="igcap-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_CACHE"] = str(_SESSION_DIR / "hub")
os.environ["HF_HOME"] = str(_SESSION_DIR / "hf-home")
os.environ.setdefault("IGCAP_DATA_DIR", str(_SESSION_DIR / "data"))
# In-process app tests load models when a test asks (tests/pages/test_warm_start.py turns the background
# warm-up on; the browser tests' servers run with the default, on).
os.environ["IGCAP_WARM_START"] = "0"
# No user configuration leaks into the tests.
for _key in [k for k in os.environ if k.startswith("IGCAP_MODEL") or k == "DATABASE_URL"]:
    del os.environ[_key]

import pytest  # noqa: E402

from tests import builders  # noqa: E402


@pytest.fixture(scope="session")
def hub_cache() -> Path:
    """The process-wide HF cache (HF_HUB_CACHE), filled with tiny models under the real repo ids."""
    cache = Path(os.environ["HF_HUB_CACHE"])
    if not (cache / "models--gpt2").exists():
        builders.fill_hub_cache(cache, _SESSION_DIR / "tiny-sources")
    return cache


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A tiny model saved with tokenizer and image processor, in the form of a published repo."""
    return builders.save_tiny_model(_SESSION_DIR / "tiny-model", seed=0)


@pytest.fixture(scope="session")
def tokenizer():
    return builders.make_tokenizer()
