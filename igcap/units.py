"""How sizes are written for people: binary units (1 MiB = 1024 × 1024 bytes), named as such."""

from __future__ import annotations

MIB = 1024 * 1024


def mib(nbytes: float, digits: int = 1) -> str:
    """'3.0 MiB' for 3 × 1024 × 1024 bytes; never 'MB' for a binary megabyte."""
    return f"{nbytes / MIB:,.{digits}f} MiB"
