"""CPU levers applied to a freshly loaded model (int8 weights, shared identical tensors).

Placeholder with the final interface: the performance work replaces the bodies.
"""

from __future__ import annotations


class TensorPool:
    """Identical tensors seen across loaded models, kept once."""

    saved_bytes: int = 0


def prepare_for_inference(model, *, quantize: bool, pool: TensorPool | None = None):
    return model


def model_nbytes(model) -> int:
    return models_nbytes([model])


def models_nbytes(models) -> int:
    """Bytes held by these models' tensors, each storage counted once."""
    seen, total = set(), 0
    for t in (t for m in models for t in [*m.parameters(), *m.buffers()]):
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total
