"""How much memory loaded models hold: each storage and each packed int8 matrix counted once (a token table
left in the int8 cache's file, FileTable, is not the process's memory and is not counted)."""

from __future__ import annotations

from igcap.optimize import int8


def model_nbytes(model) -> int:
    return models_nbytes([model])


def models_nbytes(models) -> int:
    """Bytes held by these models' tensors and int8 weights, each storage counted once."""
    made = int8._CLASSES  # None until a model was quantized in this process
    classes = (made.Int8Linear, made.RescoredHead) if made is not None else None
    seen, total = set(), 0
    for m in models:
        for t in [*m.parameters(), *m.buffers()]:
            key = ("storage", t.untyped_storage().data_ptr())
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
        if classes is None:
            continue
        for module in m.modules():
            if isinstance(module, classes) and ("packed", id(module.weight_int8)) not in seen:
                seen.add(("packed", id(module.weight_int8)))
                total += module.weight_int8.nbytes
    return total
