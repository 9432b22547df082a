"""CPU levers applied to the models the engine loads, one module each:

- ``int8``: int8 weights (Int8Linear), the bfloat16 token table and the rescored LM head (RescoredHead);
- ``sharing``: identical tensors kept once across loaded models (TensorPool);
- ``encoder_memo``: image-encoder outputs reused by models sharing their encoder (EncoderMemo);
- ``lean_loading``: the memory-lean int8 loader (load_int8_lean);
- ``memory``: how much memory loaded models hold;
- ``file_table``: a cached model's token table read from its int8 cache file a few rows at a time (FileTable).

The thread policy lives in ``igcap.threads``. ``prepare_for_inference`` applies the levers to a model
loaded the ordinary way; the old names stay importable from ``igcap.optimize``.
"""

from __future__ import annotations

from igcap.optimize.encoder_memo import ENCODER_MEMO, EncoderMemo
from igcap.optimize.int8 import (BACKGROUND_PACKER, HEAD_CANDIDATES, PackedInt8, bf16_table, int8_classes, int8_linear, module_roles,
                                 own_memory, pack_int8, pack_int8_rows, quantize_modules, quantized_engine_available,
                                 pack_in_background, rescored_head, shared_bf16_table)
from igcap.optimize.lean_loading import SAFETENSORS_DTYPES, LeanLoadUnsupported, load_int8_lean
from igcap.optimize.memory import model_nbytes, models_nbytes
from igcap.optimize.sharing import TensorPool, content_key, share_tensors
from igcap.threads import THREADS_ENV, allowed_cores  # noqa: F401  (their old home)

__all__ = [
    "BACKGROUND_PACKER", "ENCODER_MEMO", "EncoderMemo", "HEAD_CANDIDATES", "PackedInt8", "bf16_table", "int8_classes", "int8_linear",
    "module_roles", "pack_int8", "pack_int8_rows", "quantize_modules", "quantized_engine_available", "pack_in_background",
    "rescored_head", "shared_bf16_table", "SAFETENSORS_DTYPES", "LeanLoadUnsupported", "load_int8_lean",
    "model_nbytes", "models_nbytes", "TensorPool", "content_key", "share_tensors", "prepare_for_inference",
]


def prepare_for_inference(model, *, quantize: bool, pool: TensorPool | None = None):
    """Eval mode, no grads; int8 weights (CPU) if ``quantize``; identical tensors shared via ``pool``; an
    int8 model's image encoder then reuses outputs through ENCODER_MEMO (keyed on the pooled weights)."""
    model.eval().requires_grad_(False)
    int8 = quantize and quantized_engine_available()
    if int8:
        quantize_modules(model, pool)
        own_memory(model)
    if pool is not None:
        share_tensors(model, pool)
    if int8:
        ENCODER_MEMO.remember(model)
    return model
