"""Which caption models exist and where their weights are: the four published models plus user extras.

Pure data: nothing here loads a model. `load_registry` applies, in order, the models folder
(IGCAP_MODELS_DIR/<key>), the models file (IGCAP_MODELS_FILE), per-model overrides (IGCAP_MODEL_<KEY>)
and the demo models found in the demo folder.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from igcap.config import ConfigError, Settings, env_key, key_of_variable

log = logging.getLogger(__name__)
MARKER_FILE = "igcap-model.json"  # written next to trained models; describes them to the registry


@dataclass(frozen=True)
class Base:
    """Where a base model's parts come from; tokenizer/processor are the fallbacks for bare repos."""

    tokenizer: str
    processor: str
    encoder: str | None = None  # for bases assembled from an encoder and a decoder
    decoder: str | None = None
    model: str | None = None  # for bases that are already a VisionEncoderDecoderModel


BASES: dict[str, Base] = {
    "vit-gpt2": Base(tokenizer="gpt2", processor="google/vit-base-patch16-224-in21k",
                     encoder="google/vit-base-patch16-224-in21k", decoder="gpt2"),
    "nlpconnect": Base(tokenizer="nlpconnect/vit-gpt2-image-captioning",
                       processor="nlpconnect/vit-gpt2-image-captioning",
                       model="nlpconnect/vit-gpt2-image-captioning"),
}
DEFAULT_BASE = BASES["vit-gpt2"]  # the fallback for extra models of unknown origin


class Origin(StrEnum):
    """Where a spec's source was set: what to change when it cannot be read is said in those terms."""

    DEFAULT = "default"  # one of the four published models, from the hub
    MODELS_DIR = "models dir"  # IGCAP_MODELS_DIR/<key>
    MODELS_FILE = "models file"  # the source of [models.<key>] in IGCAP_MODELS_FILE
    ENVIRONMENT = "environment"  # IGCAP_MODEL_<KEY>
    DEMO = "demo"  # a marker in the demo models folder


@dataclass(frozen=True)
class ModelSpec:
    key: str  # stable identifier, stored with every caption
    label: str  # what people see
    source: str  # hub id or local directory
    base: str | None = None  # a key of BASES, or None
    strategy: str | None = None  # "last-block", "all", or None (not fine-tuned by us)
    description: str = ""
    revision: str | None = None  # hub revision (branch, tag or commit)
    demo: bool = False  # trained on synthetic shapes: always labelled as such
    origin: Origin = Origin.DEFAULT  # where ``source`` was set

    @property
    def is_local(self) -> bool:
        if self.origin in (Origin.MODELS_DIR, Origin.DEMO):
            return True
        if self.origin is Origin.DEFAULT:  # a published hub id (or a folder given in code): no guessing
            return self.source.startswith(("/", ".", "~")) or Path(self.source).expanduser().is_dir()
        return source_is_local(self.source)

    @property
    def base_files(self) -> Base:
        return BASES.get(self.base or "", DEFAULT_BASE)


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")  # name or org/name, as the hub allows them


def source_is_local(source: str) -> bool:
    """Whether a source a person gave names a folder, there or not: anything that cannot be a hub id
    (two or more "/", a "\\", a space, a drive letter), a path from "/", "." or "~", an existing folder, and
    org/name where a folder org is here (models/vit-gpt2-all before the download). A hub id
    is org/name, or a bare name for the hub's oldest models."""
    path = Path(source).expanduser()
    if source.startswith(("/", ".", "~")) or path.is_absolute() or path.is_dir() or not _HUB_ID.fullmatch(source):
        return True
    return "/" in source and Path(source.split("/", 1)[0]).is_dir()


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("vit-gpt2-last-block", "ViT-GPT2 · last block", "Stoneman/IG-caption-generator-vit-gpt2-last-block",
              "vit-gpt2", "last-block", "ViT + GPT-2 joined fresh; only GPT-2's last block, final norm and head tuned."),
    ModelSpec("vit-gpt2-all", "ViT-GPT2 · all parameters", "Stoneman/IG-caption-generator-vit-gpt2-all",
              "vit-gpt2", "all", "ViT + GPT-2 joined fresh; every parameter tuned on Instagram captions."),
    ModelSpec("nlpconnect-last-block", "nlpconnect · last block",
              "Stoneman/IG-caption-generator-nlpconnect-last-block", "nlpconnect", "last-block",
              "A COCO-trained captioner; only GPT-2's last block, final norm and head tuned."),
    ModelSpec("nlpconnect-all", "nlpconnect · all parameters", "Stoneman/IG-caption-generator-nlpconnect-all",
              "nlpconnect", "all", "A COCO-trained captioner with every parameter tuned on Instagram captions."),
)
DEFAULT_KEYS = tuple(m.key for m in DEFAULT_MODELS)
SPEC_FIELDS = ("label", "source", "base", "strategy", "description", "revision", "demo")
MAY_BE_EMPTY = ("description",)  # any other field given as "" is a slip (source "" was the current folder)


def check_key(key: str, where: str) -> None:
    """ConfigError, naming ``where`` the key came from, for a key the database cannot store (db.models'
    MODEL_KEY_LENGTH), the key of hand-written captions, or one with spaces at its ends (saved trimmed)."""
    from db.models import MANUAL, MODEL_KEY_LENGTH  # here, not at import: db brings SQLAlchemy

    if not key or len(key) > MODEL_KEY_LENGTH:
        raise ConfigError(f"{where}: a model key must be 1 to {MODEL_KEY_LENGTH} characters, and {key!r} has "
                          f"{len(key)}; choose a shorter key")
    if key.strip().casefold() == MANUAL:
        raise ConfigError(f"{where}: the model key {key!r} is reserved for captions written by hand; choose another key")
    if key != key.strip():
        raise ConfigError(f"{where}: the model key {key!r} has spaces at its ends; leave them out")


def load_registry(settings: Settings | None = None) -> dict[str, ModelSpec]:
    """All models the app can offer, keyed and ordered: the four defaults first, then extras."""
    settings = settings or Settings.from_env()
    models = {m.key: m for m in DEFAULT_MODELS}
    if settings.models_dir:
        models = _apply_models_dir(models, settings.models_dir)
    if settings.models_file:
        models = _apply_models_file(models, settings.models_file)
    models = _apply_overrides(models, settings.source_overrides or {})
    models.update(_demo_models(settings.demo_dir))
    return _distinct_labels(models)


def _distinct_labels(models: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
    """Two models under one label (a models file, an override) each get their key after it: the leaderboard's
    charts and the win-rate table go by label, and merged two models' bars into one."""
    seen = Counter(spec.label for spec in models.values())
    return {key: replace(spec, label=f"{spec.label} ({key})") if seen[spec.label] > 1 else spec
            for key, spec in models.items()}


def _apply_models_dir(models: dict[str, ModelSpec], folder: Path) -> dict[str, ModelSpec]:
    out = dict(models)
    for key, spec in models.items():
        local = folder / key
        if (local / "config.json").is_file():
            out[key] = replace(spec, source=str(local), revision=None, origin=Origin.MODELS_DIR)
    return out


def models_dir_problem(settings: Settings) -> str | None:
    """Why IGCAP_MODELS_DIR gives no model, or a model sub-folder it skips (one without config.json), for the
    Models page and `igcap models` to warn of; None when it is unset or every sub-folder named for a model is
    used. (The registry itself takes what the folder holds and goes on.)"""
    folder = settings.models_dir
    if folder is None:
        return None
    where = f"IGCAP_MODELS_DIR={folder}" + ("" if folder.is_absolute() else f" (relative to {Path.cwd()})")
    usual = "every model comes from its usual source"
    if not folder.exists():
        return f"{where} does not exist; {usual}"
    if not folder.is_dir():
        return f"{where} is not a folder; {usual}"
    held = [key for key in DEFAULT_KEYS if (folder / key / "config.json").is_file()]
    skipped = [f"{key} has no config.json" for key in DEFAULT_KEYS if (folder / key).is_dir() and key not in held]
    if not held:
        expected = ", ".join(f"{key}/config.json" for key in DEFAULT_KEYS)
        return f"{where} holds no model: {'; '.join([*skipped, ''])}expected {expected}; {usual}"
    return f"{where}: {', '.join(skipped)}, so it is not used" if skipped else None


def _apply_models_file(models: dict[str, ModelSpec], path: Path) -> dict[str, ModelSpec]:
    """[models.<key>] tables: known keys are overridden field by field, new keys are added (source needed)."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"IGCAP_MODELS_FILE {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"IGCAP_MODELS_FILE {path} could not be read: {err}") from None
    if unknown := sorted(set(document) - {"models"}):
        raise ConfigError(f"{path}: unknown top-level {unknown}; the file holds [models.<key>] tables only "
                          "(a misspelt [model.<key>]?)")
    tables = document.get("models", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: models must be one table per model, [models.<key>], not {type(tables).__name__}")
    out = dict(models)
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: models.{key} must be a table ([models.{key}] with fields {SPEC_FIELDS}), "
                              f"not {type(table).__name__}")
        unknown = set(table) - set(SPEC_FIELDS)
        if unknown:
            raise ConfigError(f"{path}: [models.{key}] has unknown fields {sorted(unknown)}; allowed: {SPEC_FIELDS}")
        if wrong := [f for f, v in table.items() if not isinstance(v, bool if f == "demo" else str)]:
            raise ConfigError(f"{path}: [models.{key}] {', '.join(wrong)}: demo must be true or false, "
                              "every other field a string")
        check_key(key, f"{path}: [models.{key}]")
        if empty := [f for f, v in table.items() if isinstance(v, str) and not v.strip() and f not in MAY_BE_EMPTY]:
            raise ConfigError(f"{path}: [models.{key}] {', '.join(empty)} is empty; give a value or leave the line "
                              "out" + (" (source: a hub id, org/name, or a folder)" if "source" in empty else ""))
        if "base" in table and table["base"] not in BASES:
            raise ConfigError(f"{path}: [models.{key}] base {table['base']!r} is not one of {', '.join(BASES)}; "
                              "leave it out for a model whose folder or repository holds its tokenizer and "
                              "image processor")
        origin = {"origin": Origin.MODELS_FILE} if "source" in table else {}
        if key in out:
            out[key] = replace(out[key], **table, **origin)
        elif "source" not in table:
            raise ConfigError(f"{path}: [models.{key}] is a new model and needs a source (hub id or folder)")
        else:
            out[key] = ModelSpec(key=key, label=table.get("label", key), **origin,
                                 **{k: v for k, v in table.items() if k != "label"})
    return out


def _apply_overrides(models: dict[str, ModelSpec], overrides: dict[str, str]) -> dict[str, ModelSpec]:
    """IGCAP_MODEL_<KEY>=source: replaces a known model's source, or adds a model named after <KEY>."""
    out = dict(models)
    by_var = {env_key(key): key for key in models}
    for var, source in overrides.items():
        source = source.strip()
        key = by_var.get(var) or key_of_variable(var)
        check_key(key, var)
        marked = spec_from_marker(Path(source).expanduser(), key=key) if _has_marker(source) else None
        if marked:  # a folder we trained: its marker says what it is (a demo model stays labelled as one)
            base = out.get(key)
            out[key] = replace(marked, label=marked.label if marked.demo or not base else base.label,
                               origin=Origin.ENVIRONMENT)
        elif key in out:
            out[key] = replace(out[key], source=source, revision=None, origin=Origin.ENVIRONMENT)
        else:
            out[key] = ModelSpec(key, key, source, description=f"Added by {var}.", origin=Origin.ENVIRONMENT)
    return out


def _has_marker(source: str) -> bool:
    return source_is_local(source) and (Path(source).expanduser() / MARKER_FILE).is_file()


def sources_fingerprint(settings: Settings | None = None) -> tuple:
    """What the registry was read from, as modification times: it changes when a model folder or marker is
    added, removed or rewritten (e.g. by `python -m igcap demo-models`), so a running app can notice
    new local models without a restart. Cheap: a few stat calls."""
    settings = settings or Settings.from_env()
    stamps = []
    for path in (settings.demo_dir, settings.models_dir, settings.models_file):
        if path is None:
            continue
        path = Path(path).expanduser()
        stamps.append((str(path), _mtime(path)))
        if path.is_dir():
            for child in sorted(path.iterdir()):
                stamps.append((child.name, _mtime(child), _mtime(child / MARKER_FILE), _mtime(child / "config.json")))
    for source in (settings.source_overrides or {}).values():
        if source_is_local(source):
            folder = Path(source).expanduser()
            stamps.append((source, _mtime(folder / MARKER_FILE), _mtime(folder / "config.json")))
    return tuple(stamps)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _demo_models(folder: Path) -> dict[str, ModelSpec]:
    """Models trained by `python -m igcap demo-models`, described by their marker files."""
    found = {}
    for marker in sorted(Path(folder).glob(f"*/{MARKER_FILE}")):
        try:
            spec = spec_from_marker(marker.parent)
        except ConfigError as err:  # one odd folder among the demo models: skipped, as an unreadable marker is
            log.warning("ignoring %s: %s (rename the folder or edit its key)", marker.parent, err)
            continue
        if spec is not None:
            found[spec.key] = replace(spec, origin=Origin.DEMO)
    return found


def spec_from_marker(folder: Path, key: str | None = None) -> ModelSpec | None:
    """The ModelSpec for a trained model folder, from its marker file (None if unreadable), under ``key``
    or else the marker's key (demo- in front for a demo model); ConfigError for a key that would break later."""
    try:
        meta = json.loads((Path(folder) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("ignoring %s: %s", folder, err)
        return None
    demo = bool(meta.get("demo"))
    if key is None:
        key = str(meta.get("key") or Path(folder).name)
        key = f"demo-{key}" if demo and not key.startswith("demo-") else key
        check_key(key, f"{Path(folder) / MARKER_FILE} (its key, or the folder's name)")
    label = str(meta.get("label") or key)
    if demo and "demo" not in label.lower():
        label = f"Demo: {label} (synthetic shapes)"
    return ModelSpec(key=key, label=label, source=str(Path(folder).resolve()), base=meta.get("base"),
                     strategy=meta.get("strategy"), description=str(meta.get("description", "")), demo=demo)
