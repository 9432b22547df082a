"""igcap: Instagram captions from four fine-tuned ViT-GPT2 models.

The public API; importing it loads no model and no torch.
"""

from igcap.captioner import CaptionResult, Captioner, ModelFailure, ModelRun, ProgressEvent, caption_photos
from igcap.config import ConfigError, Settings
from igcap.data import load_splits, read_captions
from igcap.demo import build_demo_models, write_demo_data
from igcap.decoding import DEFAULT_PRESET, PRESETS, DecodingError, DecodingSettings
from igcap.images import Photo, PhotoError, load_photo, load_photo_file
from igcap.loading import LoadedModel, LoadOptions, ModelCache, ModelLoadError, cache_from_settings, load_captioner
from igcap.registry import DEFAULT_MODELS, ModelSpec, load_registry
from igcap.instagram import InstagramLimits, InstagramStats, instagram_stats
from igcap.text import clean_caption
from igcap.train import TrainSettings, train, train_all

__all__ = [
    "CaptionResult", "Captioner", "ModelFailure", "ModelRun", "ProgressEvent", "caption_photos",
    "ConfigError", "Settings",
    "DEFAULT_PRESET", "PRESETS", "DecodingError", "DecodingSettings",
    "Photo", "PhotoError", "load_photo", "load_photo_file",
    "LoadedModel", "LoadOptions", "ModelCache", "ModelLoadError", "cache_from_settings", "load_captioner",
    "DEFAULT_MODELS", "ModelSpec", "load_registry",
    "clean_caption", "InstagramLimits", "InstagramStats", "instagram_stats",
    "load_splits", "read_captions", "build_demo_models", "write_demo_data", "TrainSettings", "train", "train_all",
]
