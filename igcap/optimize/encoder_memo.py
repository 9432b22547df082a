"""Image-encoder outputs reused across models that share their encoder (``EncoderMemo``).

The published pairs share their encoder through the TensorPool (same encoder, different last block):
they would compute the same output for the same photo, so the second one reuses the first's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping

from igcap.optimize.sharing import content_key


def _torch():
    import torch

    return torch


class EncoderMemo:
    """The last few image-encoder outputs, keyed by which weights computed them and the pixels' bytes.

    Models that share their encoder through the pool (the published pairs: same encoder, different
    last block) would compute the same output for the same photo; the second one reuses the first's.
    An entry keeps its weights alive, so their ids cannot be reused by other weights while it exists;
    ``forget`` drops a model's entries (igcap.loading.ModelCache, as it drops the model).

    An entry holds the output's tensors, never the output object itself: every caller gets an output
    object of its own. generate() replaces fields of the output it is handed (beam search swaps
    ``last_hidden_state`` for a copy repeated once per beam), so a shared object would hand the next
    caller, in this session or another, a tensor already expanded for someone else's beams. The
    tensors themselves are only read (generate makes new ones), so sharing them is safe.
    """

    def __init__(self, size: int = 2):
        self.size, self._entries, self._lock = size, [], threading.Lock()
        self.hits = 0

    def remember(self, model):
        """Route ``model``'s image encoder through this memo (after sharing: it keys on the pooled weights)."""
        encoder = getattr(model, "encoder", None)
        if encoder is not None:
            encoder.forward = self.wrap(encoder, encoder.forward)
        return model

    def wrap(self, encoder, forward):
        weights = _weights_of(encoder)

        @functools.wraps(forward)
        def remembering_forward(*args, **kwargs):
            pixels = kwargs.get("pixel_values", args[0] if args else None)
            if pixels is None or len(args) > 1 or _torch().is_grad_enabled():
                return forward(*args, **kwargs)
            key = (_identity(weights), content_key("pixels", pixels),
                   tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "pixel_values")))
            found = self._get(key)
            if found is not None:
                kind, fields = found
                return kind(**fields)  # a fresh output object: the caller may replace its fields
            output = forward(*args, **kwargs)
            if isinstance(output, Mapping):  # a ModelOutput (generate always asks for one)
                self._put(key, weights, (type(output), dict(output)))  # the tensors, as computed
            return output

        return remembering_forward

    def _get(self, key):
        with self._lock:
            for entry in self._entries:
                if entry[0] == key:
                    self.hits += 1
                    return entry[2]
        return None

    def _put(self, key, weights, output) -> None:
        with self._lock:
            self._entries = [(key, weights, output), *self._entries][: self.size]

    def forget(self, model) -> None:
        """Drop the entries computed by weights ``model`` holds: a model the cache lets go of would otherwise
        stay alive in them (its whole image encoder), outside the cache's count and memory bounds."""
        held = _places(_weights_of(model))
        with self._lock:
            self._entries = [entry for entry in self._entries if held.isdisjoint(_places(entry[1]))]

    def clear(self) -> None:
        with self._lock:
            self._entries = []


ENCODER_MEMO = EncoderMemo()


def _identity(weights) -> tuple:
    """Which memory holds these weights: equal for modules that share them through the pool."""
    torch = _torch()
    return tuple((w.untyped_storage().data_ptr(), w.storage_offset(), tuple(w.shape)) if isinstance(w, torch.Tensor)
                 else id(w) for w in weights)


def _places(weights) -> set:
    """The memory each weight lies in (a tensor's storage; a packed matrix itself), to tell whose weights are whose."""
    torch = _torch()
    places = {w.untyped_storage().data_ptr() if isinstance(w, torch.Tensor) else id(w) for w in weights}
    places.discard(0)  # empty tensors hold no memory: they tell nothing
    return places


def _weights_of(module) -> tuple:
    """Every object holding the module's weights: tensors and packed int8 matrices."""
    packed = [m.weight_int8 for m in module.modules() if hasattr(m, "weight_int8")]
    return (*module.parameters(), *module.buffers(), *packed)
