"""Identical tensors kept once across loaded models (``TensorPool``, found by content hash).

Models fine-tuned from the same start share most tensors unchanged (the notebook's last-block runs
trained only GPT-2's last block, final norm and head), so a second such model costs only what differs.
"""

from __future__ import annotations

import hashlib
import weakref

from igcap.optimize.file_table import FileTable


def _torch():
    import torch

    return torch


class TensorPool:
    """Identical tensors seen across loaded models, kept once (found by a content hash).

    Entries are weak: when every model holding a tensor is gone, the tensor is freed too.
    ``saved_bytes`` counts what sharing avoided allocating since the pool was made.
    """

    def __init__(self):
        self._entries: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.saved_bytes = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_make(self, key: tuple, make, nbytes: int):
        """The pooled object for ``key``, or ``make()`` stored under it."""
        found = self._entries.get(key)
        if found is not None:
            self.saved_bytes += nbytes
            self.hits += 1
            return found
        made = make()
        self._entries[key] = made
        return made

    def keys_by_object(self) -> dict[int, tuple]:
        """id(pooled object) → its key (the int8 cache stores the keys beside the weights)."""
        return {id(obj): key for key, obj in list(self._entries.items())}


def content_key(kind: str, *tensors) -> tuple:
    """A hash of the tensors' dtypes, shapes and bytes (sha256: hardware-accelerated on most CPUs)."""
    h = hashlib.sha256(kind.encode())
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        if isinstance(t, FileTable):  # the same bytes, streamed from its file
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            for chunk in t.chunks():
                h.update(chunk)
            continue
        t = t.detach().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(_torch().uint8).numpy().data if t.numel() else b"")
    return (kind, h.hexdigest())



def share_tensors(model, pool: TensorPool) -> int:
    """Point every parameter and buffer at the pool's copy of identical content; returns bytes saved.

    A tensor that appears under several names (tied weights) is looked up once, so ties survive.
    """
    replaced: dict[int, object] = {}
    saved_before = pool.saved_bytes
    for module in model.modules():
        if getattr(module, "from_pool", False):  # the int8 modules: their tensors came from the pool when made
            continue
        for store in (module._parameters, module._buffers):
            for name, tensor in store.items():
                if tensor is None or tensor.device.type == "meta":
                    continue
                if id(tensor) not in replaced:
                    nbytes = tensor.numel() * tensor.element_size()
                    replaced[id(tensor)] = pool.get_or_make(content_key("tensor", tensor), lambda t=tensor: t, nbytes)
                store[name] = replaced[id(tensor)]
    return pool.saved_bytes - saved_before
