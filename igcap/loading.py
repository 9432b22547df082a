"""Loading caption models: from the hub or a folder, with fallbacks, onto the right device, in a bounded cache.

A model that cannot be loaded raises ModelLoadError with what went wrong and what to do; the cache
keeps the other models working.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from igcap import architecture, attention, hub, light_model, optimize, threads
from igcap.config import ConfigError, Settings, env_key
from igcap.int8_cache import Int8Cache, Int8CacheOptions
from igcap.registry import DEFAULT_KEYS, DEFAULT_MODELS, ModelSpec, Origin, load_registry

log = logging.getLogger(__name__)
PROCESSOR_FILE = "preprocessor_config.json"
VIT_DEFAULTS_NOTE = "image processor: ViT defaults (224 px, mean = std = 0.5)"  # no processor anywhere


FLOAT_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class LoadOptions:
    device: str = "auto"  # auto picks cuda, then mps, then cpu
    quantize: bool | None = None  # int8 weights; None = auto (on for CPU only)
    share_weights: bool = True  # keep tensors that several loaded models hold identically only once
    threads: int | None = None  # torch threads each model's generate runs on; None = every allowed core
    int8_cache: Int8CacheOptions | None = None  # prepared int8 weights kept on disk (None: not kept)
    lean_decoding: bool = True  # greedy captions through igcap.lean_decoding where it gives generate's tokens
    # a model in the int8 cache is loaded as igcap's light model (no transformers import until a request
    # needs generate: LoadedModel.transformers); the app, CLI and benchmark turn it on with lean decoding
    light: bool = False
    # float weights' precision (models not in int8): None = float16 on CUDA, float32 elsewhere; or one of
    # FLOAT_DTYPES (the GPU row measures float16 and bfloat16)
    dtype: str | None = None

    def __post_init__(self):
        if self.dtype is not None and self.dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, not {self.dtype!r}")

    def float_dtype(self, device: str) -> str:
        """The precision of float weights on ``device``."""
        return self.dtype or ("float16" if device == "cuda" else "float32")

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadOptions:
        return cls(device=settings.device, quantize=settings.quantize, threads=settings.threads,
                   int8_cache=Int8CacheOptions(settings.int8_cache_folder, settings.int8_cache_mb),
                   lean_decoding=settings.lean_decoding, light=settings.lean_decoding)

    def quantize_on(self, device: str) -> bool:
        return device == "cpu" if self.quantize is None else self.quantize and device == "cpu"


class ModelLoadError(Exception):
    """A model that cannot be used now: `message` says why, `hint` what to do about it."""

    def __init__(self, key: str, message: str, hint: str = ""):
        super().__init__(f"{key}: {message}")
        self.key, self.message, self.hint = key, message, hint


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: object  # VisionEncoderDecoderModel, eval mode
    tokenizer: object
    processor: object
    device: str
    nbytes: int  # memory its tensors take (shared ones counted in full)
    seconds: float  # load time
    quantized: bool = False
    fallbacks: list[str] = field(default_factory=list)  # parts borrowed from the base, for the Models page
    threads: int = 0  # torch threads its captioning runs on (generate's wrapper and the lean loop); 0 = torch's count
    lean_decoding: bool = True  # greedy captions through igcap.lean_decoding where it gives generate's tokens

    _full: LoadedModel | None = field(default=None, repr=False, compare=False)  # transformers(), once made

    @property
    def light(self) -> bool:
        """igcap's own modules (light_model): captions through the lean loops, no transformers imported."""
        return light_model.is_light(self.model)

    @property
    def eos_token_id(self) -> int:
        return self.model.eos_id if self.light else self.model.generation_config.eos_token_id

    def transformers(self) -> LoadedModel:
        """This model with transformers' objects, for what only they do (generate, the training loss, the
        tokenizer's encoding): a light model's tensors moved into a transformers model (no copy), and
        transformers' tokenizer and image processor. Made once; a transformers model returns itself."""
        if not self.light:
            return self
        with _LOADING:
            if self._full is None:
                self._full = _with_transformers(self)
            return self._full

    @property
    def input_dtype(self):
        return next(self.model.encoder.parameters()).dtype


@dataclass(frozen=True)
class ModelStatus:
    state: str  # "not loaded", "loaded" or "failed"
    message: str = ""
    hint: str = ""
    nbytes: int = 0


def pick_device(preference: str = "auto") -> str:
    """The device models run on: ``preference`` (IGCAP_DEVICE), or the first of cuda, mps, cpu this host has.
    A GPU asked for where there is none is a ConfigError (every model would fail to load, each saying so)."""
    import torch

    available = {"cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
                 "cpu": True}
    if preference == "auto":
        return next(device for device, here in available.items() if here)
    if not available.get(preference, False):
        kind = "CUDA GPU" if preference == "cuda" else "Apple GPU (MPS)"
        raise ConfigError(f"IGCAP_DEVICE={preference} but no {kind} is available (torch {torch.__version__}); "
                          "set IGCAP_DEVICE=auto or cpu")
    return preference


# transformers' from_pretrained is not safe in two threads at once (it switches torch's process-wide
# default dtype and builds on the meta device: two float models loading together failed with "Cannot
# copy out of meta tensor"); loading is also the memory peak. One model loads at a time.
_LOADING = threading.Lock()


def load_captioner(spec: ModelSpec, options: LoadOptions = LoadOptions(), pool=None) -> LoadedModel:
    """Model + tokenizer + image processor for one spec, ready for `generate` (raises ModelLoadError)."""
    with _LOADING:
        return _load_captioner(spec, options, pool)


def _load_captioner(spec: ModelSpec, options: LoadOptions, pool) -> LoadedModel:
    start = time.perf_counter()
    device = pick_device(options.device)
    quantize = options.quantize_on(device)
    _check_local_source(spec)
    _check_hub_source(spec)
    if options.light and quantize and device == "cpu" and options.int8_cache is not None and options.int8_cache.enabled:
        light = _light_captioner(spec, options, pool, start)
        if light is not None:
            return light
    try:  # the weights first: when they are missing, that is the problem to report, not the fallbacks
        model = _instantiate_model(spec, device, quantize, pool, int8_cache=options.int8_cache,
                                   dtype=options.float_dtype(device))
        attention.use_one_thread_attention(model)  # captions that do not depend on the thread count
        tokenizer, tok_note = _load_tokenizer(spec)
        processor, proc_note = _load_processor(spec)
    except ModelLoadError:
        raise
    except Exception as err:  # the hub, safetensors and configs raise many types; all mean "cannot load"
        raise _explain(spec, err) from err
    caption_threads = threads.caption_threads(options.threads)
    threads.run_generate_on(model, caption_threads)
    eos = tokenizer.eos_token_id
    architecture.set_token_ids(model, architecture.GPT2_EOS_ID if eos is None else eos)
    notes = [n for n in (tok_note, proc_note) if n]
    return LoadedModel(spec, model, tokenizer, processor, device, optimize.model_nbytes(model),
                       time.perf_counter() - start, quantize, notes, caption_threads, options.lean_decoding)


def _light_captioner(spec: ModelSpec, options: LoadOptions, pool, start: float) -> LoadedModel | None:
    """The model as igcap's light model, from its int8 cache entry, with light_inputs' tokenizer and image
    processor: nothing of transformers imported. None when any part is not reproduced exactly (the
    config, the tokenizer or processor files, the entry): the caller loads it through transformers."""
    from igcap.light_inputs import PROCESSOR_FILES, LightProcessor, LightTokenizer

    if not optimize.quantized_engine_available():
        return None
    folder = _files_folder(spec.source, spec.revision)
    config = light_model.read_config(folder) if folder else None
    if config is None:
        return None
    light_tokenizer = _shared_tokenizer(lambda f, revision=None: LightTokenizer.from_folder(f), _LIGHT_TOKENIZERS)
    tokenizer, tok_note = _light_part(folder, light_tokenizer, lambda f: bool(_tokenizer_files(f)),
                                      spec.base_files.tokenizer, "tokenizer", "tokenizer.json")
    processor, proc_note = _light_part(folder, LightProcessor.from_folder,
                                       lambda f: any((f / name).is_file() for name in PROCESSOR_FILES),
                                       spec.base_files.processor, "image processor", PROCESSOR_FILE,
                                       default=(LightProcessor.defaults, VIT_DEFAULTS_NOTE))
    if tokenizer is None or processor is None:
        return None
    try:
        model = Int8Cache(options.int8_cache).load(spec.source, spec.revision, pool, light=config)
    except Exception as err:  # noqa: BLE001  the transformers path then loads it, and reports what it finds
        log.info("%s: no light model (%s)", spec.key, err)
        return None
    if model is None:
        return None
    model.set_token_ids(architecture.GPT2_EOS_ID if tokenizer.eos_token_id is None else tokenizer.eos_token_id)
    notes = [n for n in (tok_note, proc_note) if n]
    return LoadedModel(spec, model, tokenizer, processor, "cpu", optimize.model_nbytes(model), time.perf_counter() - start,
                       True, notes, threads.caption_threads(options.threads), options.lean_decoding)


def _light_part(folder: Path, make, has_files, base: str, what: str, probe: str, default=None):
    """The repo's own (light) tokenizer or processor, else the base's (its folder found by its ``probe``
    file): (part, note) or (None, ""). The base's only where the repo holds none of that part's files
    (``has_files(folder)``): files of its own that ``make`` does not reproduce are the transformers path's
    to read (LoadedModel.transformers() reads them too), and the base's would decode or normalise otherwise.
    ``default`` (make, note): what the transformers path uses when neither holds such files at all."""
    found = make(folder)
    if found is not None:
        return found, ""
    if has_files(folder):
        return None, ""
    base_folder = _files_folder(base, None, probe)
    found = make(base_folder) if base_folder else None
    if found is not None:
        return found, f"{what} from base {base}"
    if default is not None and base_folder and not has_files(base_folder):
        return default[0](), default[1]
    return None, ""


def _files_folder(source: str, revision: str | None, probe: str = "config.json") -> Path | None:
    """The folder holding a source's files: a local folder, or the snapshot of a hub repo whose ``probe``
    file is already downloaded (None when it is not: the transformers path downloads what it needs; a base
    repo read for its processor may hold its preprocessor_config.json and no config.json)."""
    local = Path(source).expanduser()
    if local.is_dir():
        return local
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source, probe, revision=revision)
    return Path(found).parent if isinstance(found, str) else None


def _with_transformers(light: LoadedModel) -> LoadedModel:
    spec = light.spec
    model = light_model.to_transformers(light.model, spec.source, spec.revision)
    tokenizer, _ = _load_tokenizer(spec)
    processor, _ = _load_processor(spec)
    threads.run_generate_on(model, light.threads)
    architecture.set_token_ids(model, light.model.eos_id)
    return replace(light, model=model, tokenizer=tokenizer, processor=processor, _full=None)


def _instantiate_model(spec: ModelSpec, device: str, quantize: bool, pool, int8_cache: Int8CacheOptions | None = None,
                       dtype: str = "float32"):
    """from_pretrained, then the inference levers (int8 weights, shared tensors); eval, no grads.

    With int8 on CPU: mapped from the int8 cache when it holds this model, else read and quantized
    (lean when the checkpoint allows) and then written to the cache for the next start."""
    if quantize and device == "cpu" and optimize.quantized_engine_available():
        cache = Int8Cache(int8_cache) if int8_cache is not None and int8_cache.enabled else None
        read_as = cache.key(spec.source, spec.revision) if cache else None  # the files as they are read
        model = cache.load(spec.source, spec.revision, pool, key=read_as) if read_as else None
        if model is None:
            model = _quantized_from_checkpoint(spec, pool)
            if read_as is not None:
                cache.store(spec.source, spec.revision, model, pool, read_as=read_as)
        return model
    return _float_from_checkpoint(spec, device, quantize, pool, dtype)


def _quantized_from_checkpoint(spec: ModelSpec, pool):
    try:  # memory-lean: read and quantize module by module, never the whole float model at once
        return optimize.load_int8_lean(spec.source, revision=spec.revision, pool=pool)
    except optimize.LeanLoadUnsupported as err:
        log.info("%s: loading the float model first (%s)", spec.key, err)
    return _float_from_checkpoint(spec, "cpu", True, pool)


def _float_from_checkpoint(spec: ModelSpec, device: str, quantize: bool, pool, dtype: str = "float32"):
    import torch
    from transformers import VisionEncoderDecoderModel

    dtype = torch.float32 if quantize else getattr(torch, dtype)  # int8 is made from float32 weights
    model = VisionEncoderDecoderModel.from_pretrained(spec.source, revision=spec.revision, dtype=dtype)
    model.eval().requires_grad_(False)
    model = optimize.prepare_for_inference(model, quantize=quantize, pool=pool)
    return model.to(device)


def _load_tokenizer(spec: ModelSpec):
    """The repo's tokenizer, else the base's (the published repos may lack tokenizer files).

    Models whose tokenizer files are identical (the four published models all use GPT-2's) get the same
    tokenizer object: a GPT-2 tokenizer costs about 0.3 s of CPU to build (transformers parses its 3 MB
    tokenizer.json in Python, then the tokenizers library parses it again), and it is only read."""
    from transformers import AutoTokenizer

    sources = [(spec.source, spec.revision), (spec.base_files.tokenizer, None)]
    tokenizer, note = _first_that_loads(spec, _shared_tokenizer(AutoTokenizer.from_pretrained), sources, "tokenizer")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, note


_TOKENIZERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # files' content key → tokenizer
_LIGHT_TOKENIZERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # the same for light_inputs' tokenizers
_TOKENIZER_FILE_PREFIXES = ("tokenizer", "vocab", "merges", "special_tokens_map", "added_tokens", "chat_template",
                            "spiece", "sentencepiece")


def _shared_tokenizer(load, shared: weakref.WeakValueDictionary = _TOKENIZERS):
    def load_shared(source, revision=None):
        key = tokenizer_files_key(source, revision)
        found = shared.get(key) if key else None
        if found is not None:
            return found
        tokenizer = load(source, revision=revision)
        if key and tokenizer is not None:
            shared[key] = tokenizer
        return tokenizer

    return load_shared


def tokenizer_files_key(source: str, revision: str | None) -> tuple | None:
    """What a tokenizer is built from, by content: every tokenizer file of the folder (a local folder,
    or the hub snapshot already downloaded) and the config fields that choose the tokenizer's class.
    None when the files are not all on disk (the tokenizer is then loaded, and not shared)."""
    import hashlib
    import json

    folder = Path(source).expanduser()
    if not folder.is_dir():
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(source, "tokenizer_config.json", revision=revision)
        if not isinstance(found, str):
            return None
        folder = Path(found).parent
    files = _tokenizer_files(folder)
    if not any(f.name in ("tokenizer.json", "vocab.json", "tokenizer.model", "spiece.model") for f in files):
        return None
    try:
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        decoder = config.get("decoder") if isinstance(config.get("decoder"), dict) else {}
        chooser = [config.get("model_type"), config.get("tokenizer_class"), decoder.get("model_type"),
                   decoder.get("tokenizer_class")]
        return (json.dumps(chooser), *((f.name, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files))
    except (OSError, ValueError):
        return None


def _tokenizer_files(folder: Path) -> list[Path]:
    """The folder's files a tokenizer may be read from (_TOKENIZER_FILE_PREFIXES), sorted."""
    return sorted(f for f in folder.iterdir() if f.name.startswith(_TOKENIZER_FILE_PREFIXES) and f.is_file())


def _load_processor(spec: ModelSpec):
    """The repo's image processor, else the base's, else ViT defaults (224 px, mean = std = 0.5)."""
    sources = [(spec.source, spec.revision), (spec.base_files.processor, None)]
    try:
        return _first_that_loads(spec, _image_processor, sources, "image processor")
    except ModelLoadError:
        return architecture.vit_processor(), VIT_DEFAULTS_NOTE


def _image_processor(source, revision=None):
    """AutoImageProcessor's answer; where it needs torchvision and there is none (transformers before
    5.24 picks the torchvision processor and raises ImportError; later ones fall back by themselves),
    the ViT processor from the same files, which then falls back to its Pillow version: the captioners
    here are ViT's."""
    from transformers import AutoImageProcessor, ViTImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(source, revision=revision)
    except ImportError as err:
        log.info("%s: %s; reading its files as a ViT image processor", source, str(err).splitlines()[0])
        return ViTImageProcessor.from_pretrained(source, revision=revision)


class NothingLoaded(Exception):
    """None of the sources gave the part asked for; ``errors``: one line per source."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def first_that_loads(load, sources, what: str) -> tuple[object, int]:
    """``load(source, revision=revision)`` for each (source, revision) in turn: the first part that loads and
    its index (missing files raise OSError, a bare repo ValueError); NothingLoaded when none does."""
    errors = []
    for i, (source, revision) in enumerate(sources):
        try:
            return load(source, revision=revision), i
        except (OSError, ValueError, TypeError) as err:
            errors.append(f"{source}: {str(err).splitlines()[0]}")
            log.info("no %s in %s: %s", what, source, errors[-1])
    raise NothingLoaded(errors)


def _first_that_loads(spec: ModelSpec, load, sources, what: str):
    try:
        found, i = first_that_loads(load, sources, what)
    except NothingLoaded as err:
        base = sources[-1][0]
        raise ModelLoadError(spec.key, f"No {what} could be found: neither {spec.source} nor its base {base} "
                             f"provides one here ({err}).",
                             f"Download the base once (`hf download {base}`) or put {what} files next to the model.") \
            from None
    return found, (f"{what} from base {sources[i][0]}" if i else "")


MODEL_FILES = "config.json, model.safetensors"  # what a model folder needs (tokenizer and processor may be the base's)


def _check_local_source(spec: ModelSpec) -> None:
    if spec.is_local and not (Path(spec.source).expanduser() / "config.json").is_file():
        where = "does not exist" if not Path(spec.source).expanduser().exists() else "holds no config.json"
        raise ModelLoadError(spec.key, f"The folder {spec.source} {where}.", _missing_folder_hint(spec))


def _missing_folder_hint(spec: ModelSpec) -> str:
    """What to do about a model folder that is not there, in the terms of the setting that named it: a
    variable the person never set is not named, and a hub copy is offered only where there is one."""
    hub_copy = spec.key in DEFAULT_KEYS
    if spec.origin is Origin.DEMO:
        return "Build the demo models again (a few minutes on a CPU): `python -m igcap demo-models`."
    if spec.origin is Origin.MODELS_DIR:
        return (f"Put the downloaded model back in {spec.source} ({MODEL_FILES}), or delete that folder from "
                "IGCAP_MODELS_DIR to use the hub copy.")
    if spec.origin is Origin.MODELS_FILE:
        fix = (f"fix the source of [models.{spec.key}] in the IGCAP_MODELS_FILE file: a folder with the downloaded "
               f"model ({MODEL_FILES}) or a hub id (org/name)"
               + ("; without a source line the hub copy is used." if hub_copy else "."))
    elif spec.origin is Origin.ENVIRONMENT:
        fix = (f"point {env_key(spec.key)} at a folder with the downloaded model ({MODEL_FILES}) or a hub id "
               f"(org/name)" + (", or unset it to use the hub copy." if hub_copy else "."))
    else:
        return f"Put the downloaded model in {spec.source} ({MODEL_FILES}), or point {env_key(spec.key)} at its folder."
    text = (f"download it there{_fill(spec)}; or " if hub_copy else "") + fix
    return text[0].upper() + text[1:]


def _use_folder(spec: ModelSpec, folder: str) -> str:
    """The setting that makes ``spec`` read ``folder``, in the place its source was set."""
    if spec.origin is Origin.MODELS_FILE:
        return f'source = "{folder}" in [models.{spec.key}] of the IGCAP_MODELS_FILE file'
    return f"{env_key(spec.key)}={folder}" + (" (or IGCAP_MODELS_DIR=models)" if spec.origin is Origin.DEFAULT else "")


def _could_be_folder(spec: ModelSpec) -> bool:
    """A source a person gave that is looked up on the hub (org/name) but may have been meant as a folder
    relative to the current one (models/vit-gpt2-all before it was downloaded)."""
    return spec.origin in (Origin.MODELS_FILE, Origin.ENVIRONMENT) and not spec.is_local


def _no_folder(spec: ModelSpec) -> str:
    """Words for a hub lookup's failure: that the source is no folder here either, where it could be one."""
    return f"there is no folder {spec.source} (relative to {Path.cwd()})" if _could_be_folder(spec) else ""


def _hub_miss_hint(spec: ModelSpec, hint: str, as_hub_id: str) -> str:
    """``hint`` for a hub id; for a source that could be a folder, what to do in either case (``as_hub_id``
    if it is one): the download command names the published model's hub id, never the folder, and the
    setting is not sent back to the value it holds."""
    if not _could_be_folder(spec):
        return hint
    return (f"If {spec.source} is meant as a folder, put the model there ({MODEL_FILES}){_fill(spec)}, or give "
            f"its full path. If it is a hub id, {as_hub_id}.")


def _fill(spec: ModelSpec) -> str:
    """How to download a published model into the folder its setting names ("" for any other model)."""
    published = {m.key: m.source for m in DEFAULT_MODELS}.get(spec.key)
    return f": `hf download {published} --local-dir {spec.source}`" if published else ""


def _check_hub_source(spec: ModelSpec) -> None:
    """Fail in seconds, not minutes of retries, when the model must come from a hub that cannot be reached."""
    avail = availability(spec)
    if avail.state == "unreachable":
        raise ModelLoadError(spec.key, f"Not downloaded yet, and {avail.detail}.", _hub_miss_hint(
            spec, f"Connect to the internet, or download it elsewhere: `{download_command(spec)}`; "
                  f"then set {_use_folder(spec, f'models/{spec.key}')}.", "connect to the internet"))


def download_command(spec: ModelSpec) -> str:
    return f"hf download {spec.source} --local-dir models/{spec.key}"


def source_help(spec: ModelSpec) -> tuple[str, str]:
    """(what to do, shell lines) to get this model, for its kind of source: a demo model, a local folder
    or a hub repository. A local folder is never offered to `hf download`."""
    if spec.demo:
        return (f"A demo model trained on synthetic shapes, read from the folder {spec.source}. "
                "Build the demo models again (a few minutes on a CPU) if the folder is gone:",
                "python -m igcap demo-models")
    if spec.is_local:
        return (f"Read from the local folder {spec.source}, which needs {MODEL_FILES} (tokenizer and "
                f"image-processor files too, or those of its base model). {_missing_folder_hint(spec)}",
                _set_line(spec, "/path/to/the/model/folder"))
    if _could_be_folder(spec):
        looked_up = f"{spec.source} is looked up on the Hugging Face hub, as {_no_folder(spec)}. "
        if _fill(spec):  # a published model: the folder meant is filled from the published repository
            return (looked_up + "If it is meant as a folder, download the model into it:", _fill(spec).strip(": `"))
        return (looked_up + "If it is meant as a folder, put the model there or give its full path; if it is a hub "
                "id, download it once on a machine with internet, then point igcap at the folder:",
                f"{download_command(spec)}\n{_set_line(spec, f'models/{spec.key}')}")
    return ("Download once on a machine with internet, then point igcap at the folder:",
            f"{download_command(spec)}\n{_set_line(spec, f'models/{spec.key}')}")


def _set_line(spec: ModelSpec, folder: str) -> str:
    """``_use_folder`` as a line to type (a shell export) or to write (the models file's line)."""
    if spec.origin is Origin.MODELS_FILE:
        return f'# in the IGCAP_MODELS_FILE file, under [models.{spec.key}]:\nsource = "{folder}"'
    return f"export {env_key(spec.key)}={folder}" + (
        "   # or IGCAP_MODELS_DIR=models for all models" if spec.origin is Origin.DEFAULT else "")


def _explain(spec: ModelSpec, err: Exception) -> ModelLoadError:
    """Turn a loading exception into a message a person can act on."""
    text = " ".join(str(err).split())
    chain = f"{type(err).__name__} {type(err.__cause__).__name__} {text}".lower()
    download = download_command(spec)
    offline = f"then set {_use_folder(spec, f'models/{spec.key}')} to run offline"
    no_folder = f"; {_no_folder(spec)}" if _could_be_folder(spec) else ""
    if "localentrynotfound" in chain or "couldn't connect" in chain or "offline" in chain:
        return ModelLoadError(spec.key, f"Not downloaded yet, and the Hugging Face hub cannot be reached{no_folder}.",
                              _hub_miss_hint(spec, f"Connect to the internet once, or download it elsewhere: "
                                                   f"`{download}`; {offline}.", "connect to the internet once"))
    if "repositorynotfound" in chain or "404" in chain or "not a valid model identifier" in chain:
        return ModelLoadError(spec.key, f"There is no model {spec.source!r} on the Hugging Face hub{no_folder}.",
                              _hub_miss_hint(spec, f"Check the id, or set {_use_folder(spec, '/path/to/the/model/folder')}.",
                                             "check it"))
    if "safetensor" in chain or "json" in chain or "header" in chain or "size mismatch" in chain:
        return ModelLoadError(spec.key, f"The model files are damaged or incomplete ({text[:160]}).",
                              f"Delete them and download again: `{download}`.")
    return ModelLoadError(spec.key, f"Could not load the model: {text[:200]}",
                          f"Check {spec.source}; `{download}` fetches a fresh copy.")


class ModelCache:
    """Models loaded on first use and kept up to a count and a memory budget (least recently used leave first).

    Thread-safe: Streamlit shares one cache between sessions. The count bound covers every model the
    process holds, not only those kept: a model being loaded takes a place, and so does one in use
    (``lease``), which is never dropped while in use. When every place is taken by models in use or
    being loaded, a request for another model waits for one to be handed back, so however many sessions
    ask at once, at most ``max_models`` models exist. Models already loaded are handed out at once,
    and one slow load does not block the others.

    A model is what its spec named, and its local folder held, when it was loaded: ``use_registry`` drops
    it once either changes (at once when idle, else when its last lease ends; a request made meanwhile
    waits for the new one), and forgets a failed load.
    """

    def __init__(self, registry: dict[str, ModelSpec], options: LoadOptions = LoadOptions(), max_models: int = 4,
                 budget_mb: int | None = None, loader=load_captioner):
        self.registry, self.options, self.max_models, self.budget_mb = registry, options, max_models, budget_mb
        self.pool = optimize.TensorPool() if options.share_weights else None
        self._loader = loader
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._failed: dict[str, ModelLoadError] = {}
        self._loading: set[str] = set()
        self._in_use: Counter[str] = Counter()  # key → leases open on it
        self._loaded_from: dict[str, tuple] = {}  # key → what its model (or failure) came from: _source_state(spec)
        self._stale: set[str] = set()  # loaded, in use, no longer what the registry names: dropped on release
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    def get(self, key: str) -> LoadedModel:
        """The model, loaded if needed (the cache may drop it later: use ``lease`` while captioning)."""
        with self.lease(key) as loaded:
            return loaded

    @contextmanager
    def lease(self, key: str) -> Iterator[LoadedModel]:
        """The model, kept loaded (and counted in the bound) until the block ends."""
        loaded = self._acquire(key)
        try:
            yield loaded
        finally:
            del loaded
            self._release(key)

    @contextmanager
    def lease_if_loaded(self, key: str) -> Iterator[LoadedModel | None]:
        """Like ``lease`` for a model already loaded; None (never a load, never a wait) otherwise."""
        with self._changed:
            if key not in self._loaded or key in self._stale:
                loaded = None
            else:
                self._loaded.move_to_end(key)
                self._in_use[key] += 1
                loaded = self._loaded[key]
        if loaded is None:
            yield None
            return
        try:
            yield loaded
        finally:
            del loaded
            self._release(key)

    def _release(self, key: str) -> None:
        with self._changed:
            self._in_use[key] -= 1
            if self._in_use[key] <= 0:
                del self._in_use[key]
                if key in self._stale:
                    self._drop(key)
            self._evict_over_bounds()
            self._changed.notify_all()

    def use_registry(self, registry: dict[str, ModelSpec]) -> None:
        """Take a newer registry (models added or changed on disk). A key whose spec, or whose local folder's
        files, changed since its model was loaded (a models file pointing it at other weights, `python -m igcap
        demo-models` run again) loses that model, at once when idle, else when its last lease ends, and a
        failed load of it is forgotten: the next request loads what the registry names now."""
        now = {key: _source_state(spec) for key, spec in registry.items()}  # a few stat calls, outside the lock
        with self._changed:
            self.registry = registry
            for key in [k for k, made in self._loaded_from.items() if made != now.get(k)]:
                self._forget(key)
            self._changed.notify_all()

    def _forget(self, key: str) -> None:
        """``key``'s model and failure are not what the registry names any more."""
        self._failed.pop(key, None)
        self._loaded_from.pop(key, None)
        if key in self._in_use:
            self._stale.add(key)
        else:
            self._drop(key)

    def _acquire(self, key: str) -> LoadedModel:
        with self._changed:
            while True:
                spec = self.registry.get(key)
                if spec is None:
                    raise ModelLoadError(key, "No model has this key.", f"Choose one of: {', '.join(self.registry)}.")
                if key in self._loaded and key not in self._stale:
                    self._loaded.move_to_end(key)
                    self._in_use[key] += 1
                    return self._loaded[key]
                # a stale model stays until its last lease ends: never two models under one key
                if key not in self._loaded and key not in self._loading and self._make_room():
                    self._loading.add(key)
                    break
                self._changed.wait()  # loading elsewhere, a stale one still in use, or every place in use
        threads.limit_to_allowed_cores()  # here, not at construction: building the cache must not import torch
        state = _source_state(spec)  # before the load: files changed while it reads them show as a change
        try:
            # on the captioning count, whoever asks (a Generate, the warm-up, the Models page, the CLI, the bench)
            with threads.torch_threads(threads.caption_threads(self.options.threads)):
                loaded = self._loader(spec, self.options, self.pool)
        except BaseException as err:
            with self._changed:
                self._loading.discard(key)
                if isinstance(err, ModelLoadError) and self.registry.get(key) == spec:
                    self._failed[key] = err
                    self._loaded_from[key] = state
                self._changed.notify_all()
            raise
        with self._changed:
            self._loading.discard(key)
            self._failed.pop(key, None)
            self._loaded[key] = loaded
            self._loaded_from[key] = state
            if self.registry.get(key) != spec:  # the registry changed while it loaded: this caller's only
                self._stale.add(key)
            self._in_use[key] += 1
            self._evict_over_bounds()
            self._changed.notify_all()
        log.info("loaded %s in %.1f s (%.0f MB)", key, loaded.seconds, loaded.nbytes / 2**20)
        return loaded

    def _held(self) -> set[str]:
        return set(self._loaded) | self._loading | set(self._in_use)

    def _make_room(self) -> bool:
        """Drop models not in use (least recently used first) until one more fits; False if none can go."""
        while len(self._held()) >= self.max_models:
            idle = next((k for k in self._loaded if k not in self._in_use), None)
            if idle is None:
                return False
            self._drop(idle)
        return True

    def _evict_over_bounds(self) -> None:
        """Drop idle models (least recently used first) while over the count or the memory budget."""
        budget = None if self.budget_mb is None else self.budget_mb * 2**20
        while len(self._loaded) > 1 and (len(self._held()) > self.max_models
                                         or (budget is not None and self.nbytes() > budget)):
            idle = next((k for k in self._loaded if k not in self._in_use), None)
            if idle is None:
                return
            self._drop(idle)

    def _drop(self, key: str) -> None:
        self._stale.discard(key)
        loaded = self._loaded.pop(key, None)
        if loaded is not None:
            self._loaded_from.pop(key, None)
            # the encoder memo's entries hold the weights that computed them (its transformers() model holds
            # the very same tensors)
            optimize.ENCODER_MEMO.forget(loaded.model)
        del loaded
        gc.collect()
        log.info("evicted %s", key)

    def nbytes(self) -> int:
        """Memory held by the loaded models, shared tensors counted once."""
        with self._lock:
            return optimize.models_nbytes([m.model for m in self._loaded.values()])

    def status(self, key: str) -> ModelStatus:
        """The state of the model the registry names under ``key`` (one still in use under an older spec,
        dropped when released, is not it)."""
        with self._lock:
            if key in self._loaded and key not in self._stale:
                return ModelStatus("loaded", nbytes=self._loaded[key].nbytes)
            if key in self._failed:
                err = self._failed[key]
                return ModelStatus("failed", err.message, err.hint)
        return ModelStatus("not loaded")

    def loaded_keys(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def evict(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def clear(self) -> None:
        with self._lock:
            for key in list(self._loaded):
                self._drop(key)
            self._failed.clear()
            self._loaded_from.clear()


def _source_state(spec: ModelSpec | None) -> tuple | None:
    """What a model is loaded from, to notice a change: its source, revision and base (not its label or
    description, which a same-named model's arrival rewrites), and for a local folder every file in it
    (name, size, modification time: a model rebuilt in place keeps its spec). None for no spec."""
    if spec is None:
        return None
    weights = (spec.source, spec.revision, spec.base, spec.is_local)  # not its label: a new label reloaded it
    if not spec.is_local:
        return (weights, None)  # a hub model is named by its id and revision
    try:
        files = [(f.name, f.stat()) for f in Path(spec.source).expanduser().iterdir() if f.is_file()]
    except OSError:  # no folder (yet), or one being rewritten: its files on the next look
        files = []
    return (weights, tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in files)))


def cache_from_settings(settings: Settings | None = None) -> ModelCache:
    settings = settings or Settings.from_env()
    return ModelCache(load_registry(settings), LoadOptions.from_settings(settings), settings.max_loaded_models,
                      settings.memory_budget_mb)


@dataclass(frozen=True)
class Availability:
    state: str  # "loaded", "local", "cached", "downloadable", "missing", "offline", "unreachable" or "failed"
    detail: str

    @property
    def usable(self) -> bool:
        return self.state in ("loaded", "local", "cached", "downloadable")


def availability(spec: ModelSpec) -> Availability:
    """Whether a model can be loaded, judged from files and, for a model still to download, from one
    remembered probe of the hub (igcap.hub: seconds at most, asked again after a while)."""
    from huggingface_hub import constants, try_to_load_from_cache

    if spec.is_local:
        folder = Path(spec.source).expanduser()
        if (folder / "config.json").is_file():
            return Availability("local", f"local folder {folder}")
        return Availability("missing", f"folder {folder} has no model (config.json)")
    cached = try_to_load_from_cache(spec.source, "config.json", revision=spec.revision)
    if isinstance(cached, str):
        return Availability("cached", "downloaded (Hugging Face cache)")
    no_folder = f"; {_no_folder(spec)}" if _could_be_folder(spec) else ""
    if constants.HF_HUB_OFFLINE:
        return Availability("offline", f"not downloaded, and HF_HUB_OFFLINE is set{no_folder}")
    state = hub.hub_state()
    if not state.reachable:
        return Availability("unreachable", f"the Hugging Face hub cannot be reached: {state.reason}; "
                                           f"asked again in {state.retry_in_s():.0f} s{no_folder}")
    return Availability("downloadable", "downloads from the Hugging Face hub on first use")


def model_availability(cache: ModelCache) -> dict[str, Availability]:
    """Model key → Availability, the one answer for the Create page, the Models page and the CLI: what the
    cache knows (loaded, or failed and why) first, then the files and the hub."""
    out = {}
    for key, spec in cache.registry.items():
        status = cache.status(key)
        if status.state == "loaded":
            out[key] = Availability("loaded", "loaded")
        elif status.state == "failed":
            out[key] = Availability("failed", f"{status.message} {status.hint}".strip().rstrip("."))
        else:
            out[key] = availability(spec)
    return out
