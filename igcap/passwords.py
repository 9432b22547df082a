"""Salted password hashes for the app's password gate (scrypt from the standard library).

A hash looks like ``scrypt$32768$8$1$<salt, base64>$<key, base64>``: the cost parameters travel with
it, so raising them later keeps old hashes valid. Only hashes go in the secrets, never passwords;
``python -m igcap hash-password`` makes one. Checking compares in constant time (hmac.compare_digest).
One check may use up to MAX_MEMORY (256 MiB: N=2**17, r=8, OWASP's advice, fits; the default takes 32 MiB);
a hash that would need more is refused as a configuration mistake, since every sign-in would pay it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

SCHEME = "scrypt"
N, R, P = 2**15, 8, 1  # about 32 MiB and a tenth of a second per check: slow to guess, fine to sign in
KEY_BYTES = 32
SALT_BYTES = 16
MIN_LENGTH = 8
MAX_MEMORY = 256 * 1024 * 1024  # the most one check may use: each sign-in pays it, several at once add up
_MARGIN = 1024 * 1024  # OpenSSL's bookkeeping beyond scrypt's own arrays


class PasswordHashError(ValueError):
    """A stored hash that is not one this module wrote (a configuration mistake in the secrets)."""


def hash_password(password: str, *, salt: bytes | None = None, n: int = N, r: int = R, p: int = P) -> str:
    """A new salted hash of ``password`` (a fresh random salt unless one is given)."""
    if not isinstance(password, str) or not password:
        raise ValueError("the password cannot be empty")
    _check_memory(n, r, p)
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = _derive(password, salt, n, r, p)
    return "$".join([SCHEME, str(n), str(r), str(p), _b64(salt), _b64(key)])


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; raises PasswordHashError when ``stored`` is malformed."""
    n, r, p, salt, expected = parse_hash(stored)
    key = _derive(password or "", salt, n, r, p)
    return hmac.compare_digest(key, expected)


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = str(stored or "").strip().split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashError("a password hash must look like scrypt$N$r$p$salt$key "
                                "(make one with: python -m igcap hash-password)")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError as err:
        raise PasswordHashError(f"the password hash is damaged ({err}); make a new one with "
                                "python -m igcap hash-password") from err
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or not salt or len(key) < 16:
        raise PasswordHashError("the password hash has impossible parameters; make a new one with "
                                "python -m igcap hash-password")
    _check_memory(n, r, p)
    return n, r, p, salt, key


def _memory(n: int, r: int, p: int) -> int:
    """Bytes scrypt allocates for one check: 128·r·N for its table plus 128·r·p for its blocks."""
    return 128 * r * (n + 2 + p)


def _check_memory(n: int, r: int, p: int) -> None:
    if _memory(n, r, p) > MAX_MEMORY:
        raise PasswordHashError(
            f"the password hash needs {_memory(n, r, p) // 2**20} MiB for every sign-in (scrypt N={n}, r={r}), "
            f"more than igcap allows ({MAX_MEMORY // 2**20} MiB); make a cheaper one with "
            "python -m igcap hash-password (N=32768, r=8), or one with N×r at most 2**20")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_memory(n, r, p) + _MARGIN,
                          dklen=KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.cache
def dummy_hash() -> str:
    """A hash of nothing anyone can type, checked when a name has no hash of its own, so a wrong name takes
    as long as a wrong password (no timing hint about which names exist)."""
    return hash_password("\x00unused\x00", salt=b"igcap-dummy-salt")
