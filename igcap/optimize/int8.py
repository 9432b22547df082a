"""Int8 weights for the engine's models: Linear / GPT-2 Conv1D layers as Int8Linear, the token table in
bfloat16, and the tied LM head as a RescoredHead.

Decoding on a CPU is memory-bandwidth bound: each new token reads every decoder weight once. Int8
weights (per output channel; activations quantized on the fly by the quantized engine's dynamic
linear) read a quarter of the bytes and use the CPU's int8 dot products. GPT-2's projections are
transformers' ``Conv1D`` (weight stored in × out), so they are converted explicitly. The LM head is
tied to the token embeddings: both keep one bfloat16 copy of the table (the lookup reads rows of it),
and the head proposes candidates with an int8 copy, then recomputes their logits from the bfloat16
rows, because greedy decoding picks among near-tied tokens (see ``RescoredHead``).

Importing this module does not import torch: the module classes are built on first use.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass

from igcap.optimize.file_table import FileTable, lookup
from igcap.optimize.sharing import TensorPool, content_key

log = logging.getLogger(__name__)
_QUANTIZED_OPS = None  # cached: whether this torch build has the dynamic int8 linear


def _torch():
    import torch

    return torch


# ---------------------------------------------------------------- int8 modules

@dataclass(frozen=True)
class Int8Parts:
    """What a packed matrix holds besides its int8 values, as quantized: symmetric per output channel."""

    shape: tuple[int, int]  # (out, in)
    scale: object  # (out,) float64
    bias: object  # (out,) float32, or None


class PackedInt8:
    """One int8 weight matrix in the quantized engine's packed layout (bias included).

    Made either packed, or (the int8 cache) from verified int8 values with ``make``, which packs them
    on first use of ``packed`` — by the caller, or earlier by the background packer
    (``pack_in_background``); whichever comes first packs it, once, and the values are then dropped.

    A matrix quantized here also keeps its ``parts``: shape, scales and bias (8 bytes per output channel,
    about 2 MB for a full-size model; the bias is the packed matrix's own tensor), which the int8 cache
    writes without unpacking the matrix for them.
    """

    __slots__ = ("_packed", "nbytes", "_make", "_lock", "parts", "__weakref__")

    def __init__(self, packed, nbytes: int, make=None, parts: Int8Parts | None = None):
        self._packed, self.nbytes, self._make, self.parts = packed, nbytes, make, parts
        self._lock = None if make is None else threading.Lock()

    @property
    def packed(self):
        packed = self._packed
        return packed if packed is not None else self._pack()

    @property
    def is_packed(self) -> bool:
        return self._packed is not None

    def _pack(self):
        with self._lock:
            if self._packed is None:
                self._packed = self._make()
                self._make = None  # the int8 values it was packed from are freed
        return self._packed


class _BackgroundPacker:
    """One daemon thread that packs lazily made matrices ahead of their first use, so a model read
    from the int8 cache is usable at once and its packing overlaps other work (the tokenizer, the next
    model, the photo's preprocessing). Matrices are taken last layer first: a caption that starts
    meanwhile packs what it needs from the first layer on, and the two meet without waiting on each other."""

    def __init__(self):
        self._queue: list = []  # weak references to PackedInt8, taken from the end
        self._lock = threading.Condition()
        self._thread = None
        self._stop_registered = False

    def add(self, matrices) -> None:
        import weakref

        refs = [weakref.ref(m) for m in matrices if not m.is_packed]
        if not refs:
            return
        with self._lock:
            self._queue[:0] = refs  # later models are packed after the ones already waiting
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="igcap-int8-pack", daemon=True)
                self._thread.start()
                if not self._stop_registered:
                    import atexit

                    atexit.register(self.stop)
                    self._stop_registered = True
            self._lock.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Drop what is queued and let the thread finish the matrix in hand. Run at exit: a daemon
        thread still inside torch's packing when the interpreter shuts down aborts the process
        ("terminate called without an active exception", exit status 134)."""
        with self._lock:
            self._queue.clear()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        from igcap.optimize.malloc import lean_malloc

        with lean_malloc():  # packing's big buffers mapped apart, as while loading (else +80 MB per model)
            self._pack_queued()

    def _pack_queued(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                ref = self._queue.pop()
            matrix = ref()
            if matrix is None or matrix.is_packed:
                continue
            try:
                matrix.packed  # noqa: B018  (packs it)
            except Exception as err:  # noqa: BLE001  the caller packing it on use will raise it again
                log.warning("int8: packing a matrix in the background failed (%s)", err)

    def wait(self, timeout: float | None = None) -> bool:
        """Until the queue is empty (tests, and a benchmark that wants packing out of its timings)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return True
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    return self._thread is None


BACKGROUND_PACKER = _BackgroundPacker()


def pack_in_background(matrices) -> None:
    """Queue lazily made PackedInt8 matrices (in the order the model uses them) for the background packer."""
    BACKGROUND_PACKER.add(list(matrices))


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
        bias = None if bias is None else bias.detach().float().clone()
        packed = torch.ops.quantized.linear_prepack(q, bias)
    nbytes = weight.numel() + weight.shape[0] * 8 + (0 if bias is None else bias.numel() * 4)
    return PackedInt8(packed, nbytes, parts=Int8Parts(tuple(weight.shape), scale, bias))


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
    return PackedInt8(packed, weight.numel() + rows * 8, parts=Int8Parts(tuple(weight.shape), scale, None))


HEAD_CANDIDATES = 16  # tokens the int8 head proposes per position; their logits are then recomputed


def int8_product(x, packed, reduce_range: bool):
    """The dynamic int8 linear, ``torch.ops.quantized.linear_dynamic(x, packed, reduce_range)``: x float32
    and contiguous, ``packed`` a PackedInt8's ``packed``.

    Called with tensor subclasses' ``__torch_function__`` switched off, which changes nothing here (no
    argument is a tensor subclass) but what the call costs: the packed weight is a TorchScript object,
    and PyTorch's dispatch from Python asks every non-tensor argument for ``__torch_function__``; on a
    TorchScript object that lookup fails inside C++ and unwinds an exception, about 8 µs of a 768 × 768
    product's 16 µs on one row (measured: docs/performance.md). A decoder step makes 73 of these. The
    operator's overload is called directly, without the Python checks its packet makes for fake
    TorchScript objects (tracing only): another 1.4 µs."""
    global _PRODUCT
    if _PRODUCT is None:
        torch = _torch()
        packet = torch.ops.quantized.linear_dynamic
        op, switch_off = getattr(packet.default, "_op", packet), torch._C.DisableTorchFunctionSubclass

        def product(x, packed, reduce_range):
            with switch_off():
                return op(x, packed, reduce_range)

        _PRODUCT = product
    return _PRODUCT(x, packed, reduce_range)


_PRODUCT = None


def _make_classes():
    from types import SimpleNamespace

    torch = _torch()
    nn = torch.nn

    class Int8Linear(nn.Module):
        """y = x Wᵀ + b with W int8 per output channel; activations quantized per call."""

        from_pool = True  # its weights came through the TensorPool when made: share_tensors leaves it alone

        reduce_range = not _cpu_has_vnni()  # 7-bit activations where int8 products could saturate int16

        def __init__(self, weight: PackedInt8, in_features: int, out_features: int):
            super().__init__()
            self.weight_int8, self.in_features, self.out_features = weight, in_features, out_features

        def forward(self, x):
            return int8_product(x.float().contiguous(), self.weight_int8.packed, self.reduce_range)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    class Bf16Embedding(nn.Module):
        """A token table stored in bfloat16 (half the bytes), looked up as float32."""

        from_pool = True

        def __init__(self, table):
            super().__init__()
            _keep_table(self, table)  # (V, D) bfloat16: a tensor, or a FileTable read from the int8 cache's entry
            self.num_embeddings, self.embedding_dim = table.shape

        def forward(self, ids):
            return lookup(self.table, ids).float()

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

        from_pool = True

        def __init__(self, weight: PackedInt8, table, candidates: int = HEAD_CANDIDATES):
            super().__init__()
            self.weight_int8, self.candidates = weight, min(candidates, table.shape[0])
            _keep_table(self, table)  # (V, D) bfloat16, usually the token table itself
            self.in_features, self.out_features = table.shape[1], table.shape[0]

        def forward(self, x):  # x: (B, T, D)
            x = x.float().contiguous()
            rough = int8_product(x, self.weight_int8.packed, Int8Linear.reduce_range)  # (B, T, V)
            ids = rough.topk(self.candidates, dim=-1).indices  # (B, T, k)
            rows = lookup(self.table, ids).float()  # (B, T, k, D)
            exact = (rows @ x.unsqueeze(-1)).squeeze(-1)  # (B, T, k)
            floor = exact.amin(dim=-1, keepdim=True)
            logits = torch.minimum(rough, torch.nextafter(floor, floor - 1))  # strictly below every candidate
            return logits.scatter_(-1, ids, exact)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8 + {self.candidates} rescored"

    return SimpleNamespace(Int8Linear=Int8Linear, Bf16Embedding=Bf16Embedding, RescoredHead=RescoredHead)


def _keep_table(module, table) -> None:
    """A table in memory is a buffer; one read from its file (FileTable) is a plain attribute."""
    if isinstance(table, FileTable):
        module.table = table
    else:
        module.register_buffer("table", table)


_CLASSES = None


def int8_classes():
    """The module classes (built on first use, so importing this module does not import torch)."""
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = _make_classes()
    return _CLASSES


def _cpu_has_vnni() -> bool:
    from igcap.cpu import cpu_flags, has_vnni

    return has_vnni(cpu_flags())


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


# ---------------------------------------------------------------- swapping a model's modules

def quantize_modules(model, pool: TensorPool | None = None) -> int:
    """Swap every Linear / GPT-2 Conv1D for Int8Linear, the LM head for a RescoredHead and the token
    table for a Bf16Embedding, in place; returns how many modules were swapped.

    The head is tied to the token table: both use one bfloat16 copy of it (shared through ``pool``,
    or kept once per call here), plus the head's int8 matrix.
    """
    roles = module_roles(model)
    swaps = [(name, module) for name, module in model.named_modules() if swap_for(module, roles) is not None]
    tables: dict = {}  # one bfloat16 table per call for tied weights, even without a pool
    for name, module in swaps:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, swap_for(module, roles)(module, pool, tables))
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


def own_memory(model) -> None:
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


def swap_for(module, roles: dict[int, str]):
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
