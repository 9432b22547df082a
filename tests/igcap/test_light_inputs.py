"""igcap.light_inputs against transformers: bit-identical pixel values and decoded text, None for what it
does not reproduce, no transformers import, and shared use from threads."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igcap import architecture, bench
from igcap.images import load_photo_file
from igcap.light_inputs import LightProcessor, LightTokenizer
from tests import builders

ROOT = Path(__file__).resolve().parents[2]
PHOTO_DIRS = [ROOT.parent / "shared" / "photos", ROOT.parents[1] / "shared" / "photos"]  # main checkout, worktree
PHOTOS = next((d for d in PHOTO_DIRS if d.is_dir()), None)
VIT_CONFIG = {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5] * 3,
              "image_std": [0.5] * 3, "image_processor_type": "ViTImageProcessor", "resample": 2,
              "rescale_factor": 1 / 255, "size": {"height": 224, "width": 224}}


# ---------------------------------------------------------------- helpers

def auto_processor(folder: Path):
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(folder)


def auto_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def config_folder(tmp_path: Path, name: str, config: dict) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    return folder


def noise(size, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Random pixels: every rounding difference shows (a flat colour would hide most)."""
    bands = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}
    if mode not in bands:
        return noise(size, "RGB", seed).convert(mode)
    data = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], bands[mode]), dtype=np.uint8)
    return Image.frombytes(mode, size, data.tobytes())


def same_pixels(folder: Path, images) -> torch.Tensor:
    """Assert LightProcessor gives AutoImageProcessor's exact pixel values; return them."""
    light = LightProcessor.from_file(folder / "preprocessor_config.json")
    assert light is not None
    expected = auto_processor(folder)(images=images, return_tensors="pt").pixel_values
    got = light(images=images, return_tensors="pt").pixel_values
    assert got.dtype == expected.dtype == torch.float32 and got.shape == expected.shape
    assert torch.equal(got, expected)
    return got


# ---------------------------------------------------------------- fixtures

def _saved(tmp_path_factory, name: str, thing) -> Path:
    folder = tmp_path_factory.mktemp(name)
    thing.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory) -> Path:
    return _saved(tmp_path_factory, "vit-processor", architecture.vit_processor())


@pytest.fixture(scope="module")
def tiny_processor_folder(tmp_path_factory) -> Path:
    return _saved(tmp_path_factory, "tiny-processor", builders.make_processor())


@pytest.fixture(scope="module")
def camera_photos() -> list[Image.Image]:
    if PHOTOS is None:
        pytest.skip(f"the shared camera photos are not here (looked in {', '.join(map(str, PHOTO_DIRS))})")
    return [load_photo_file(p).image for p in sorted(PHOTOS.glob("*.JPG"))]


@pytest.fixture(scope="module")
def tiny_tok_folder(tmp_path_factory) -> Path:
    return _saved(tmp_path_factory, "tiny-tokenizer", builders.make_tokenizer())


@pytest.fixture(scope="module")
def real_tok_folder(tmp_path_factory) -> Path:
    return _saved(tmp_path_factory, "real-vocab-tokenizer", bench.real_vocab_tokenizer())


@pytest.fixture(scope="module")
def real_tok_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("real-vocab-tokenizer")
    bench.real_vocab_tokenizer().save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- pixels

ODD_IMAGES = {"1x1": (1, 1), "3000x10": (3000, 10), "10x3000": (10, 3000), "7x5": (7, 5), "224x224": (224, 224),
              "301x199": (301, 199)}


@pytest.mark.parametrize("folder_fixture", ["vit_folder", "tiny_processor_folder"])
@pytest.mark.parametrize("size", list(ODD_IMAGES.values()), ids=list(ODD_IMAGES))
def test_odd_sizes_give_transformers_pixels(request, folder_fixture, size):
    same_pixels(request.getfixturevalue(folder_fixture), [noise(size, seed=size[0])])


def test_camera_photos_give_transformers_pixels(vit_folder, camera_photos):
    assert len(camera_photos) == 4
    assert camera_photos[1].size == (3024, 4032)  # upright by its EXIF orientation
    for photo in camera_photos:
        pixels = same_pixels(vit_folder, [photo])
        assert pixels.std() > 0.1  # a real picture, not a constant


def test_a_batch_of_several_sizes_gives_transformers_pixels(vit_folder):
    images = [noise(size, seed=i) for i, size in enumerate([(640, 480), (1, 1), (33, 900), (224, 224), (50, 51)])]
    pixels = same_pixels(vit_folder, images)
    assert pixels.shape == (5, 3, 224, 224) and pixels.is_contiguous()


def test_three_band_modes_are_read_as_rgb_like_transformers(vit_folder):
    for mode in ("YCbCr", "HSV", "LAB"):
        same_pixels(vit_folder, [noise((90, 70), "RGB").convert(mode)])


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK", "LA", "1", "I;16"])
def test_other_modes_are_refused_as_transformers_refuses_them(vit_folder, mode):
    image = noise((40, 30), "RGB").convert(mode)
    with pytest.raises(ValueError):
        auto_processor(vit_folder)(images=[image], return_tensors="pt")
    with pytest.raises(ValueError):
        LightProcessor.from_file(vit_folder / "preprocessor_config.json")(images=[image], return_tensors="pt")


def test_do_convert_rgb_composites_and_converts_like_transformers(tmp_path):
    folder = config_folder(tmp_path, "rgb", {**VIT_CONFIG, "do_convert_rgb": True})
    transparent_png = noise((20, 20), "RGB").convert("P")
    transparent_png.info["transparency"] = 3
    images = [noise((60, 40), mode) for mode in ("RGB", "RGBA", "L", "CMYK")]
    images += [noise((60, 40), "RGB").convert(mode) for mode in ("P", "LA", "1", "I;16")] + [transparent_png]
    same_pixels(folder, images)


CONFIGS = {
    "nlpconnect-style": {"do_normalize": True, "do_resize": True, "feature_extractor_type": "ViTFeatureExtractor",
                         "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 224},
    "both type keys": {**VIT_CONFIG, "feature_extractor_type": "ViTFeatureExtractor"},
    "fast type": {**VIT_CONFIG, "image_processor_type": "ViTImageProcessorFast"},
    "only the type": {"image_processor_type": "ViTImageProcessor"},
    "nulls": {**VIT_CONFIG, "do_center_crop": None, "do_pad": None, "do_convert_rgb": None},
    "explicit offs": {**VIT_CONFIG, "do_center_crop": False, "do_pad": False, "do_convert_rgb": False},
    "not square, as a list": {**VIT_CONFIG, "size": [96, 160]},
    "imagenet mean and std": {**VIT_CONFIG, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]},
    "integer mean": {**VIT_CONFIG, "image_mean": [0, 1, 0], "image_std": [1, 1, 2]},
    "other rescale": {**VIT_CONFIG, "rescale_factor": 0.003},
    **{f"resample {r}": {**VIT_CONFIG, "resample": r} for r in range(6)},
}


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
def test_accepted_configs_give_transformers_pixels(tmp_path, config):
    same_pixels(config_folder(tmp_path, "p", config), [noise((301, 199)), noise((17, 230), seed=1)])


def test_the_comparison_sees_a_one_step_difference(vit_folder):
    """Guards the tests above: another filter, or the rescale done in float32, would not pass as equal."""
    image = [noise((301, 199))]
    expected = auto_processor(vit_folder)(images=image, return_tensors="pt").pixel_values
    assert not torch.equal(LightProcessor(resample=3)(images=image).pixel_values, expected)
    resized = np.asarray(image[0].resize((224, 224), Image.Resampling.BILINEAR)).astype(np.float32)
    float32_rescale = (resized * np.float32(1 / 255) - 0.5) / 0.5  # transformers multiplies in float64
    assert not torch.equal(torch.from_numpy(float32_rescale.transpose(2, 0, 1)[None].copy()), expected)


REFUSED = {
    "center crop": {**VIT_CONFIG, "do_center_crop": True, "crop_size": {"height": 200, "width": 200}},
    "shortest edge": {**VIT_CONFIG, "size": {"shortest_edge": 224}},
    "int size, not square": {**VIT_CONFIG, "size": 224, "default_to_square": False},
    "null size": {**VIT_CONFIG, "size": None},
    "null resample": {**VIT_CONFIG, "resample": None},
    "float size": {**VIT_CONFIG, "size": {"height": 224.0, "width": 224}},
    "another processor": {**VIT_CONFIG, "image_processor_type": "CLIPImageProcessor"},
    "another feature extractor": {**VIT_CONFIG, "feature_extractor_type": "DeiTFeatureExtractor"},
    "no type": {key: value for key, value in VIT_CONFIG.items() if key != "image_processor_type"},
    "unknown key": {**VIT_CONFIG, "foo": 1},
    "data format": {**VIT_CONFIG, "data_format": "channels_last"},
    "no resize": {**VIT_CONFIG, "do_resize": False},
    "no rescale": {**VIT_CONFIG, "do_rescale": False},
    "truthy int": {**VIT_CONFIG, "do_normalize": 1},
    "pad": {**VIT_CONFIG, "do_pad": True},
    "resample name": {**VIT_CONFIG, "resample": "bilinear"},
    "resample out of range": {**VIT_CONFIG, "resample": 7},
    "scalar mean": {**VIT_CONFIG, "image_mean": 0.5},
    "four means": {**VIT_CONFIG, "image_mean": [0.5] * 4},
    "zero std": {**VIT_CONFIG, "image_std": [0.5, 0, 0.5]},
    "convert rgb as string": {**VIT_CONFIG, "do_convert_rgb": "yes"},
}


@pytest.mark.parametrize("config", list(REFUSED.values()), ids=list(REFUSED))
def test_configs_it_does_not_reproduce_give_none(tmp_path, config):
    assert LightProcessor.from_file(config_folder(tmp_path, "p", config) / "preprocessor_config.json") is None


def test_unreadable_files_give_none(tmp_path):
    assert LightProcessor.from_file(tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text("{not json")
    assert LightProcessor.from_file(tmp_path / "broken.json") is None
    (tmp_path / "list.json").write_text("[1, 2]")
    assert LightProcessor.from_file(tmp_path / "list.json") is None


def test_a_folder_with_a_processor_config_is_left_to_transformers(vit_folder, tmp_path):
    """transformers reads the image processor nested in processor_config.json before preprocessor_config.json."""
    folder = shutil.copytree(vit_folder, tmp_path / "p")
    assert LightProcessor.from_folder(folder) == LightProcessor.defaults()
    nested = {"image_processor": {**VIT_CONFIG, "image_mean": [0.4] * 3}}
    (folder / "processor_config.json").write_text(json.dumps(nested))
    assert list(auto_processor(folder).image_mean) == [0.4] * 3  # the premise: the nested one is read
    assert LightProcessor.from_folder(folder) is None


def test_defaults_are_vit_processor_and_the_json_string_is_a_cache_key(vit_folder):
    saved = LightProcessor.from_file(vit_folder / "preprocessor_config.json")
    assert saved == LightProcessor.defaults()
    nlp = LightProcessor.from_config(CONFIGS["nlpconnect-style"])
    assert nlp.to_json_string() == LightProcessor.defaults().to_json_string()  # the same arithmetic
    other = LightProcessor.from_config(CONFIGS["resample 3"])
    assert other.to_json_string() != LightProcessor.defaults().to_json_string()
    same_pixels(vit_folder, [noise((64, 48))])
    assert torch.equal(LightProcessor.defaults()(images=[noise((64, 48))]).pixel_values,
                       architecture.vit_processor()(images=[noise((64, 48))], return_tensors="pt").pixel_values)


# ---------------------------------------------------------------- tokens

def id_sequences(reference, seed: int = 0) -> list[list[int]]:
    """Random ids over the whole vocabulary, eos among them, empty, emoji cut mid-character, edge spaces."""
    rng = random.Random(seed)
    vocab, eos = len(reference), reference.eos_token_id
    sequences = [[], [eos], [eos, eos], list(range(min(vocab, 400)))]
    sequences += [[rng.randrange(vocab) for _ in range(rng.randrange(1, 40))] for _ in range(300)]
    sequences += [rng.sample(range(vocab), 10) + [eos] + rng.sample(range(vocab), 5) + [eos] for _ in range(50)]
    for text in ["a red circle 🎨 #shapes 😂🌅", "  leading and trailing  ", " I'm so excited , isn't it ?",
                 "🎨", "hello world, this is a caption .", "naïve café 東京 \n tab\t"]:
        ids = reference.encode(text, add_special_tokens=False)
        sequences += [ids, [eos, *ids, eos]] + [ids[:cut] for cut in range(1, len(ids))]  # every prefix
        sequences += [[i] for i in ids]  # single tokens: partial UTF-8 bytes on their own
    return sequences


def same_text(folder: Path, seed: int = 0) -> LightTokenizer:
    """Assert LightTokenizer decodes every sequence as AutoTokenizer does, special tokens kept or not."""
    light, reference = LightTokenizer.from_folder(folder), auto_tokenizer(folder)
    assert light is not None
    sequences = id_sequences(reference, seed)
    for skip in (True, False):
        expected = [reference.decode(ids, skip_special_tokens=skip) for ids in sequences]
        assert [light.decode(ids, skip_special_tokens=skip) for ids in sequences] == expected
    assert light.eos_token_id == reference.eos_token_id
    pad = reference.pad_token_id
    assert light.pad_token_id == (reference.eos_token_id if pad is None else pad)
    return light


def test_tiny_tokenizer_decodes_as_transformers(tiny_tok_folder):
    light = same_text(tiny_tok_folder)
    assert light.eos_token_id == 0
    assert light.decode([0, *auto_tokenizer(tiny_tok_folder).encode("a red circle")], skip_special_tokens=True) \
        == "a red circle"


def test_real_vocabulary_tokenizer_decodes_as_transformers(real_tok_folder):
    light = same_text(real_tok_folder, seed=1)
    assert light.eos_token_id == architecture.GPT2_EOS_ID
    assert "\ufffd" in light.decode([240])  # a lone lead byte of a 4-byte character (the test sees partial UTF-8)


def test_decode_takes_a_tensor(tiny_tok_folder):
    light, reference = LightTokenizer.from_folder(tiny_tok_folder), auto_tokenizer(tiny_tok_folder)
    ids = torch.tensor([0, 5, 17, 300, 0])
    assert light.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)


def copy_folder(source: Path, target: Path, config_changes: dict, **files: dict) -> Path:
    shutil.copytree(source, target)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.update(config_changes)
    (target / "tokenizer_config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    for name, content in files.items():
        (target / f"{name}.json").write_text(json.dumps(content))
    return target


VARIANTS = {
    "GPT2Tokenizer": {"tokenizer_class": "GPT2Tokenizer"},
    "GPT2Tokenizer, default specials": {"tokenizer_class": "GPT2Tokenizer", "bos_token": None, "eos_token": None,
                                        "unk_token": None},
    "GPT2TokenizerFast": {"tokenizer_class": "GPT2TokenizerFast"},
    "PreTrainedTokenizerFast": {"tokenizer_class": "PreTrainedTokenizerFast"},
    "pad token": {"pad_token": "<|endoftext|>"},
    "clean-up asked (ignored for BPE)": {"clean_up_tokenization_spaces": True},
    "clean-up forced": {"clean_up_tokenization_spaces": True,
                        "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output": True},
    "encode-only settings": {"add_prefix_space": True, "errors": "replace", "model_max_length": 1024,
                             "padding_side": "left", "add_bos_token": False},
    "added_tokens_decoder": {"added_tokens_decoder": {"0": {"content": "<|endoftext|>", "lstrip": False,
                                                            "normalized": False, "rstrip": False,
                                                            "single_word": False, "special": True}}},
    "extra special tokens": {"extra_special_tokens": ["<|endoftext|>"]},
    # transformers 4.4x-4.5x write this into every tokenizer_config.json: no model-specific tokens
    "empty model-specific special tokens": {"extra_special_tokens": {}},
    "empty model-specific special tokens beside a list": {"extra_special_tokens": {},
                                                          "additional_special_tokens": ["<|endoftext|>"]},
}


@pytest.mark.parametrize("changes", list(VARIANTS.values()), ids=list(VARIANTS))
def test_tokenizer_config_variants_decode_as_transformers(tiny_tok_folder, tmp_path, changes):
    same_text(copy_folder(tiny_tok_folder, tmp_path / "t", changes), seed=2)


def test_forced_clean_up_changes_the_text(tiny_tok_folder, tmp_path):
    """Guards the variants above: the clean-up is really applied, and really needed to match."""
    folder = copy_folder(tiny_tok_folder, tmp_path / "t", VARIANTS["clean-up forced"])
    ids = auto_tokenizer(folder).encode("I'm so excited , isn't it ?")
    light = LightTokenizer.from_folder(folder)
    assert light.decode(ids) == auto_tokenizer(folder).decode(ids) == "I'm so excited, isn't it?"
    assert light.backend.decode(ids) != light.decode(ids)


def test_special_tokens_map_overrides_as_in_transformers(tiny_tok_folder, tmp_path):
    folder = copy_folder(tiny_tok_folder, tmp_path / "t", {}, special_tokens_map={"pad_token": "<|endoftext|>"})
    assert same_text(folder).pad_token_id == 0


def test_an_added_special_token_beyond_the_vocabulary(tmp_path):
    """Decoded from tokenizer.json as transformers does; GPT2Tokenizer, which rebuilds the vocabulary and adds
    such tokens again, is left to transformers."""
    tokenizer = builders.make_tokenizer()
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    tokenizer.save_pretrained(tmp_path / "t")
    light = same_text(tmp_path / "t", seed=4)
    assert light.pad_token_id == len(tokenizer) - 1 and light.decode([light.pad_token_id]) == "<pad>"
    assert LightTokenizer.from_folder(copy_folder(tmp_path / "t", tmp_path / "g", VARIANTS["GPT2Tokenizer"])) is None


def test_what_it_does_not_reproduce_gives_none(tiny_tok_folder, tmp_path):
    refused = {
        "bert": ({"tokenizer_class": "BertTokenizer"}, {}),
        "no class": ({"tokenizer_class": None}, {}),
        "unknown setting": ({"do_lower_case": True}, {}),
        "special token missing from tokenizer.json": ({"pad_token": "<pad>"}, {}),
        "model-specific special tokens": ({"extra_special_tokens": {"image_token": "<|endoftext|>"}}, {}),
        "clean-up not a bool": ({"clean_up_tokenization_spaces": 1}, {}),
        "added_tokens_decoder at another id": ({"added_tokens_decoder": {"5": {"content": "<|endoftext|>",
                                                                               "special": True}}}, {}),
        "legacy added_tokens.json": ({}, {"added_tokens": {"<extra>": 600}}),
        "special map naming a missing token": ({}, {"special_tokens_map": {"mask_token": "<mask>"}}),
    }
    for i, (name, (changes, files)) in enumerate(refused.items()):
        folder = copy_folder(tiny_tok_folder, tmp_path / str(i), changes, **files)
        assert LightTokenizer.from_folder(folder) is None, name
    missing = shutil.copytree(tiny_tok_folder, tmp_path / "no-json")
    (missing / "tokenizer.json").unlink()
    assert LightTokenizer.from_folder(missing) is None
    broken = shutil.copytree(tiny_tok_folder, tmp_path / "broken")
    (broken / "tokenizer.json").write_text("{")
    assert LightTokenizer.from_folder(broken) is None
    assert LightTokenizer.from_folder(tmp_path / "nowhere") is None


def test_a_tokenizer_that_is_not_byte_level_bpe_gives_none(tiny_tok_folder, tmp_path):
    from tokenizers import Tokenizer, models

    folder = shutil.copytree(tiny_tok_folder, tmp_path / "wordlevel")
    Tokenizer(models.WordLevel({"<|endoftext|>": 0, "a": 1}, unk_token="<|endoftext|>")).save(
        str(folder / "tokenizer.json"))
    assert LightTokenizer.from_folder(folder) is None


def test_a_gpt2_sized_tokenizer_loads_fast(real_tok_folder):
    best = min(_seconds(lambda: LightTokenizer.from_folder(real_tok_folder)) for _ in range(3))
    assert best < 0.3, f"{best:.3f} s"


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# ---------------------------------------------------------------- process and threads

def test_no_transformers_import(vit_folder, real_tok_folder):
    ids = [*auto_tokenizer(real_tok_folder).encode("Hi 🎨"), architecture.GPT2_EOS_ID]
    script = f"""
import sys
from PIL import Image
from igcap.light_inputs import LightProcessor, LightTokenizer
processor = LightProcessor.from_file({str(vit_folder / "preprocessor_config.json")!r})
tokenizer = LightTokenizer.from_folder({str(real_tok_folder)!r})
pixels = processor(images=[Image.new("RGB", (64, 48), "red")], return_tensors="pt").pixel_values
assert tuple(pixels.shape) == (1, 3, 224, 224), pixels.shape
assert tokenizer.decode({ids!r}, skip_special_tokens=True) == "Hi 🎨"
assert "transformers" not in sys.modules, "transformers was imported"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_threads_share_both(vit_folder, real_tok_folder):
    processor = LightProcessor.from_file(vit_folder / "preprocessor_config.json")
    tokenizer = LightTokenizer.from_folder(real_tok_folder)
    images = [noise((300 + i, 200), seed=i) for i in range(3)]
    rng = random.Random(3)
    sequences = [[rng.randrange(50257) for _ in range(30)] for _ in range(200)]

    def work():
        return processor(images=images).pixel_values, [tokenizer.decode(s, skip_special_tokens=True) for s in sequences]

    alone_pixels, alone_texts = work()
    results, start = [None] * 8, threading.Barrier(8)

    def run(i):
        start.wait()
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for pixels, texts in results:
        assert torch.equal(pixels, alone_pixels) and texts == alone_texts


def test_a_gpt2_repo_without_a_tokenizer_class_decodes_as_autotokenizer_does(tmp_path):
    """GPT-2's own repo names no tokenizer class: AutoTokenizer picks GPT-2's from config.json's model type
    (the published models may fall back to that repo's tokenizer)."""
    from transformers import AutoTokenizer, GPT2Config

    folder = tmp_path / "gpt2"
    builders.make_tokenizer().save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("tokenizer_class")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert LightTokenizer.from_folder(folder) is None  # no config.json: the class is unknown
    GPT2Config(vocab_size=600).save_pretrained(folder)
    light, reference = LightTokenizer.from_folder(folder), AutoTokenizer.from_pretrained(folder)
    assert light is not None and light.eos_token_id == reference.eos_token_id
    rng = random.Random(5)
    for _ in range(50):
        ids = [rng.randrange(len(reference)) for _ in range(rng.randrange(1, 20))]
        for skip in (True, False):
            assert light.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)


def test_the_vocabulary_lookups_the_emoji_limit_reads_are_transformers(tiny_tok_folder, real_tok_folder):
    """len, convert_ids_to_tokens and the special tokens, as the emoji table reads them; and the table itself."""
    from transformers import AutoTokenizer

    from igcap.emoji_control import EmojiTable

    for folder in (tiny_tok_folder, real_tok_folder):
        light, reference = LightTokenizer.from_folder(folder), AutoTokenizer.from_pretrained(folder)
        assert len(light) == len(reference)
        ids = list(range(len(reference)))
        assert light.convert_ids_to_tokens(ids) == reference.convert_ids_to_tokens(ids)
        assert set(light.all_special_tokens) == set(reference.all_special_tokens)
        assert set(light.all_special_ids) == set(reference.all_special_ids)
        ours, theirs = EmojiTable(light), EmojiTable(reference)
        assert ours.token_bytes == theirs.token_bytes and ours.emoji_count == theirs.emoji_count
        assert torch.equal(ours.emoji_ids, theirs.emoji_ids)
    assert ours.emoji_ids.numel() > 0  # the premise: the real vocabulary writes emoji
