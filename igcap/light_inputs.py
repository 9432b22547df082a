"""Photo preprocessing and caption decoding without importing transformers, giving transformers' results.

Importing transformers' processor and tokenizer classes costs about 1.5 s and 133 MiB (torch._dynamo,
sympy, scipy...), yet what a ViT → GPT-2 captioner needs from them is small:

- ``LightProcessor`` does what ``AutoImageProcessor.from_pretrained`` gives for a ViT folder here (transformers 5
  without torchvision falls back to ``ViTImageProcessorPil``): each image as an (H, W, 3) uint8 array made into
  a PIL image again, Pillow's ``resize`` to (width, height) with the configured filter, then in NumPy
  ``uint8 → float64 × rescale_factor → float32``, ``(x − mean) / std`` in float32, channels first. Same
  arithmetic in the same order, so the pixel values are bit-identical (tests/igcap/test_light_inputs.py).
- ``LightTokenizer`` decodes with the folder's tokenizer.json through the ``tokenizers`` library, the same
  backend ``AutoTokenizer`` decodes with, and repeats what transformers adds around it.

Each ``from_…`` returns None for anything it does not reproduce exactly (another processor or tokenizer
class, a setting it has not been checked against); the caller then loads transformers' classes. Both
objects are immutable after construction, so Streamlit's session threads may share them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from igcap.architecture import VIT_IMAGE_SIZE, VIT_MEAN, VIT_STD

# ---------------------------------------------------------------- images

# the class names under which AutoImageProcessor builds ViTImageProcessorPil here
_VIT_TYPES = {"image_processor_type": {"ViTImageProcessor", "ViTImageProcessorFast", "ViTImageProcessorPil"},
              "feature_extractor_type": {"ViTFeatureExtractor"}}
_ALWAYS_ON = ("do_resize", "do_rescale", "do_normalize")  # off would change the output's shape or dtype
_OFF = ("do_center_crop", "do_pad")  # accepted only as false or null, which skip the step
_NULL_IS_OFF = (*_OFF, "do_convert_rgb")
_PIL_FILTERS = range(6)  # NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING: passed to Image.resize as is
# what AutoImageProcessor reads from a folder: the nested "image_processor" of processor_config.json first
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


@dataclass(frozen=True)
class ProcessedImages:
    pixel_values: object  # torch.Tensor (N, 3, height, width), float32


@dataclass(frozen=True)
class LightProcessor:
    """A ViT image processor's arithmetic; the defaults are ``igcap.architecture.vit_processor()``'s."""

    height: int = VIT_IMAGE_SIZE
    width: int = VIT_IMAGE_SIZE
    resample: int = 2  # a PIL filter number (2 = bilinear)
    rescale_factor: float = 1 / 255
    image_mean: tuple[float, float, float] = VIT_MEAN
    image_std: tuple[float, float, float] = VIT_STD
    convert_rgb: bool = False  # do_convert_rgb: alpha composited onto white, other modes converted

    @classmethod
    def defaults(cls) -> LightProcessor:
        return cls()

    @classmethod
    def from_folder(cls, folder: str | Path) -> LightProcessor | None:
        """From a folder's preprocessor_config.json; None also when the folder holds a processor_config.json
        (transformers reads the image processor nested in it first, which this does not)."""
        folder = Path(folder)
        if (folder / PROCESSOR_FILES[1]).exists():
            return None
        return cls.from_file(folder / PROCESSOR_FILES[0])

    @classmethod
    def from_file(cls, path: str | Path) -> LightProcessor | None:
        """From a preprocessor_config.json; None when the file is unreadable or asks for what this does not do."""
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls.from_config(config) if isinstance(config, dict) else None

    @classmethod
    def from_config(cls, config: dict) -> LightProcessor | None:
        # null is off for the optional steps; elsewhere transformers refuses it or reads it otherwise
        config = {key: value for key, value in config.items() if value is not None or key not in _NULL_IS_OFF}
        known = {*_VIT_TYPES, *_ALWAYS_ON, *_OFF, "do_convert_rgb", "size", "resample", "rescale_factor", "image_mean",
                 "image_std"}
        if set(config) - known or not _is_vit(config) or any(config.get(key, True) is not True for key in _ALWAYS_ON):
            return None
        convert_rgb = config.get("do_convert_rgb", False)
        if any(config.get(key, False) is not False for key in _OFF) or not isinstance(convert_rgb, bool):
            return None
        size = _size(config.get("size", VIT_IMAGE_SIZE))
        resample, factor = config.get("resample", 2), config.get("rescale_factor", 1 / 255)
        mean, std = _triple(config.get("image_mean", VIT_MEAN)), _triple(config.get("image_std", VIT_STD))
        if size is None or mean is None or std is None or 0.0 in std:
            return None
        if not _is_int(resample) or resample not in _PIL_FILTERS or not _is_number(factor):
            return None
        return cls(size[0], size[1], resample, float(factor), mean, std, convert_rgb)

    def to_json_string(self) -> str:
        """Equal for two processors that compute the same thing (the captioner's cache key)."""
        return json.dumps({"light_processor": asdict(self)}, sort_keys=True)

    def __call__(self, images, return_tensors: str = "pt") -> ProcessedImages:
        """``images``: a PIL image or a list of them. ValueError for images that transformers refuses too
        (without do_convert_rgb, anything but three 8-bit channels: RGBA, L, P, CMYK...)."""
        import torch

        if return_tensors != "pt":
            raise ValueError(f"LightProcessor returns torch tensors only (return_tensors='pt'), not {return_tensors!r}")
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        if not images:
            raise ValueError("No images to process")
        resized = np.stack([self._resized(image) for image in images])  # (N, H, W, 3) uint8
        scaled = (resized.astype(np.float64) * self.rescale_factor).astype(np.float32)
        mean, std = np.array(self.image_mean, dtype=np.float32), np.array(self.image_std, dtype=np.float32)
        normalized = (scaled - mean) / std  # float32, as transformers' normalize on a float32 image
        return ProcessedImages(torch.from_numpy(np.ascontiguousarray(normalized.transpose(0, 3, 1, 2))))

    def _resized(self, image: Image.Image) -> np.ndarray:
        if self.convert_rgb:
            image = _as_rgb(image)
        if image.mode != "RGB":  # transformers goes through np.array(image) and back, seeing the bands as RGB
            array = np.asarray(image)
            if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
                raise ValueError(f"A {image.mode} image cannot be normalized with 3 channel means "
                                 "(transformers' ViT processor refuses it too); convert it to RGB first")
            image = Image.fromarray(array)
        return np.asarray(image.resize((self.width, self.height), resample=self.resample))


def _is_vit(config: dict) -> bool:
    types = {key: config[key] for key in _VIT_TYPES if key in config}
    return bool(types) and all(value in _VIT_TYPES[key] for key, value in types.items())


def _as_rgb(image: Image.Image) -> Image.Image:
    """transformers' convert_to_rgb for a PIL image: transparency composited onto white."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def _size(size) -> tuple[int, int] | None:
    """(height, width) from the forms transformers reads as a fixed size; None for aspect-keeping ones."""
    if isinstance(size, dict) and set(size) == {"height", "width"}:
        size = [size["height"], size["width"]]
    elif _is_int(size):
        size = [size, size]
    ok = isinstance(size, list) and len(size) == 2 and all(_is_int(side) and side > 0 for side in size)
    return (size[0], size[1]) if ok else None


def _triple(values) -> tuple[float, float, float] | None:
    ok = isinstance(values, list | tuple) and len(values) == 3 and all(_is_number(v) for v in values)
    return tuple(float(v) for v in values) if ok else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


# ---------------------------------------------------------------- tokens

# tokenizer_config.json classes whose decode is the backend's: TokenizersBackend (PreTrainedTokenizerFast is
# its alias) loads tokenizer.json as is; GPT2Tokenizer rebuilds a byte-level BPE from its vocabulary, which
# decodes the same when the added tokens are in that vocabulary (checked in `_added_tokens_match`).
_TOKENIZER_CLASSES = {"TokenizersBackend": False, "PreTrainedTokenizerFast": False, "GPT2Tokenizer": True,
                      "GPT2TokenizerFast": True}  # class → rebuilds from the vocabulary
_NAMED_SPECIAL = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_SPECIAL_LISTS = ("additional_special_tokens", "extra_special_tokens")
_CLEAN_UP = ("clean_up_tokenization_spaces", "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output")
# settings that only change encoding (or nothing at all) in transformers 5
_ENCODE_ONLY = {"add_bos_token", "add_eos_token", "add_prefix_space", "backend", "errors", "model_max_length",
                "model_input_names", "name_or_path", "padding_side", "truncation_side", "split_special_tokens",
                "special_tokens_map_file", "trim_offsets", "tokenizer_class"}
_GPT2_DEFAULTS = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}


@dataclass(frozen=True, eq=False)  # one object per tokenizer (sessions share it; tables are kept per object)
class LightTokenizer:
    """``tokenizer.decode`` of a byte-level BPE tokenizer, as transformers 5 gives it, and the vocabulary
    lookups the emoji limit reads (``len``, ``convert_ids_to_tokens``, the special tokens)."""

    backend: object  # tokenizers.Tokenizer: its decode takes &self, so threads may share it
    eos_token_id: int | None
    pad_token_id: int | None  # the config's pad token, else eos (as igcap.loading sets it)
    clean_up: bool  # transformers' clean_up_tokenization, which it applies to BPE only when forced
    all_special_tokens: tuple[str, ...] = ()  # the tokens the config names (bos, eos, unk, pad, … additional)

    @property
    def all_special_ids(self) -> list[int]:
        return [self.backend.token_to_id(token) for token in self.all_special_tokens]

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def convert_ids_to_tokens(self, ids) -> list[str | None]:
        return [self.backend.id_to_token(int(i)) for i in ids]

    @classmethod
    def from_folder(cls, folder: str | Path) -> LightTokenizer | None:
        """From tokenizer.json + tokenizer_config.json (+ special_tokens_map.json); None when unsure."""
        from tokenizers import Tokenizer

        folder = Path(folder)
        if (folder / "added_tokens.json").exists():
            return None
        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
            mapped = folder / "special_tokens_map.json"
            special_map = json.loads(mapped.read_text(encoding="utf-8")) if mapped.is_file() else {}
            backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception:  # OSError, ValueError, and tokenizers' plain Exception for a damaged tokenizer.json
            return None
        if not isinstance(config, dict) or not isinstance(special_map, dict):
            return None
        if "tokenizer_class" not in config:  # as GPT-2's own repo: AutoTokenizer goes by the model's type
            config = {**config, "tokenizer_class": _class_for_model(folder)}
        return cls.from_parts(backend, config, special_map)

    @classmethod
    def from_parts(cls, backend, config: dict, special_map: dict | None = None) -> LightTokenizer | None:
        rebuilds = _TOKENIZER_CLASSES.get(config.get("tokenizer_class"))
        allowed = _ENCODE_ONLY | {*_NAMED_SPECIAL, *_SPECIAL_LISTS, *_CLEAN_UP, "added_tokens_decoder"}
        if rebuilds is None or set(config) - allowed or set(special_map or {}) - {*_NAMED_SPECIAL, *_SPECIAL_LISTS}:
            return None
        if type(backend.model).__name__ != "BPE" or type(backend.decoder).__name__ != "ByteLevel":
            return None
        named = _special_tokens(config, special_map or {}, rebuilds)
        if named is None or not _added_tokens_match(backend, named, config.get("added_tokens_decoder"), rebuilds):
            return None
        eos = backend.token_to_id(named["eos_token"]) if named.get("eos_token") else None
        pad = backend.token_to_id(named["pad_token"]) if named.get("pad_token") else eos
        if not all(isinstance(config.get(key, False), bool) for key in _CLEAN_UP):
            return None
        clean_up = all(config.get(key, False) for key in _CLEAN_UP)
        special = tuple(dict.fromkeys(token for value in named.values()
                                      for token in (value if isinstance(value, list) else [value])))
        return cls(backend, eos, pad, clean_up, special)

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """One sequence of ids (ints, or anything int() takes: a 1-d tensor's items) to text."""
        text = self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        return clean_up_tokenization(text) if self.clean_up else text


def _class_for_model(folder: Path) -> str | None:
    """The tokenizer class AutoTokenizer picks from config.json when tokenizer_config.json names none: GPT-2's
    for a GPT-2 model that names no class either; None (not reproduced) for anything else."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(config, dict) and config.get("model_type") == "gpt2" and "tokenizer_class" not in config:
        return "GPT2Tokenizer"
    return None


def _special_tokens(config: dict, special_map: dict, rebuilds: bool) -> dict[str, str | list[str]] | None:
    """The special tokens transformers names: tokenizer_config's, overridden by special_tokens_map.json
    (read only when the config has no added_tokens_decoder), GPT2Tokenizer's defaults under both."""
    merged = {**(_GPT2_DEFAULTS if rebuilds else {}), **config}
    if "added_tokens_decoder" not in config:
        merged.update(special_map)
    named = {}
    for key in (*_NAMED_SPECIAL, *_SPECIAL_LISTS):
        value = merged.get(key)
        if value is None or (key == "extra_special_tokens" and value == {}):  # no model-specific tokens
            continue
        many = key in _SPECIAL_LISTS
        contents = [_content(v) for v in value] if many and isinstance(value, list) else [_content(value)]
        if None in contents:  # a dict of model-specific tokens, or a value that is not a token
            return None
        named[key] = contents if many else contents[0]
    return named


def _content(token) -> str | None:
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else None


def _added_tokens_match(backend, named: dict, added_decoder, rebuilds: bool) -> bool:
    """Whether transformers would decode with exactly the tokenizer.json's added tokens: every token the
    config names is one of them, marked special (so nothing is added at load); for GPT2Tokenizer, which
    drops them and adds the named ones again, each must also sit at its id in the BPE vocabulary."""
    added = backend.get_added_tokens_decoder()  # id → AddedToken
    special = {token.content: i for i, token in added.items() if token.special}
    names = [n for value in named.values() for n in (value if isinstance(value, list) else [value])]
    for i, token in (added_decoder or {}).items():
        if not isinstance(token, dict) or not str(i).isdigit():
            return False
        if special.get(token.get("content")) != int(i) or token.get("special") is not True:
            return False
        names.append(token["content"])
    if any(name not in special for name in names):
        return False
    if rebuilds:
        return all(t.special and t.content in names and backend.model.token_to_id(t.content) == i
                   for i, t in added.items())
    return True


def clean_up_tokenization(text: str) -> str:
    """transformers' PreTrainedTokenizerBase.clean_up_tokenization."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text
