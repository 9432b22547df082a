"""Builders shared by the tests: tiny tokenizers and models, offline hub caches, sample photos.

Nothing here touches the network. Tiny models use the real classes (ViT encoder + GPT-2 decoder with
cross-attention inside a VisionEncoderDecoderModel) with a 224-pixel input, so the default
ViTImageProcessor works on them exactly as on the published checkpoints.

Also runnable: ``python -m tests.builders hub-cache DIR`` fills DIR as a Hugging Face cache with
tiny models under the real repo ids (used by the browser test for the app's own process).
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

from igcap.architecture import EOS_TOKEN as EOS
from igcap.architecture import Shape, random_captioner, vit_processor
from igcap.registry import DEFAULT_MODELS

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["circle", "square", "triangle"]
REAL_REPOS = {spec.key: spec.source for spec in DEFAULT_MODELS}  # model key → its hub id
# The repo that the hub-cache fixture publishes without tokenizer and image-processor files.
BARE_REPO = REAL_REPOS["vit-gpt2-all"]
# What macOS writes as ._NAME beside each file it copies to a disk that is not its own (an AppleDouble header).
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + b"\x00" * 64


def tokenizer_corpus() -> list[str]:
    lines = [f"a {c} {s} on a {b} background 🎨 #shapes" for c in COLOURS for s in SHAPES for b in COLOURS]
    lines += ["I'm so excited to finally share my first collection with you guys! 😂 #ootd",
              "Sunset vibes at the beach 🌅 #travel #summer", "hello world, this is a caption."]
    return lines


def make_tokenizer(extra_lines: tuple[str, ...] = ()):
    """A byte-level BPE tokenizer of a few hundred tokens whose only special token is GPT-2's; ``extra_lines``
    join the training text (to give it tokens for what a test writes)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([*tokenizer_corpus(), *extra_lines] * 3, vocab_size=600, min_frequency=1,
                            special_tokens=[EOS])
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS)


def make_processor():
    return vit_processor()


def make_tiny_model(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2):
    """A random VisionEncoderDecoderModel (ViT 224/32 + GPT-2 with cross-attention), generation ids set."""
    shape = Shape(hidden=hidden, layers=layers, heads=2, intermediate=hidden * 2, patch_size=32, max_positions=128,
                  vocab_size=len(tokenizer))
    return random_captioner(shape, tokenizer.eos_token_id, seed).eval()


def inference_model(tokenizer, quantize: bool, seed: int = 5):
    """A tiny captioner as the engine prepares it for decoding (token ids set; int8 when ``quantize``)."""
    from igcap import architecture, optimize

    model = make_tiny_model(tokenizer, seed=seed)
    architecture.set_token_ids(model, tokenizer.eos_token_id)
    return optimize.prepare_for_inference(model, quantize=quantize)


def _gpt2_config(tokenizer, hidden: int = 32, layers: int = 2):
    from transformers import GPT2Config

    eos = tokenizer.eos_token_id
    return GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=2, n_positions=128,
                      bos_token_id=eos, eos_token_id=eos)


def save_tiny_model(path: Path, seed: int = 0, tokenizer: bool = True, processor: bool = True) -> Path:
    """Save a tiny model in the form of the published repos; optionally without tokenizer/processor files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer()
    make_tiny_model(tok, seed=seed).save_pretrained(path)
    if tokenizer:
        tok.save_pretrained(path)
    if processor:
        make_processor().save_pretrained(path)
    return path


def put_in_hub_cache(cache: Path, repo_id: str, source: Path, commit: str = "0" * 40) -> Path:
    """Lay ``source``'s files out as the hub cache does: models--org--name/{refs/main,snapshots/<commit>}."""
    repo_dir = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in Path(source).iterdir():
        shutil.copy2(f, snapshot / f.name)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def fill_hub_cache(cache: Path, work: Path | None = None) -> Path:
    """Tiny models under the four real repo ids (BARE_REPO without tokenizer/processor files),
    plus the bases' tokenizer/processor repos that the loader falls back to."""
    cache = Path(cache)
    work = Path(work or cache.parent / "tiny-sources")
    for i, (key, repo) in enumerate(REAL_REPOS.items()):
        full = repo != BARE_REPO
        put_in_hub_cache(cache, repo, save_tiny_model(work / key, seed=i, tokenizer=full, processor=full))
    base = save_tiny_model(work / "nlpconnect-base", seed=10)
    put_in_hub_cache(cache, "nlpconnect/vit-gpt2-image-captioning", base)
    tok_dir = work / "gpt2-tokenizer"
    tok = make_tokenizer()
    tok.save_pretrained(tok_dir)
    _gpt2_config(tok).save_pretrained(tok_dir)  # like the real repo; AutoTokenizer reads it
    put_in_hub_cache(cache, "gpt2", tok_dir)
    proc_dir = work / "vit-processor"
    make_processor().save_pretrained(proc_dir)
    put_in_hub_cache(cache, "google/vit-base-patch16-224-in21k", proc_dir)
    return cache


# ---------------------------------------------------------------- photos

def photo_bytes(fmt: str = "JPEG", size=(64, 48), colour="red", mode: str = "RGB", orientation: int | None = None,
                **save_kwargs) -> bytes:
    """An encoded image; ``orientation`` writes an EXIF Orientation tag (6 = stored rotated 90° CW)."""
    from PIL import Image

    img = Image.new(mode, size, colour)
    buf = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save_kwargs["exif"] = exif
    img.save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def upright_test_photo(orientation: int = 6, size=(80, 40)) -> bytes:
    """A JPEG stored sideways with EXIF orientation 6: upright it is taller than wide, red on top.

    Stored pixels are ``size`` (wide); the left half of the stored image is red, the right half blue.
    Rotating 90° clockwise (what orientation 6 asks) puts red on top.
    """
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, "blue")
    ImageDraw.Draw(img).rectangle([0, 0, size[0] // 2 - 1, size[1]], fill="red")
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


def heic_bytes(size=(64, 48), colour="red", orientation: int | None = None, image=None) -> bytes:
    """A HEIC encoded by pillow-heif (x265; tests only: the app decodes with pi-heif, which has no encoder).
    Its opener is not registered, so what the tests decode goes through the app's own. ``orientation`` is
    written the way iPhones do: the pixels stay as given, a rotation box tells readers to turn them, and
    EXIF carries the same orientation."""
    import pillow_heif
    from PIL import Image

    img = image if image is not None else Image.new("RGB", size, colour)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()  # pillow-heif reads the orientation only from bytes
    buf = io.BytesIO()
    pillow_heif.from_pillow(img).save(buf, quality=90, **kwargs)
    return buf.getvalue()


def mpo_bytes(colours=("red", "blue"), size=(64, 48), orientation: int | None = None) -> bytes:
    """A multi-picture JPEG (as stereo and depth cameras write) with one frame per colour."""
    from PIL import Image

    first, *rest = [Image.new("RGB", size, c) for c in colours]
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    buf = io.BytesIO()
    first.save(buf, format="MPO", save_all=True, append_images=rest, **kwargs)
    return buf.getvalue()


def sample_photos(size=(64, 48), colour="red") -> dict[str, bytes]:
    """One small photo per supported format, keyed by a file name with the usual extension."""
    photos = {f"photo.{ext}": photo_bytes(fmt, size=size, colour=colour)
              for ext, fmt in [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"),
                               ("bmp", "BMP"), ("tiff", "TIFF")]}
    photos["photo.heic"] = heic_bytes(size=size, colour=colour)
    photos["photo.mpo"] = mpo_bytes((colour, "blue"), size=size)
    return photos


def write_sample_photos(folder: Path, size=(64, 48)) -> list[Path]:
    """Write ``sample_photos()`` into ``folder`` (for CLI folder walks and upload tests)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in sample_photos(size=size).items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def simulated_study(database: str, name: str = "sim", stars: int | None = None, unanimous: bool = False) -> None:
    """8 photos (the leaderboard's least, igcap.leaderboard.Thresholds) × 3 models of known quality (good >
    fair > poor), 3 raters on every caption, 2 voters on every pair; everything written through db.studies
    as the pages do. ``stars``: every rating that many stars instead (raters who never disagree). ``unanimous``:
    every voter picks the better model's caption (votes that all go one way)."""
    import hashlib
    import math
    import random

    from db import make_engine, repo, studies, transaction, upgrade

    quality = {"good": 4.2, "fair": 3.0, "poor": 1.8}
    engine = make_engine(database)
    upgrade(engine)
    rng = random.Random(1)
    with transaction(engine) as s:
        ids = [repo.save_photo(session=s, sha256=hashlib.sha256(b"%d" % i).hexdigest(), name=f"p{i}.jpg", width=1,
                               height=1, format="JPEG", image_jpeg=b"x", thumbnail_jpeg=b"x").id for i in range(8)]
        study = studies.create_study(session=s, name=name, models=list(quality), settings={}, photo_ids=ids, k=3,
                                     seed=1)
        for pid in ids:
            for key in quality:
                studies.save_study_caption(session=s, study=study, photo_id=pid, model_key=key,
                                           text=f"{key} caption of photo {pid}")
        for rater in ("ann", "bob", "cy"):
            while (caption := studies.next_caption(session=s, study=study, rater=rater)) is not None:
                given = stars or min(5, max(1, round(rng.gauss(quality[caption.model_key], 0.7))))
                studies.rate_study_caption(session=s, study=study, caption_id=caption.id, rater=rater,
                                           stars={"overall": given})
        for rater in ("ann", "bob"):
            while (pair := studies.next_pair(session=s, study=study, rater=rater)) is not None:
                gap = quality[pair.a.model_key] - quality[pair.b.model_key]
                winner = "a" if (gap > 0 if unanimous else rng.random() < 1 / (1 + math.exp(-1.5 * gap))) else "b"
                studies.vote(session=s, study=study, caption_a_id=pair.a.id, caption_b_id=pair.b.id,
                             winner=winner, rater=rater)
    engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "hub-cache":
        print(fill_hub_cache(Path(sys.argv[2])))
    else:
        sys.exit("usage: python -m tests.builders hub-cache DIR")
