"""CPU levers applied to the models the engine loads: int8 weights, identical tensors kept once across
models, a memory-lean loader, and thread counts that suit a small, busy CPU.

Decoding on a CPU is memory-bandwidth bound: each new token reads every decoder weight once. Int8
weights (per output channel; activations quantized on the fly by the quantized engine's dynamic
linear) read a quarter of the bytes and use the CPU's int8 dot products. GPT-2's projections are
transformers' ``Conv1D`` (weight stored in × out), so they are converted explicitly. The LM head is
tied to the token embeddings: both keep one bfloat16 copy of the table (the lookup reads rows of it),
and the head proposes candidates with an int8 copy, then recomputes their logits from the bfloat16
rows, because greedy decoding picks among near-tied tokens (see ``RescoredHead``).

Models fine-tuned from the same start share most tensors unchanged (the notebook's last-block runs
trained only GPT-2's last block, final norm and head). A ``TensorPool`` finds identical tensors by
content hash, so a second such model costs only what differs.

The lean loader (``load_int8_lean``) builds the model on the meta device and fills it from the
safetensors file module by module, quantizing as it reads, so four models load in under 2 GB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import warnings
import weakref
from pathlib import Path

log = logging.getLogger(__name__)
_QUANTIZED_OPS = None  # cached: whether this torch build has the dynamic int8 linear


def _torch():
    import torch

    return torch


# ---------------------------------------------------------------- int8 modules

class PackedInt8:
    """One int8 weight matrix in the quantized engine's packed layout (bias included)."""

    __slots__ = ("packed", "nbytes", "__weakref__")

    def __init__(self, packed, nbytes: int):
        self.packed, self.nbytes = packed, nbytes


def pack_int8(weight, bias=None) -> PackedInt8:
    """(out, in) float weight → symmetric int8 per output channel, packed for the dynamic linear."""
    torch = _torch()
    weight = weight.detach().float().contiguous()
    scale = (_row_absmax(weight) / 127).clamp(min=1e-12).double()
    zeros = torch.zeros(weight.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # quantize_per_channel warns that quantized tensors are being phased out
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(weight, scale, zeros, 0, torch.qint8)
        # the packed matrix keeps the bias tensor itself: a copy, or a bias that is a view into the mapped
        # checkpoint file would keep the whole file (913 MB) mapped and counted
        packed = torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach().float().clone())
    nbytes = weight.numel() + weight.shape[0] * 8 + (0 if bias is None else bias.numel() * 4)
    return PackedInt8(packed, nbytes)


def pack_int8_rows(weight, rows_per_chunk: int = 4096) -> PackedInt8:
    """Like pack_int8 for a big matrix in any float dtype (the bf16 token table), a chunk of rows at a
    time, so no float32 copy of the whole matrix ever exists."""
    torch = _torch()
    rows = weight.shape[0]
    scale = torch.empty(rows, dtype=torch.float64)
    q = torch.empty(weight.shape, dtype=torch.int8)
    for i in range(0, rows, rows_per_chunk):
        chunk = weight[i:i + rows_per_chunk].float()
        chunk_scale = (_row_absmax(chunk) / 127).clamp(min=1e-12)
        q[i:i + rows_per_chunk] = torch.round(chunk / chunk_scale.unsqueeze(1)).clamp_(-127, 127)
        scale[i:i + rows_per_chunk] = chunk_scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qt = torch._make_per_channel_quantized_tensor(q, scale, torch.zeros(rows, dtype=torch.long), 0)
        packed = torch.ops.quantized.linear_prepack(qt, None)
    return PackedInt8(packed, weight.numel() + rows * 8)


HEAD_CANDIDATES = 16  # tokens the int8 head proposes per position; their logits are then recomputed


def _make_classes():
    from types import SimpleNamespace

    torch = _torch()
    nn = torch.nn

    class Int8Linear(nn.Module):
        """y = x Wᵀ + b with W int8 per output channel; activations quantized per call."""

        reduce_range = not _cpu_has_vnni()  # 7-bit activations where int8 products could saturate int16

        def __init__(self, weight: PackedInt8, in_features: int, out_features: int):
            super().__init__()
            self.weight_int8, self.in_features, self.out_features = weight, in_features, out_features

        def forward(self, x):
            return torch.ops.quantized.linear_dynamic(x.float().contiguous(), self.weight_int8.packed, self.reduce_range)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    class Bf16Embedding(nn.Module):
        """A token table stored in bfloat16 (half the bytes), looked up as float32."""

        def __init__(self, table):
            super().__init__()
            self.register_buffer("table", table)  # (V, D) bfloat16
            self.num_embeddings, self.embedding_dim = table.shape

        def forward(self, ids):
            return nn.functional.embedding(ids, self.table).float()

        def extra_repr(self) -> str:
            return f"{self.num_embeddings}, {self.embedding_dim}, bfloat16"

    class RescoredHead(nn.Module):
        """The LM head: an int8 pass proposes the likeliest tokens, whose logits are then recomputed from
        the bfloat16 table with float32 activations.

        Greedy and beam search pick among near-tied tokens, where int8 alone changes the pick (on the
        demo models, 84% of greedy captions stayed identical with an int8 head, 96% with this one).
        Every other logit keeps its int8 value, capped strictly below the weakest recomputed one, so
        the int8 pass's own error never lets a token it ranked lower overtake a recomputed one.
        """

        def __init__(self, weight: PackedInt8, table, candidates: int = HEAD_CANDIDATES):
            super().__init__()
            self.weight_int8, self.candidates = weight, min(candidates, table.shape[0])
            self.register_buffer("table", table)  # (V, D) bfloat16, usually the token table itself
            self.in_features, self.out_features = table.shape[1], table.shape[0]

        def forward(self, x):  # x: (B, T, D)
            x = x.float().contiguous()
            rough = torch.ops.quantized.linear_dynamic(x, self.weight_int8.packed, Int8Linear.reduce_range)  # (B, T, V)
            ids = rough.topk(self.candidates, dim=-1).indices  # (B, T, k)
            rows = nn.functional.embedding(ids, self.table).float()  # (B, T, k, D)
            exact = (rows @ x.unsqueeze(-1)).squeeze(-1)  # (B, T, k)
            floor = exact.amin(dim=-1, keepdim=True)
            logits = torch.minimum(rough, torch.nextafter(floor, floor - 1))  # strictly below every candidate
            return logits.scatter_(-1, ids, exact)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8 + {self.candidates} rescored"

    return SimpleNamespace(Int8Linear=Int8Linear, Bf16Embedding=Bf16Embedding, RescoredHead=RescoredHead)


_CLASSES = None


def int8_classes():
    """The module classes (built on first use, so importing this module does not import torch)."""
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _make_classes()
    return _CLASSES


def _cpu_has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_vnni" in flags or " avx_vnni" in flags


def quantized_engine_available() -> bool:
    """Whether this torch build can run the dynamic int8 linear (x86: fbgemm/onednn, ARM: qnnpack)."""
    global _QUANTIZED_OPS
    if _QUANTIZED_OPS is None:
        torch = _torch()
        try:
            w = pack_int8(torch.randn(4, 8), torch.zeros(4))
            torch.ops.quantized.linear_dynamic(torch.randn(2, 8), w.packed, True)
            _QUANTIZED_OPS = True
        except (RuntimeError, AttributeError) as err:
            log.warning("int8 weights unavailable on this torch build (%s); keeping float weights", err)
            _QUANTIZED_OPS = False
    return _QUANTIZED_OPS


def _row_absmax(weight):
    """max |w| per row without a full-size temporary (w.abs() would copy the whole matrix)."""
    low, high = _torch().aminmax(weight, dim=1)
    return _torch().maximum(high, low.neg())


def bf16_table(weight):
    return weight.detach().to(_torch().bfloat16).contiguous()


# ---------------------------------------------------------------- the pool

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


def content_key(kind: str, *tensors) -> tuple:
    """A hash of the tensors' dtypes, shapes and bytes (sha256: hardware-accelerated on most CPUs)."""
    h = hashlib.sha256(kind.encode())
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(_torch().uint8).numpy().data if t.numel() else b"")
    return (kind, h.hexdigest())


# ---------------------------------------------------------------- threads

THREADS_ENV = "IGCAP_THREADS"  # "auto" (default) or a fixed number of torch threads for generation
MANY_ROWS = 8  # the row count the image encoder reports (197 patches per photo: a big batch)


def allowed_cores() -> int:
    """The cores this process may run on (containers often allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_for(rows: int, setting: str | None = None, cores: int | None = None) -> int:
    """torch threads for decoding ``rows`` sequences at once: every core this process may use, unless
    ``IGCAP_THREADS`` fixes a number.

    On a quiet 2-core machine two threads beat one even for a single photo (the benchmark's one photo ×
    four distinct models: 2.09 s on two threads, 2.78 s with one thread for small batches). On a CPU that
    other programs keep busy the opposite holds — a waiting thread loses its core at each of the thousands
    of tiny int8 products (one photo: 4.9 s on two threads, 0.8 s on one) — so busy or shared hosts should
    set ``IGCAP_THREADS=1``. ``rows`` is kept for callers that size work by batch.
    """
    setting = (setting if setting is not None else os.environ.get(THREADS_ENV, "auto")).strip().lower() or "auto"
    cores = cores or allowed_cores()
    if setting != "auto":
        try:
            return max(1, int(setting))
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be auto or a whole number, not {setting!r}") from None
    return cores


def adapt_threads_to_batch(model):
    """Wrap ``model.generate`` so decoding runs on threads_for(its rows) threads, and the image encoder
    (197 rows per photo: products big enough to share) on threads_for(MANY_ROWS) (CPU only); the
    encoder also reuses the output of an identical encoder on identical pixels (see EncoderMemo)."""
    model.generate = _on_threads(model.generate, lambda args, kwargs: threads_for(_rows(args, kwargs)))
    encoder = getattr(model, "encoder", None)
    if encoder is not None:
        forward = _on_threads(encoder.forward, lambda args, kwargs: threads_for(MANY_ROWS))
        encoder.forward = ENCODER_MEMO.wrap(encoder, forward)
    return model


class EncoderMemo:
    """The last few image-encoder outputs, keyed by which weights computed them and the pixels' bytes.

    Models that share their encoder through the pool (the published pairs: same encoder, different
    last block) would compute the same output for the same photo; the second one reuses the first's.
    An entry keeps its weights alive, so their ids cannot be reused by other weights while it exists.
    """

    def __init__(self, size: int = 2):
        import threading

        self.size, self._entries, self._lock = size, [], threading.Lock()
        self.hits = 0

    def wrap(self, encoder, forward):
        import functools

        weights = _weights_of(encoder)

        @functools.wraps(forward)
        def remembering_forward(*args, **kwargs):
            pixels = kwargs.get("pixel_values", args[0] if args else None)
            if pixels is None or len(args) > 1 or _torch().is_grad_enabled():
                return forward(*args, **kwargs)
            key = (_identity(weights), content_key("pixels", pixels),
                   tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "pixel_values")))
            found = self._get(key)
            if found is None:
                found = forward(*args, **kwargs)
                self._put(key, weights, found)
            return found

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

    def clear(self) -> None:
        with self._lock:
            self._entries = []


ENCODER_MEMO = EncoderMemo()


def _identity(weights) -> tuple:
    """Which memory holds these weights: equal for modules that share them through the pool."""
    torch = _torch()
    return tuple((w.untyped_storage().data_ptr(), w.storage_offset(), tuple(w.shape)) if isinstance(w, torch.Tensor)
                 else id(w) for w in weights)


def _weights_of(module) -> tuple:
    """Every object holding the module's weights: tensors and packed int8 matrices."""
    packed = [m.weight_int8 for m in module.modules() if hasattr(m, "weight_int8")]
    return (*module.parameters(), *module.buffers(), *packed)


def _on_threads(function, count):
    import functools

    @functools.wraps(function)
    def on_threads(*args, **kwargs):
        torch = _torch()
        before = torch.get_num_threads()
        torch.set_num_threads(count(args, kwargs))
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return on_threads


def _rows(args, kwargs) -> int:
    """Sequences one generate call decodes together: photos × beams × returned sequences."""
    pixels = kwargs.get("pixel_values", args[0] if args else None)
    config = kwargs.get("generation_config")
    photos = pixels.shape[0] if pixels is not None else 1
    beams = max(getattr(config, "num_beams", 1) or 1, kwargs.get("num_beams", 1) or 1)
    returned = getattr(config, "num_return_sequences", 1) or 1
    return photos * max(beams, returned)


# ---------------------------------------------------------------- preparing a model

def prepare_for_inference(model, *, quantize: bool, pool: TensorPool | None = None):
    """Eval mode, no grads; int8 weights (CPU) if ``quantize``; identical tensors shared via ``pool``."""
    model.eval().requires_grad_(False)
    if quantize and quantized_engine_available():
        quantize_modules(model, pool)
        _own_memory(model)
    if pool is not None:
        share_tensors(model, pool)
    if quantize and quantized_engine_available():
        adapt_threads_to_batch(model)  # after sharing: the encoder memo keys on the pooled weights
    return model


def quantize_modules(model, pool: TensorPool | None = None) -> int:
    """Swap every Linear / GPT-2 Conv1D for Int8Linear, the LM head for a RescoredHead and the token
    table for a Bf16Embedding, in place; returns how many modules were swapped.

    The head is tied to the token table: both use one bfloat16 copy of it (shared through ``pool``,
    or kept once per call here), plus the head's int8 matrix.
    """
    roles = module_roles(model)
    swaps = [(name, module) for name, module in model.named_modules() if _swap_for(module, roles) is not None]
    tables: dict = {}  # one bfloat16 table per call for tied weights, even without a pool
    for name, module in swaps:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, _swap_for(module, roles)(module, pool, tables))
    return len(swaps)


def module_roles(model) -> dict[int, str]:
    """id → "tokens" for token tables (GPT-2's wte) and "head" for LM heads; position tables stay float."""
    from transformers import PreTrainedModel

    torch = _torch()
    roles = {}
    for module in model.modules():
        if not isinstance(module, PreTrainedModel):
            continue
        for role, getter in (("tokens", module.get_input_embeddings), ("head", module.get_output_embeddings)):
            try:
                found = getter()
            except (NotImplementedError, AttributeError):  # ViT has no token table
                continue
            if isinstance(found, torch.nn.Embedding) and role == "tokens" or isinstance(found, torch.nn.Linear) and role == "head":
                roles[id(found)] = role
    return roles


def _own_memory(model) -> None:
    """Copy the float tensors left after quantizing (norms, biases, position tables: a few MB).

    from_pretrained maps the checkpoint file into memory; any tensor still pointing into it keeps
    the whole mapping, and every page quantizing touched, counted in the process's memory.
    """
    copies: dict[int, object] = {}
    for module in model.modules():
        for store in (module._parameters, module._buffers):
            for name, t in store.items():
                if t is not None and t.device.type == "cpu":
                    if id(t) not in copies:
                        copies[id(t)] = type(t)(t.detach().clone(), requires_grad=False) if isinstance(t, _torch().nn.Parameter) else t.clone()
                    store[name] = copies[id(t)]


def _swap_for(module, roles: dict[int, str]):
    """A builder (module, pool, tables) → replacement for the modules that get one, else None."""
    torch = _torch()
    from transformers.pytorch_utils import Conv1D

    role = roles.get(id(module))
    if role == "head" and module.bias is None:
        return lambda m, pool, tables: rescored_head(m.weight, pool, tables)
    if role == "tokens":
        return lambda m, pool, tables: int8_classes().Bf16Embedding(shared_bf16_table(m.weight, pool, tables))
    if isinstance(module, Conv1D):
        return lambda m, pool, tables: int8_linear(m.weight.t(), m.bias, pool)  # Conv1D stores (in, out)
    if isinstance(module, torch.nn.Linear):
        return lambda m, pool, tables: int8_linear(m.weight, m.bias, pool)
    return None


def int8_linear(weight, bias, pool: TensorPool | None = None):
    """An Int8Linear for an (out, in) float weight, shared through ``pool`` when an identical one exists."""
    out_features, in_features = weight.shape
    return int8_classes().Int8Linear(_packed(weight, bias, pool), in_features, out_features)


def _packed(weight, bias, pool: TensorPool | None) -> PackedInt8:
    make = lambda: pack_int8(weight, bias)  # noqa: E731
    if pool is None:
        return make()
    nbytes = weight.numel() + weight.shape[0] * 8 + (0 if bias is None else bias.numel() * 4)
    return pool.get_or_make(content_key("int8-linear", weight, bias), make, nbytes)


def rescored_head(weight, pool: TensorPool | None = None, tables: dict | None = None):
    """The head's int8 matrix is quantized from its bfloat16 table, in chunks (no float32 copy needed)."""
    table = shared_bf16_table(weight, pool, tables)
    make = lambda: pack_int8_rows(table)  # noqa: E731
    packed = make() if pool is None else pool.get_or_make(content_key("int8-head", table), make,
                                                          table.numel() + table.shape[0] * 8)
    return int8_classes().RescoredHead(packed, table)


def shared_bf16_table(weight, pool: TensorPool | None = None, tables: dict | None = None):
    """One bfloat16 copy per distinct table: tied weights (head = token table) get the same tensor."""
    table = bf16_table(weight)  # a no-op when the lean loader already read it as bfloat16
    key = content_key("bf16-table", table)
    if tables is not None and key in tables:
        return tables[key]
    if pool is not None:
        table = pool.get_or_make(key, lambda: table, table.numel() * 2)
    if tables is not None:
        tables[key] = table
    return table


def share_tensors(model, pool: TensorPool) -> int:
    """Point every parameter and buffer at the pool's copy of identical content; returns bytes saved.

    A tensor that appears under several names (tied weights) is looked up once, so ties survive.
    """
    replaced: dict[int, object] = {}
    saved_before = pool.saved_bytes
    pooled_already = tuple(vars(int8_classes()).values())  # their tensors came from the pool when made
    for module in model.modules():
        if isinstance(module, pooled_already):
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


# ---------------------------------------------------------------- lean int8 loading

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
    torch = _torch()
    from transformers import AutoConfig, GenerationConfig, VisionEncoderDecoderModel

    files = _safetensors_files(source, revision)
    config = AutoConfig.from_pretrained(source, revision=revision)
    with torch.device("meta"):
        model = VisionEncoderDecoderModel(config)
    index = _SafetensorsIndex(files)
    names = _checkpoint_names(model, index)
    try:
        model.generation_config = GenerationConfig.from_pretrained(source, revision=revision)
    except OSError:  # no generation_config.json: keep the one derived from the config
        pass
    with index:
        _fill_quantized(model, index, names, pool)
    return adapt_threads_to_batch(model.eval().requires_grad_(False))


class _lean_malloc:
    """While loading, glibc hands big blocks straight back to the system when freed.

    Each float tensor read during loading lives briefly; from the heap, the freed blocks stay counted
    in the process's memory (fragmentation: about +50% per model here). Blocks of 1 MB and more are
    mapped and unmapped directly meanwhile; afterwards blocks of 32 MB and more still are (glibc's own
    upper bound for its moving threshold), and the heap is trimmed.
    Does nothing where glibc is absent (macOS, musl).
    """

    M_MMAP_THRESHOLD = -3
    LOADING, AFTER = 1 << 20, 32 << 20  # after loading: only blocks ≥ 32 MB (glibc's dynamic maximum) mapped

    def __enter__(self):
        self.libc = _glibc()
        if self.libc is not None:
            self.libc.mallopt(self.M_MMAP_THRESHOLD, self.LOADING)
        return self

    def __exit__(self, *exc):
        if self.libc is not None:
            self.libc.mallopt(self.M_MMAP_THRESHOLD, self.AFTER)
            self.libc.malloc_trim(0)


def _glibc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


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
        swap = _swap_for(module, roles)
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


# ---------------------------------------------------------------- measuring

def model_nbytes(model) -> int:
    return models_nbytes([model])


def models_nbytes(models) -> int:
    """Bytes held by these models' tensors and int8 weights, each storage counted once."""
    classes = (_CLASSES.Int8Linear, _CLASSES.RescoredHead) if _CLASSES is not None else None
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
