"""Streamlit secrets → environment, so the package's one configuration story (env vars) covers hosting."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

# Keys the package reads from the environment. (Streamlit itself copies every top-level text or number secret
# into os.environ when it reads the secrets, over a variable already set; igcap copies its own keys whatever
# their TOML type, booleans too, by the same rule: the secret wins.)
COPIED_PREFIXES = ("IGCAP_", "HF_", "TRANSFORMERS_")
COPIED_KEYS = {"DATABASE_URL"}


class SecretsError(Exception):
    """A secrets file exists but cannot be read: the app must not run as if none had been given (its sign-in
    and database settings would be silently dropped, and everyone let in as the owner)."""


def read_secrets() -> dict[str, Any]:
    """st.secrets as a plain dict; {} when the app has no secrets file (the usual local case). A file that
    does not parse raises SecretsError (access.gate then keeps the app closed and says why)."""
    try:
        return st.secrets.to_dict()
    except Exception as err:  # noqa: BLE001 - whatever else it is, running on the defaults would be worse
        if isinstance(err, StreamlitSecretNotFoundError) and getattr(err, "error_id", None) == "no-secrets-found":
            return {}
        raise SecretsError(f"the secrets cannot be read: {err}") from err


def copy_secrets_to_env(secrets: Mapping[str, Any], env: MutableMapping[str, str] = os.environ) -> list[str]:
    """Copy top-level configuration keys from secrets into env, over a variable already set: the rule Streamlit
    applies to text and number secrets before igcap sees them, so every key follows one rule (a TOML boolean,
    which Streamlit leaves out, followed the environment while a number followed the secret)."""
    copied = []
    for key, value in secrets.items():
        wanted = key in COPIED_KEYS or key.startswith(COPIED_PREFIXES)
        if wanted and not isinstance(value, Mapping):
            env[key] = str(value)
            copied.append(key)
    return copied
