"""A bfloat16 token table whose rows stay in the int8 cache's entry file and are read a few per step.

A GPT-2 token table is 77 MiB in bfloat16, four of them a fifth of the process; decoding reads only the
rows it looks up (one per sequence) or rescores (16 per sequence, ``RescoredHead``). Not mapped: on this
kernel (6.18, ext4 large folios) a fault maps the whole folio, and 100 random rows of a mapped entry made
31 MB of it resident, an eight-photo caption nearly the whole table. So the rows are read with ``pread``
into fresh memory: the file's pages sit in the page cache (the host's memory, shared, dropped under
pressure), not in the process's. The descriptor is the one the entry was checked through, kept open:
the cache's writers only rename a new file over an entry or unlink it, so the rows read are always the
checked bytes, after an eviction or a rebuild too, and no mapping can fault (SIGBUS) on a cut file.
"""

from __future__ import annotations

import os
import weakref
import zlib

CHUNK = 4 << 20  # bytes read at a time to check or copy the whole table


def _torch():
    import torch

    return torch


class FileTable:
    """A read-only (rows, dim) bfloat16 table at ``offset`` in the open file ``fd`` (a duplicate is kept)."""

    def __init__(self, fd: int, offset: int, shape, pool_key: tuple | None = None):
        self.fd = os.dup(fd)
        self._close = weakref.finalize(self, os.close, self.fd)
        self.offset, self.shape, self.pool_key = offset, tuple(int(s) for s in shape), pool_key
        self.dtype = _torch().bfloat16
        self.row_bytes = self.shape[1] * 2

    def numel(self) -> int:
        return self.shape[0] * self.shape[1]

    def element_size(self) -> int:
        return 2

    @property
    def nbytes(self) -> int:
        return self.numel() * 2

    def rows(self, ids):
        """``table[ids]`` (bfloat16, shape ids.shape + (dim,)): each distinct row read once.

        Decoding calls this twice a step with a few ids (the next tokens; the head's 16 candidates per
        sequence), so it stays in plain Python for them: a ``torch.unique`` and its gather cost more than
        the reads (54 → 30 µs a call for 16 ids, 27 → 9 µs for one)."""
        torch = _torch()
        wanted = ids.reshape(-1).tolist()
        slot = dict.fromkeys(wanted)  # each distinct id once, in the order first seen
        if any(not 0 <= row < self.shape[0] for row in slot):
            raise IndexError(f"token id out of range for a table of {self.shape[0]} rows")
        out = torch.empty((len(slot), self.shape[1]), dtype=torch.bfloat16)
        buf = out.view(torch.uint8).numpy()
        for i, row in enumerate(slot):
            slot[row] = i
            if os.preadv(self.fd, [buf[i]], self.offset + row * self.row_bytes) != self.row_bytes:
                raise OSError("the token table's file is shorter than when it was checked")
        if len(slot) != len(wanted):
            out = out[torch.tensor([slot[row] for row in wanted], dtype=torch.long)]
        return out.reshape(*ids.shape, self.shape[1])

    def chunks(self, buffer=None):
        """The table's bytes, CHUNK at a time, through one reusable buffer (never all resident at once)."""
        total = self.nbytes
        buffer = buffer if buffer is not None else bytearray(min(CHUNK, total) or 1)
        view = memoryview(buffer)
        done = 0
        while done < total:
            want = min(len(buffer), total - done)
            got = os.preadv(self.fd, [view[:want]], self.offset + done)
            if got != want:
                raise OSError("the token table's file is shorter than its header says")
            yield view[:want]
            done += want

    def crc32(self) -> int:
        crc = 0
        for chunk in self.chunks():
            crc = zlib.crc32(chunk, crc)
        return crc

    def materialize(self):
        """The whole table in memory (to write it into a new entry)."""
        torch = _torch()
        out = torch.empty(self.shape, dtype=torch.bfloat16)
        buf = memoryview(out.view(torch.uint8).numpy().reshape(-1))
        done = 0
        for chunk in self.chunks():
            buf[done:done + len(chunk)] = chunk
            done += len(chunk)
        return out

    def __repr__(self) -> str:
        return f"FileTable({self.shape[0]}, {self.shape[1]}, bfloat16, read from its file)"


def lookup(table, ids):
    """Rows ``ids`` of a token table, in memory (a tensor) or in its file (a FileTable); same values."""
    if isinstance(table, FileTable):
        return table.rows(ids)
    return _torch().nn.functional.embedding(ids, table)
