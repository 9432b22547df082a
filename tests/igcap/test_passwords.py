"""Password hashes whose cost parameters are stronger than the default, up to the memory igcap allows."""

from __future__ import annotations

import pytest

from igcap.passwords import MAX_MEMORY, PasswordHashError, hash_password, parse_hash, verify_password


def test_a_stronger_hash_than_the_default_is_made_and_checked():
    stored = hash_password("team password", n=2**17, r=8, p=1)  # OWASP's scrypt advice: 128 MiB
    assert verify_password("team password", stored)
    assert not verify_password("team passworD", stored)


def test_a_hash_needing_more_memory_than_allowed_is_refused_before_any_work():
    stored = hash_password("pw", n=2**4, r=1, p=1).split("$")
    stored[1:3] = [str(2**20), "8"]  # 1 GiB per check: one sign-in per visitor could exhaust the server
    with pytest.raises(PasswordHashError, match="MiB.*hash-password"):
        parse_hash("$".join(stored))
    with pytest.raises(PasswordHashError, match="hash-password"):
        hash_password("pw", n=2**20, r=8, p=1)
    assert MAX_MEMORY == 256 * 1024 * 1024
