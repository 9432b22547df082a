"""How sizes are written for people: binary units (1 MiB = 1024 × 1024 bytes), named as such."""

from __future__ import annotations

MIB = 1024 * 1024


def mib(nbytes: float, digits: int = 1) -> str:
    """'3.0 MiB' for 3 × 1024 × 1024 bytes; never 'MB' for a binary megabyte."""
    return f"{nbytes / MIB:,.{digits}f} MiB"


def size(nbytes: float) -> str:
    """A memory or file size with a unit that keeps it readable: '340 KiB', '2.4 MiB', '913 MiB', '1.27 GiB'
    (a tiny model is not '0 MB')."""
    if nbytes < MIB:
        return f"{nbytes / 1024:,.0f} KiB"
    if nbytes < 1024 * MIB:
        return mib(nbytes, 1 if nbytes < 10 * MIB else 0)
    return f"{nbytes / (1024 * MIB):,.2f} GiB"
