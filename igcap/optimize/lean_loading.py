"""The memory-lean int8 loader: a model built on the meta device and filled from the safetensors file(s)
module by module, quantizing as it reads, so four models load in under 2 GB.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from pathlib import Path

from igcap.optimize.encoder_memo import ENCODER_MEMO
from igcap.optimize.int8 import module_roles, swap_for
from igcap.optimize.malloc import lean_malloc as _lean_malloc
from igcap.optimize.sharing import TensorPool, content_key


def _torch():
    import torch

    return torch


class LeanLoadUnsupported(Exception):
    """The checkpoint is not in a form the lean loader reads; load it the ordinary way instead."""


SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
                      "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def load_int8_lean(source: str, *, revision: str | None = None, pool: TensorPool | None = None):
    """A VisionEncoderDecoderModel with int8 weights that never holds its float weights all at once.

    The model is built on the meta device and filled module by module from the safetensors file(s):
    each Linear / Conv1D weight is read, quantized (or found in ``pool``) and dropped, so the peak is
    the int8 model plus one float tensor (the 154 MB token table) instead of the 913 MB float model.
    Raises LeanLoadUnsupported when the checkpoint cannot be read this way (no safetensors, a name
    this version of transformers converts by more than a rename).
    """
    with _lean_malloc():
        return _load_int8_lean(source, revision, pool)


def _load_int8_lean(source: str, revision: str | None, pool: TensorPool | None):
    files = _safetensors_files(source, revision)
    model = meta_model_of(source, revision)
    index = _SafetensorsIndex(files)
    names = _checkpoint_names(model, index)
    with index:
        _fill_quantized(model, index, names, pool)
    return ENCODER_MEMO.remember(model.eval().requires_grad_(False))


_SKELETONS: dict[str, object] = {}  # config as JSON → a model built on the meta device, copied for each load
_SKELETONS_LOCK = threading.Lock()


def meta_model_of(source: str, revision: str | None = None):
    """``meta_model`` for ``source``'s config, with its generation_config.json when it has one."""
    from transformers import AutoConfig, GenerationConfig

    model = meta_model(AutoConfig.from_pretrained(source, revision=revision))
    try:
        model.generation_config = GenerationConfig.from_pretrained(source, revision=revision)
    except OSError:  # no generation_config.json: keep the one derived from the config
        pass
    return model


def meta_tensors(model):
    """(full name, store, key, is a parameter) for every tensor of ``model`` still on the meta device, for
    the caller to fill (``store[key] = tensor``)."""
    for name, module in model.named_modules():
        for is_param, store in ((True, module._parameters), (False, module._buffers)):
            for key, t in store.items():
                if t is not None and t.device.type == "meta":
                    yield (f"{name}.{key}" if name else key), store, key, is_param


def meta_model(config):
    """A VisionEncoderDecoderModel for ``config`` on the meta device (no memory, no values), to be filled.

    Building one runs every module's weight initialisation through torch's meta decompositions (about
    0.12 s of CPU for the full-size model); models of the same config (the four published models share
    one) copy the first one built instead (0.04 s; ties kept)."""
    import copy

    torch = _torch()
    from transformers import VisionEncoderDecoderModel

    key = config.to_json_string()
    with _SKELETONS_LOCK:
        skeleton = _SKELETONS.get(key)
        if skeleton is None:
            with torch.device("meta"):
                skeleton = VisionEncoderDecoderModel(config)
            if len(_SKELETONS) >= 4:
                _SKELETONS.pop(next(iter(_SKELETONS)))
            _SKELETONS[key] = skeleton
        return copy.deepcopy(skeleton)


def _safetensors_files(source: str, revision: str | None) -> list[Path]:
    from transformers.utils import cached_file

    kwargs = dict(revision=revision, _raise_exceptions_for_missing_entries=False)
    single = cached_file(source, "model.safetensors", **kwargs)
    if single:
        return [Path(single)]
    index = cached_file(source, "model.safetensors.index.json", **kwargs)
    if not index:
        raise LeanLoadUnsupported(f"{source} has no safetensors weights")
    shards = sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
    return [Path(cached_file(source, shard, revision=revision)) for shard in shards]


class _SafetensorsIndex:
    """Where each tensor lies in the safetensors files; reads one tensor at a time into fresh memory."""

    def __init__(self, files: list[Path]):
        self.entries: dict[str, tuple[Path, str, list[int], int, int]] = {}
        for path in files:
            header, size = self._header(path)
            for name, info in header.items():
                if name != "__metadata__":
                    start, end = info["data_offsets"]
                    self.entries[name] = (path, info["dtype"], info["shape"], 8 + size + start, end - start)
        self._handles: dict[Path, object] = {}

    @staticmethod
    def _header(path: Path) -> tuple[dict, int]:
        with open(path, "rb") as f:
            head = f.read(8)
            size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            try:
                if not 0 < size <= os.fstat(f.fileno()).st_size - 8:
                    raise ValueError("header length out of range")
                return json.loads(f.read(size)), size
            except ValueError as err:  # also UnicodeDecodeError, JSONDecodeError
                raise ValueError(f"{path.name} is not a valid safetensors file (damaged header: {err})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for f in self._handles.values():
            f.close()
        self._handles.clear()

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def read_bf16(self, name: str, rows_per_chunk: int = 4096):
        """A 2-D float tensor as bfloat16, converted chunk by chunk."""
        torch = _torch()
        path, dtype, shape, offset, nbytes = self.entries[name]
        if dtype not in ("F32", "F16", "BF16") or len(shape) != 2:
            return self.read(name).to(torch.bfloat16)
        source = getattr(torch, SAFETENSORS_DTYPES[dtype])
        row_bytes = nbytes // shape[0]
        out = torch.empty(shape, dtype=torch.bfloat16)
        f = self._handles.get(path) or self._handles.setdefault(path, open(path, "rb"))
        for i in range(0, shape[0], rows_per_chunk):
            n = min(rows_per_chunk, shape[0] - i)
            raw = torch.empty(n * row_bytes, dtype=torch.uint8)
            f.seek(offset + i * row_bytes)
            if f.readinto(memoryview(raw.numpy())) != n * row_bytes:
                raise LeanLoadUnsupported(f"{path} ends inside tensor {name}")
            out[i:i + n] = raw.view(source).reshape(n, shape[1])
        return out

    def read(self, name: str):
        torch = _torch()
        path, dtype, shape, offset, nbytes = self.entries[name]
        if dtype not in SAFETENSORS_DTYPES:
            raise LeanLoadUnsupported(f"tensor {name} has dtype {dtype}")
        f = self._handles.get(path) or self._handles.setdefault(path, open(path, "rb"))
        raw = torch.empty(nbytes, dtype=torch.uint8)
        f.seek(offset)
        if f.readinto(memoryview(raw.numpy())) != nbytes:
            raise LeanLoadUnsupported(f"{path} ends inside tensor {name}")
        return raw.view(getattr(torch, SAFETENSORS_DTYPES[dtype])).reshape(shape)


def _checkpoint_names(model, index: _SafetensorsIndex) -> dict[int, str]:
    """id(meta tensor) → the name it has in the checkpoint (older checkpoints use older names)."""
    from transformers.core_model_loading import revert_weight_conversion

    tensors = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(model.named_buffers())
    legacy = {id(t): name for name, t in revert_weight_conversion(model, dict(tensors)).items()}
    names = {}
    for name, t in tensors.items():
        found = next((n for n in (name, legacy.get(id(t))) if n and n in index), None)
        if found is None:
            raise LeanLoadUnsupported(f"the checkpoint has no tensor for {name}")
        names[id(t)] = found
    return names


def _fill_quantized(model, index: _SafetensorsIndex, names: dict[int, str], pool: TensorPool | None) -> None:
    """Replace every meta tensor by its checkpoint value; swap Linear/Conv1D/embeddings for int8 as read."""
    torch = _torch()
    read = lambda t: index.read(names[id(t)]).float() if t.is_floating_point() else index.read(names[id(t)])  # noqa: E731
    shared: dict[int, object] = {}
    roles, tables, read_tables = module_roles(model), {}, {}
    for name, module in list(model.named_modules()):
        swap = swap_for(module, roles)
        if swap is not None:
            stand_in = _TableStandIn(module, index, names, read_tables) if id(module) in roles else \
                _FloatStandIn(module, read)
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, swap(stand_in, pool, tables))
            continue
        for store in (module._parameters, module._buffers):
            for key, t in store.items():
                if t is None or t.device.type != "meta":
                    continue
                if id(t) not in shared:
                    value, is_param = read(t), store is module._parameters
                    make = (lambda v=value: torch.nn.Parameter(v, requires_grad=False)) if is_param else (lambda v=value: v)
                    shared[id(t)] = make() if pool is None else \
                        pool.get_or_make(content_key("parameter" if is_param else "tensor", value), make, value.nbytes)
                store[key] = shared[id(t)]


class _FloatStandIn:
    """Looks like a Linear / Conv1D / Embedding to _swap_for's builders, with weights read on demand."""

    def __init__(self, module, read):
        self.weight = read(module.weight)
        bias = getattr(module, "bias", None)
        self.bias = None if bias is None else read(bias)


class _TableStandIn:
    """The token table / tied head, read straight into bfloat16 a chunk of rows at a time (the
    float32 table alone is 154 MB); read once even when two modules share it."""

    bias = None

    def __init__(self, module, index: _SafetensorsIndex, names: dict[int, str], cache: dict):
        name = names[id(module.weight)]
        if name not in cache:
            cache[name] = index.read_bf16(name)
        self.weight = cache[name]
