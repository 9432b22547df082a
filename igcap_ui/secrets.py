"""Streamlit secrets → environment, so the package's one configuration story (env vars) covers hosting."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Any

import streamlit as st

# Keys the package reads from the environment; copying only these keeps unrelated secrets out of os.environ.
COPIED_PREFIXES = ("IGCAP_", "HF_", "TRANSFORMERS_")
COPIED_KEYS = {"DATABASE_URL"}


def read_secrets() -> dict[str, Any]:
    """st.secrets as a plain dict; {} when the app has no secrets file (the usual local case)."""
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets.toml, or one that does not parse: the app runs on its defaults
        return {}


def copy_secrets_to_env(secrets: Mapping[str, Any], env: MutableMapping[str, str] = os.environ) -> list[str]:
    """Copy top-level configuration keys from secrets into env; a variable already set wins."""
    copied = []
    for key, value in secrets.items():
        wanted = key in COPIED_KEYS or key.startswith(COPIED_PREFIXES)
        if wanted and not isinstance(value, Mapping) and key not in env:
            env[key] = str(value)
            copied.append(key)
    return copied
