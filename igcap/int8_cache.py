"""Prepared int8 models kept on disk, so a later start maps them instead of reading and quantizing the
float checkpoint again.

The first int8 load of a model (the lean loader, or from_pretrained then quantizing) writes what it
made to one safetensors file: every int8 matrix (int8 values + one float64 scale per output channel
+ its float32 bias), the bfloat16 token table (which the rescoring head reads too), and every float
tensor left (norms, position tables, the patch projection). A later load builds the model on the meta
device from its config and fills it from that file: no float weight is read, nothing is quantized.

An entry is keyed by
* where the weights come from: the weight files transformers reads (the first of model.safetensors, its
  index with the shards, pytorch_model.bin: the others are never asked for); for a hub id the snapshot's
  commit and those files' blob names (content hashes) and sizes; for a local folder their names, sizes and
  modification times; in both cases the hash of config.json;
* the cache's format version and the quantization recipe (scheme, head candidates, table dtype);
* the torch and transformers versions (module names and quantization routines come from them).
The key's hash names the file, and the full key is inside it, compared on every read.

Every entry is written to a temporary file in the cache folder and renamed into place (a reader
never sees half a file), carries a CRC-32 per tensor that is checked as the tensor is read and one over
its header (the recipe, the key and where each tensor lies), and must describe exactly the tensors the
model needs. An entry is written only when the source's files are the same after the load as before it
(a folder rewritten meanwhile would otherwise store the old weights under the new files' key). A truncated, damaged, stale or foreign entry is
removed and the model is loaded from its checkpoint again, which writes a fresh entry; it is never
used. The folder is bounded by total size: least recently used entries leave first (a hit counts
as a use).

Everything but the bfloat16 token table is read into the process's own memory. The table (77 MiB, looked
up a few rows per token) stays in the file and its rows are read on use through the descriptor it was
checked through (igcap.optimize.file_table): not mapped, because this kernel maps file pages in whole
large folios (100 random rows of a mapped entry made 31 MB of it resident).

Packing the int8 matrices for the quantized engine is most of what a cached load would cost (about
1.3 s of CPU for a full-size model here), so a load only reads and checks them: each is packed on its
first use or, ahead of it, by the background packer (igcap.optimize.int8.BACKGROUND_PACKER).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from igcap.config import DEFAULT_INT8_CACHE_MB as DEFAULT_MAX_MB
from igcap.optimize.file_table import FileTable
from igcap.optimize.int8 import Int8Parts

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # bump when what an entry holds, or how it is read, changes (2: the header's own CRC-32)
QUANT_RECIPE = {"weights": "int8, symmetric, one scale per output channel", "tables": "bfloat16",
                "head": "int8 proposals rescored from the bfloat16 table"}
METADATA_KEY = "igcap_int8_cache"
HEADER_CRC_KEY = "igcap_header_crc32"  # over the recipe, the key and the tensor list: a damaged header is refused
SUFFIX = ".safetensors"
_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
           "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
_SIZES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_LOCK = threading.Lock()  # one eviction at a time in this process


@dataclass(frozen=True)
class Int8CacheOptions:
    folder: Path  # IGCAP_INT8_CACHE_DIR (default IGCAP_DATA_DIR/int8-cache)
    max_mb: float = DEFAULT_MAX_MB  # IGCAP_INT8_CACHE_MB; 0 switches the cache off

    @property
    def enabled(self) -> bool:
        return self.max_mb > 0


class EntryRejected(Exception):
    """An entry that must not be used (damaged, truncated, stale, or not what the model needs)."""


class LightMismatch(Exception):
    """igcap's light model does not fit this (valid) entry: the model is built through transformers instead."""


class NotCacheable(Exception):
    """A model whose weights this cache cannot represent (it is simply not cached)."""


def _torch():
    import torch

    return torch


# ---------------------------------------------------------------- keys

# the weight files transformers reads, in the order it looks for them (the first found is the one read)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def entry_key(source: str, revision: str | None) -> dict:
    """What identifies the prepared weights of ``source`` (raises NotCacheable when its files cannot be found).

    Computed without importing transformers (its version from the package metadata): a process that
    captions with light models (igcap.light_model) never imports it."""
    from importlib.metadata import version

    import torch

    from igcap import optimize

    config = _resolve(source, "config.json", revision)
    if config is None:
        raise NotCacheable(f"{source} has no config.json")
    # asked one by one, and no further than the file transformers reads: a hub repo shipping both formats
    # would otherwise have its pytorch_model.bin downloaded (and every name asked for) just to make the key
    found = next((f for name in WEIGHT_FILES if (f := _resolve(source, name, revision)) is not None), None)
    if found is None:
        raise NotCacheable(f"{source} has no weights file")
    files = [found]
    if files[0].name.endswith(".index.json"):
        shards = sorted(set(json.loads(files[0].read_text())["weight_map"].values()))
        files += [_resolve(source, shard, revision) or _missing(source, shard) for shard in shards]
    return {"format": FORMAT_VERSION, "source": str(source), "revision": revision, "commit": _commit_of(config),
            "config_sha256": _sha256(config.read_bytes()), "weights": [_file_identity(f) for f in files],
            "quantization": dict(QUANT_RECIPE, head_candidates=optimize.HEAD_CANDIDATES),
            "torch": torch.__version__.split("+")[0], "transformers": version("transformers")}


def _resolve(source: str, name: str, revision: str | None) -> Path | None:
    """``name`` of a local folder or a hub repo (downloaded when missing and the hub is reachable), or None
    when the source has no such file."""
    local = Path(source).expanduser()
    if local.is_dir():
        return local / name if (local / name).is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(source, name, revision=revision))
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None


def _missing(source: str, name: str):
    raise NotCacheable(f"{source} lacks {name}")


def _commit_of(path: Path) -> str | None:
    """The hub snapshot a cached file belongs to (…/snapshots/<commit>/file), else None."""
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def _file_identity(path: Path) -> list:
    """Name (the blob's content hash, for the hub cache's symlinks), size and modification time."""
    real = Path(os.path.realpath(path))
    stat = real.stat()
    return [path.name, real.name, stat.st_size, stat.st_mtime_ns]


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def entry_name(key: dict) -> str:
    return _sha256(json.dumps(key, sort_keys=True).encode())[:40] + SUFFIX


# ---------------------------------------------------------------- the cache

class Int8Cache:
    """The folder of entries; ``load`` and ``store`` never raise for the cache's own failures."""

    def __init__(self, options: Int8CacheOptions):
        self.options = options
        self.folder = Path(options.folder)

    def load(self, source: str, revision: str | None, pool=None, light=None, key: dict | None = None):
        """The prepared int8 model for ``source`` from its entry, or None (no entry, or one that was
        rejected and removed). With ``light`` (its ``light_model.CaptionerConfig``): igcap's own light model,
        or None also when that does not fit the entry (which stays, for the transformers model). ``key``:
        the source's entry key when the caller has it already (``key()``)."""
        key = key or self.key(source, revision)
        if key is None:
            return None
        path = self.folder / entry_name(key)
        if not path.is_file():
            return None
        from igcap.optimize.lean_loading import _lean_malloc

        try:
            with _lean_malloc():  # big transient buffers go straight back to the system (as in the lean loader)
                model = read_entry(path, key, source, revision, pool, light=light)
        except LightMismatch as err:
            log.info("int8 cache: %s through transformers (%s)", source, err)
            return None
        except Exception as err:  # noqa: BLE001 - whatever is wrong with an entry, it is removed, never used
            log.warning("int8 cache: ignoring %s for %s (%s); rebuilding it from the checkpoint", path.name, source, err)
            _remove(path)
            return None
        _touch(path)
        log.info("int8 cache: %s read from %s", source, path.name)
        return model

    def key(self, source: str, revision: str | None) -> dict | None:
        """The entry key of ``source``'s files as they are now (None when it cannot be cached)."""
        try:
            return entry_key(source, revision)
        except (NotCacheable, OSError, ValueError) as err:
            log.info("int8 cache: %s is not cacheable (%s)", source, err)
            return None

    def store(self, source: str, revision: str | None, model, pool=None, read_as: dict | None = None) -> Path | None:
        """Write ``model``'s prepared weights as the entry for ``source``; the path, or None when it
        could not be written (logged: the model itself is fine). ``read_as``: the key of the files as the
        model was read from them (``key()`` before reading); nothing is written if they changed since."""
        try:
            key = entry_key(source, revision)
            if read_as is not None and key != read_as:
                log.info("int8 cache: %s changed while it was read; not keeping these int8 weights", source)
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / entry_name(key)
            write_entry(path, key, model, pool)
        except (NotCacheable, OSError, ValueError, RuntimeError) as err:
            log.warning("int8 cache: could not keep %s's int8 weights (%s)", source, err)
            return None
        self.evict(keep=path)
        return path

    def entries(self) -> list[Path]:
        return sorted(self.folder.glob("*" + SUFFIX)) if self.folder.is_dir() else []

    def size_bytes(self) -> int:
        return sum(_size(p) for p in self.entries())

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove least recently used entries until the folder fits its bound (and temporary files
        left by writers that died more than an hour ago); returns what was removed."""
        bound = int(self.options.max_mb * 2**20)
        removed = []
        with _LOCK:
            for tmp in self.folder.glob(".*.tmp") if self.folder.is_dir() else []:
                if time.time_ns() - _mtime(tmp) > 3600 * 10**9:
                    _remove(tmp)
            entries = sorted(self.entries(), key=_mtime)  # oldest use first
            total = sum(_size(p) for p in entries)
            for path in entries:
                if total <= bound:
                    break
                if path != keep:
                    total -= _size(path)
                    _remove(path)
                    removed.append(path)
            if total > bound and keep in entries:  # it alone is over the bound
                _remove(keep)
                removed.append(keep)
        for path in removed:
            log.info("int8 cache: evicted %s (bound %s MB)", path.name, self.options.max_mb)
        return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _touch(path: Path) -> None:
    try:
        os.utime(path, ns=(time.time_ns(), time.time_ns()))
    except OSError:
        pass


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# ---------------------------------------------------------------- writing

class _Layout:
    """What an entry holds: the tensors to write (each once, ties kept) and the recipe to rebuild the model."""

    def __init__(self, pool):
        from igcap import optimize

        self.optimize = optimize
        self.pool_keys = pool.keys_by_object() if pool is not None else {}
        self.tensors: dict[str, tuple[str, list[int], object]] = {}  # name → (dtype, shape, producer)
        self._names: dict[int, str] = {}
        self._keep: list = []  # objects whose ids are in _names stay alive while the layout does
        self.recipe = {"int8": {}, "embeddings": {}, "tensors": {}}

    def _add(self, dtype: str, shape, producer) -> str:
        name = f"t{len(self.tensors)}"
        self.tensors[name] = (dtype, [int(s) for s in shape], producer)
        return name

    def tensor(self, t, kind: str) -> dict:
        """A float/int tensor, stored once however many modules hold it; with its pool key."""
        if id(t) not in self._names:
            dtype = next(k for k, v in _DTYPES.items() if v == str(t.dtype).removeprefix("torch."))
            in_file = isinstance(t, FileTable)  # a token table read from its entry: written from there
            self._names[id(t)] = self._add(dtype, t.shape, lambda t=t: t.materialize() if in_file else t)
            self._keep.append(t)
        own = t.pool_key if isinstance(t, FileTable) else None
        key = self.pool_keys.get(id(t)) or own or self.optimize.content_key(kind, t)
        return {"name": self._names[id(t)], "pool": list(key)}

    def packed(self, packed, kind: str, table=None) -> dict:
        """An int8 matrix: int8 values, float64 scales, float32 bias (if any); with its pool key."""
        torch = _torch()
        if id(packed) not in self._names:
            parts = packed.parts or _parts(packed)  # known when quantized here; else one unpack to learn them
            unpack = lambda p=packed: torch.ops.quantized.linear_unpack(p.packed)  # noqa: E731
            names = {"weight": self._add("I8", parts.shape, lambda: unpack()[0].int_repr()),  # the one unpack kept
                     "scale": self._add("F64", parts.shape[:1], lambda: parts.scale),
                     "bias": None if parts.bias is None else self._add("F32", parts.shape[:1],
                                                                       lambda: parts.bias.float())}
            self._names[id(packed)] = json.dumps(names)
            self._keep.append(packed)
        names = json.loads(self._names[id(packed)])
        key = self.pool_keys.get(id(packed))
        if key is None:  # made without a pool: a key of its own kind, from what is stored
            key = self.optimize.content_key(kind, table) if table is not None else \
                self.optimize.content_key("int8-linear-q", *_unpacked(packed))
        return {**names, "pool": list(key), "nbytes": packed.nbytes}


def _parts(packed):
    """A packed matrix's shape, scales and bias, read by unpacking it (NotCacheable unless symmetric per
    output channel, the only kind an entry holds)."""
    torch = _torch()
    q, bias = torch.ops.quantized.linear_unpack(packed.packed)
    if q.qscheme() not in (torch.per_channel_affine, torch.per_channel_symmetric) or \
            q.q_per_channel_axis() != 0 or bool(q.q_per_channel_zero_points().any()):
        raise NotCacheable("an int8 matrix that is not symmetric per output channel")
    return Int8Parts(tuple(q.shape), q.q_per_channel_scales(), bias)


def _unpacked(packed):
    q, bias = _torch().ops.quantized.linear_unpack(packed.packed)
    return q.int_repr(), q.q_per_channel_scales(), bias


def describe(model, pool=None) -> _Layout:
    """The entry's layout for an int8 model made by the optimize module (raises NotCacheable)."""
    from igcap import optimize

    classes = optimize.int8_classes()
    layout = _Layout(pool)
    for path, module in model.named_modules():
        if isinstance(module, classes.Int8Linear):
            layout.recipe["int8"][path] = {"kind": "linear", "in": module.in_features, "out": module.out_features,
                                           **layout.packed(module.weight_int8, "int8-linear")}
        elif isinstance(module, classes.RescoredHead):
            layout.recipe["int8"][path] = {"kind": "head", "candidates": module.candidates,
                                           "table": layout.tensor(module.table, "bf16-table"),
                                           **layout.packed(module.weight_int8, "int8-head", table=module.table)}
        elif isinstance(module, classes.Bf16Embedding):
            layout.recipe["embeddings"][path] = {"table": layout.tensor(module.table, "bf16-table")}
        else:
            for is_param, store in ((True, module._parameters), (False, module._buffers)):
                for name, t in store.items():
                    if t is None:
                        continue
                    if t.device.type != "cpu":
                        raise NotCacheable(f"{path}.{name} is on {t.device.type}")
                    full = f"{path}.{name}" if path else name
                    layout.recipe["tensors"][full] = {**layout.tensor(t, "parameter" if is_param else "tensor"),
                                                      "param": is_param}
    return layout


_ORDER = {"F64": 0, "I64": 0, "F32": 1, "I32": 1, "F16": 2, "BF16": 2, "I16": 2, "I8": 3, "U8": 3, "BOOL": 3}


def write_entry(path: Path, key: dict, model, pool=None) -> None:
    """Write the entry atomically: a temporary file in the same folder, renamed over ``path`` when complete.

    A valid safetensors file: tensors ordered by element size (so each is aligned to its own size),
    the recipe, the key and a CRC-32 per tensor in the metadata. The checksums are computed from the
    bytes as written and filled into the header last (fixed width, so the header keeps its length).
    """
    layout = describe(model, pool)
    names = sorted(layout.tensors, key=lambda n: (_ORDER[layout.tensors[n][0]], int(n[1:])))
    header, offset = {}, 0
    for name in names:
        dtype, shape, _ = layout.tensors[name]
        size = _SIZES[dtype] * _numel(shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    crcs = {name: "0" * 8 for name in names}

    def header_bytes() -> bytes:
        meta = json.dumps({"format": FORMAT_VERSION, "key": key, "recipe": layout.recipe, "crc32": crcs},
                          sort_keys=True)
        own = {METADATA_KEY: meta, HEADER_CRC_KEY: _header_crc(meta, header)}
        raw = json.dumps({"__metadata__": own, **header}).encode()
        return raw + b" " * (-len(raw) % 8)  # the data starts 8-byte aligned

    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as f:
            first = header_bytes()
            f.write(struct.pack("<Q", len(first)) + first)
            for name in names:
                dtype, shape, producer = layout.tensors[name]
                t = producer().contiguous()
                data = t.view(-1).view(_torch().uint8).numpy() if t.numel() else b""
                if len(data) != header[name]["data_offsets"][1] - header[name]["data_offsets"][0]:
                    raise NotCacheable(f"tensor {name} changed size while being written")
                crcs[name] = f"{zlib.crc32(data):08x}"
                f.write(data)
            final = header_bytes()
            if len(final) != len(first):
                raise RuntimeError("the entry's header changed length")
            f.seek(8)
            f.write(final)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _header_crc(meta: str, tensors: dict) -> str:
    """CRC-32 of the igcap metadata and the tensor list, in one canonical form (fixed width: 8 hex digits)."""
    return f"{zlib.crc32((meta + json.dumps(tensors, sort_keys=True)).encode()):08x}"


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# ---------------------------------------------------------------- reading

def read_header(path: Path) -> tuple[dict, dict, int]:
    """(tensor entries, igcap metadata, where the data starts); EntryRejected when the file is not whole."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise EntryRejected("truncated: no header")
        length = struct.unpack("<Q", head)[0]
        if not 0 < length <= size - 8:
            raise EntryRejected("truncated or damaged: header length out of range")
        try:
            header = json.loads(f.read(length))
            own = header.pop("__metadata__")
            if own.get(HEADER_CRC_KEY) != _header_crc(own[METADATA_KEY], header):
                raise EntryRejected("damaged header: its checksum does not match")
            meta = json.loads(own[METADATA_KEY])
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise EntryRejected(f"damaged header ({err})") from None
    end = max((info["data_offsets"][1] for info in header.values()), default=0)
    if size != 8 + length + end:
        raise EntryRejected(f"truncated or padded: {size} bytes, the header describes {8 + length + end}")
    return header, meta, 8 + length


def read_entry(path: Path, key: dict, source: str, revision: str | None, pool=None, light=None):
    """The model rebuilt from an entry: built on the meta device, every tensor read from the file
    into the process's own memory (checked against its CRC-32) but the token table, which is read from the
    file a few rows at a time (FileTable); int8 matrices packed on first use or by the background packer.

    With ``light`` (a ``light_model.CaptionerConfig``) the model is igcap's own LightCaptioner, and
    transformers is not imported; a light tree the entry does not fill exactly raises LightMismatch."""
    torch = _torch()
    from igcap import optimize

    header, meta, data_start = read_header(path)
    if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
        raise EntryRejected("stale: made for other weights, settings or versions")
    recipe, crcs = meta["recipe"], meta["crc32"]
    if set(crcs) != set(header):
        raise EntryRejected("the checksum list does not match the tensor list")
    if light is not None:
        from igcap import light_model

        model = light_model.skeleton(light)
        if not _recipe_fits(model, recipe):
            raise LightMismatch("the entry's modules are not those of igcap's light model")
    else:
        from igcap.optimize.lean_loading import meta_model_of

        model = meta_model_of(source, revision)
    reader = _EntryReader(path, header, crcs, data_start)
    classes = optimize.int8_classes()
    pooled = pool.get_or_make if pool is not None else (lambda key, make, nbytes: make())
    used: set[str] = set()
    once: dict[str, object] = {}  # stored name → object: what the entry holds once (ties) is made once

    def get(spec_key, make, nbytes, name):
        if name not in once:
            once[name] = pooled(spec_key, make, nbytes)
        return once[name]

    def table(spec):
        used.add(spec["name"])
        return get(tuple(spec["pool"]), lambda: reader.file_table(spec["name"], tuple(spec["pool"])),
                   reader.nbytes(spec["name"]), spec["name"])

    with reader:
        made = reader.read_int8([spec for spec in recipe["int8"].values()],
                                skip=set(pool.keys_by_object().values()) if pool is not None else set())

        def packed(spec):
            used.update(n for n in (spec["weight"], spec["scale"], spec["bias"]) if n)
            return get(tuple(spec["pool"]), lambda: made.get(spec["weight"]) or reader.packed(spec), spec["nbytes"],
                       spec["weight"])

        for path_, spec in recipe["int8"].items():
            if spec["kind"] == "head":
                new = classes.RescoredHead(packed(spec), table(spec["table"]), spec["candidates"])
            else:
                new = classes.Int8Linear(packed(spec), spec["in"], spec["out"])
            _replace(model, path_, new)
        for path_, spec in recipe["embeddings"].items():
            _replace(model, path_, classes.Bf16Embedding(table(spec["table"])))
        from igcap.optimize.lean_loading import meta_tensors

        for full, store, attr, is_param in list(meta_tensors(model)):
            spec = recipe["tensors"].get(full)
            if spec is None or spec["param"] != is_param:
                raise EntryRejected(f"stale: the entry has no tensor for {full}")
            used.add(spec["name"])
            make = (lambda n=spec["name"]: torch.nn.Parameter(reader.read(n), requires_grad=False)) \
                if is_param else (lambda n=spec["name"]: reader.read(n))
            store[attr] = get(tuple(spec["pool"]), make, reader.nbytes(spec["name"]), spec["name"])
    if used != set(header):
        raise (LightMismatch if light is not None else EntryRejected)("stale: the entry holds tensors this model does not have")
    if light is not None:
        unfilled = model.unfilled()
        if unfilled:
            raise LightMismatch(f"the entry leaves {unfilled[0]} empty")
        optimize.pack_in_background(m.weight_int8 for m in model.modules() if hasattr(m, "weight_int8"))
        return optimize.ENCODER_MEMO.remember(model)
    optimize.pack_in_background(m.weight_int8 for m in model.modules() if hasattr(m, "weight_int8"))
    return optimize.ENCODER_MEMO.remember(model.eval().requires_grad_(False))


def _recipe_fits(model, recipe: dict) -> bool:
    """Every module and tensor the entry fills exists in ``model``, and every place of it is filled."""
    modules = dict(model.named_modules())
    places = {*recipe["int8"], *recipe["embeddings"]}
    tensors = {name for name, _ in (*model.named_parameters(), *model.named_buffers())}
    inside = {name for name in tensors if any(name.startswith(p + ".") for p in places)}
    return places <= set(modules) and set(recipe["tensors"]) == tensors - inside


def _replace(model, path: str, module) -> None:
    parent, _, attr = path.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    if not hasattr(owner, attr):
        raise EntryRejected(f"stale: the model has no module {path}")
    setattr(owner, attr, module)


class _EntryReader:
    """Reads tensors from an entry into fresh memory, each checked against its CRC-32."""

    def __init__(self, path: Path, header: dict, crcs: dict, data_start: int):
        self.path, self.header, self.crcs, self.data_start = path, header, crcs, data_start
        self._file = None

    def __enter__(self):
        self._file = open(self.path, "rb")
        return self

    def __exit__(self, *exc):
        self._file.close()

    def nbytes(self, name: str) -> int:
        start, end = self.header[name]["data_offsets"]
        return end - start

    def _info(self, name: str):
        info = self.header.get(name)
        if info is None or info["dtype"] not in _DTYPES:
            raise EntryRejected(f"damaged: no usable tensor {name}")
        start, end = info["data_offsets"]
        if end - start != _SIZES[info["dtype"]] * _numel(info["shape"]):
            raise EntryRejected(f"damaged: tensor {name} has the wrong size")
        return info, self.data_start + start, end - start

    def read(self, name: str):
        torch = _torch()
        info, offset, nbytes = self._info(name)
        raw = torch.empty(nbytes, dtype=torch.uint8)
        self._read_into(name, raw, offset)
        return raw.view(getattr(torch, _DTYPES[info["dtype"]])).reshape(info["shape"])

    def _read_into(self, name: str, raw, offset: int) -> None:
        """Fill the uint8 tensor ``raw`` from the file at ``offset`` and check it."""
        nbytes = raw.numel()
        if nbytes and os.preadv(self._file.fileno(), [memoryview(raw.numpy())], offset) != nbytes:  # thread-safe
            raise EntryRejected(f"truncated inside tensor {name}")
        self._check(name, raw.numpy())

    def file_table(self, name: str, pool_key: tuple):
        """A bfloat16 token table left in the file, read a few rows at a time (FileTable): checked here
        through a small buffer, so none of it becomes the process's memory."""
        info, offset, nbytes = self._info(name)
        if info["dtype"] != "BF16" or len(info["shape"]) != 2:
            return self.read(name)
        table = FileTable(self._file.fileno(), offset, info["shape"], pool_key)
        if f"{table.crc32():08x}" != self.crcs[name]:
            raise EntryRejected(f"damaged: tensor {name} fails its checksum")
        return table

    def read_qint8(self, name: str, scale):
        """An int8 matrix read straight into a quantized tensor (one scale per row, zero points 0), the form
        the quantized engine packs from: reading plain int8 values and making the quantized tensor from them
        would copy every matrix once more while it waits to be packed."""
        torch = _torch()
        info, offset, nbytes = self._info(name)
        if info["dtype"] != "I8" or len(info["shape"]) != 2 or scale.shape != (info["shape"][0],):
            raise EntryRejected("damaged: an int8 matrix's parts do not fit together")
        q = torch._empty_per_channel_affine_quantized(info["shape"], scales=scale, axis=0, dtype=torch.qint8,
                                                      zero_points=torch.zeros(len(scale), dtype=torch.long))
        self._read_into(name, torch.empty(0, dtype=torch.uint8).set_(q.untyped_storage(), 0, (nbytes,), (1,)), offset)
        return q

    def _check(self, name: str, data) -> None:
        if f"{zlib.crc32(data):08x}" != self.crcs[name]:
            raise EntryRejected(f"damaged: tensor {name} fails its checksum")

    def read_int8(self, specs: list[dict], skip: set) -> dict:
        """weight name → PackedInt8 for every distinct int8 matrix whose pool key is not in ``skip``: its
        values read and checked now (on every core this process may use: reading and checksumming release
        the interpreter lock), packed for the quantized engine on first use or by the background packer
        (packing is most of what a cached load costs, and a caption needs the first model's matrices
        one layer at a time)."""
        from concurrent.futures import ThreadPoolExecutor

        from igcap.threads import allowed_cores

        todo = {spec["weight"]: spec for spec in specs if tuple(spec["pool"]) not in skip}
        if len(todo) < 2 or allowed_cores() < 2:
            return {name: self.packed(spec) for name, spec in todo.items()}
        with ThreadPoolExecutor(max_workers=allowed_cores(), thread_name_prefix="igcap-int8-cache") as workers:
            return dict(zip(todo, workers.map(self.packed, todo.values())))

    def packed(self, spec: dict):
        """An int8 matrix from its stored values, scales and bias, all read and checked now; packed for
        the dynamic linear when first used (a deterministic step from checked values, so a damaged entry
        is always found here, before the model exists)."""
        scale = self.read(spec["scale"])
        if scale.dtype != _torch().float64 or scale.dim() != 1:
            raise EntryRejected("damaged: an int8 matrix's parts do not fit together")
        weight = self.read_qint8(spec["weight"], scale)
        bias = self.read(spec["bias"]) if spec["bias"] else None
        if bias is not None and bias.shape != scale.shape:
            raise EntryRejected("damaged: an int8 matrix's parts do not fit together")
        from igcap import optimize

        return optimize.PackedInt8(None, spec["nbytes"], make=lambda: _prepack(weight, bias))


def _prepack(q, bias):
    import warnings

    with warnings.catch_warnings():  # quantized tensors are being phased out; the dynamic linear is not
        warnings.simplefilter("ignore")
        return _torch().ops.quantized.linear_prepack(q, bias)
