"""Synthetic coloured-shape photos with Instagram-style captions, and the tiny models that learn them.

The data is a folder in the exact layout of Kaggle's "Instagram Images with Captions": coloured shapes on
plain backgrounds, each captioned in an Instagram voice that names the shape's colour and kind, with emoji
and a hashtag. A few rows are broken on purpose (empty captions, a missing image, a corrupt image) so the
reader's skip report has something to say.

The tiny models are ViT + GPT-2 captioners at toy scale (igcap.architecture builds them) with a byte-level
BPE tokenizer trained on the captions' phrases. ``igcap.train`` uses them for its ``tiny`` base and
``igcap.demo`` trains the four demo variants from them.
"""

from __future__ import annotations

import csv
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from igcap.architecture import EOS_TOKEN, Shape, random_captioner, vit_processor

SHAPE_COLOURS = {"red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 220),
                 "yellow": (240, 210, 30), "purple": (148, 60, 189), "orange": (255, 127, 14)}
# Neutral backgrounds, so the shape's colour is the only saturated one in the photo.
BACKGROUNDS = {"white": (245, 245, 245), "grey": (128, 128, 128), "black": (20, 20, 20), "beige": (225, 205, 170)}
SHAPES = ("circle", "square", "triangle")
EMOJI = ("✨", "🎨", "😍", "🔥")
HASHTAGS = ("#shapes", "#minimalism", "#art", "#geometry")
TEMPLATES = (
    "a {colour} {shape} on a {background} background {emoji} {hashtag}",
    "loving this {colour} {shape} {emoji} {hashtag}",
    "{colour} {shape} mood today {emoji} {hashtag}",
)
IMAGE_SIDE = 96  # pixels; the tiny models look at 32 × 32, the processor resizes
PHRASE = re.compile(r"\b(" + "|".join(SHAPE_COLOURS) + r") (" + "|".join(SHAPES) + r")\b")


# ---------------------------------------------------------------- synthetic data

@dataclass(frozen=True)
class Shot:
    """What one synthetic photo shows."""

    colour: str
    shape: str
    background: str

    def caption(self, rng: random.Random) -> str:
        template = rng.choice(TEMPLATES)
        return template.format(colour=self.colour, shape=self.shape, background=self.background,
                               emoji=rng.choice(EMOJI), hashtag=rng.choice(HASHTAGS))

    @property
    def description(self) -> str:
        """The plain, COCO-like description the tiny bases are pretrained on."""
        return f"a {self.colour} {self.shape} on a {self.background} background"


def draw_shot(shot: Shot, rng: random.Random, side: int = IMAGE_SIDE):
    """A PIL image of the shot: one large shape, jittered in size and position."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (side, side), BACKGROUNDS[shot.background])
    # Roughly centred, so even a 32-pixel view shows the corners that tell the shapes apart.
    size = rng.uniform(0.7, 0.85) * side
    x0 = (side - size) / 2 + rng.uniform(-0.03, 0.03) * side
    y0 = (side - size) / 2 + rng.uniform(-0.03, 0.03) * side
    box = [x0, y0, x0 + size, y0 + size]
    fill = SHAPE_COLOURS[shot.colour]
    draw = ImageDraw.Draw(img)
    if shot.shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shot.shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(x0 + size / 2, y0), (x0, y0 + size), (x0 + size, y0 + size)], fill=fill)
    return img


def random_shot(rng: random.Random) -> Shot:
    return Shot(rng.choice(list(SHAPE_COLOURS)), rng.choice(SHAPES), rng.choice(list(BACKGROUNDS)))


@dataclass
class DemoData:
    """What write_demo_data made: the folder, how many rows, and which rows are broken on purpose."""

    root: Path
    rows: int
    empty_captions: list[str] = field(default_factory=list)  # image paths whose caption is empty
    missing_images: list[str] = field(default_factory=list)
    corrupt_images: list[str] = field(default_factory=list)


MIN_PHOTOS = 10  # the fewest write_demo_data writes: every 40th caption empty, one missing and one corrupt image


def write_demo_data(root: Path, n: int = 300, seed: int = 0, style: str = "instagram") -> DemoData:
    """Write ``n`` captioned photos in the Kaggle layout under ``root`` (two thirds in the first CSV).

    ``style="description"`` writes plain descriptions ("a red circle on a white background") instead of
    Instagram-style captions: the data the tiny bases are pretrained on.

    Deterministic for a given ``seed``. Broken on purpose: every 40th caption is empty (at least one),
    the last row of the first CSV names an image that does not exist, and one image file is corrupt.
    """
    if n < MIN_PHOTOS:
        raise ValueError(f"the demo dataset needs at least {MIN_PHOTOS} photos")
    if style not in ("instagram", "description"):
        raise ValueError(f"style must be 'instagram' or 'description', not {style!r}")
    rng = random.Random(seed)
    root = Path(root)
    report = DemoData(root=root, rows=n)
    first = (2 * n) // 3
    parts = [("instagram_data", "captions_csv.csv", "img", range(first), True),
             ("instagram_data2", "captions_csv2.csv", "img2", range(first, n), False)]
    for folder, csv_name, img_dir, ids, header in parts:
        _write_part(root / folder, csv_name, img_dir, ids, rng, report, header=header, style=style)
    return report


def _write_part(folder: Path, csv_name: str, img_dir: str, ids: range, rng: random.Random, report: DemoData,
                header: bool, style: str) -> None:
    """One half of the Kaggle layout. The real first CSV has a header ("Sr No", "Image File", "Caption");
    the second has none. Image paths are written without their ".jpg", as in the real files."""
    (folder / img_dir).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in ids:
        rel = f"{img_dir}/insta{i + 1}"
        shot = random_shot(rng)
        caption = shot.caption(rng) if style == "instagram" else shot.description
        image = draw_shot(shot, rng)
        if i % 40 == 7:
            caption = ""
            report.empty_captions.append(rel)
        if i == ids[-1] and header:
            report.missing_images.append(rel)  # a row whose image was never written
        elif i == ids[-2] and not header:
            (folder / f"{rel}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
            report.corrupt_images.append(rel)
        else:
            image.save(folder / f"{rel}.jpg", format="JPEG", quality=90)
        rows.append([i, rel, caption])
    with open(folder / csv_name, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(["Sr No", "Image File", "Caption"])
        writer.writerows(rows)


def named_phrase(text: str) -> tuple[str, str] | None:
    """The (colour, shape) a caption names, e.g. "loving this red circle ✨" → ("red", "circle")."""
    match = PHRASE.search(text.lower())
    return (match.group(1), match.group(2)) if match else None


def names_same_shape(generated: str, reference: str) -> bool:
    """Whether a generated caption names the colour and kind of shape that the reference names."""
    expected = named_phrase(reference)
    return expected is not None and named_phrase(generated) == expected


def photo_bytes_of(shot: Shot, seed: int = 0) -> bytes:
    """A JPEG of ``shot``, for tests and examples that want one photo without a dataset."""
    buf = io.BytesIO()
    draw_shot(shot, random.Random(seed)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# ---------------------------------------------------------------- tiny models

@dataclass(frozen=True)
class TinyConfig:
    """The shape of the tiny demo models: a ViT and a GPT-2 small enough to train on a laptop CPU."""

    hidden: int = 64  # width of both encoder and decoder
    layers: int = 2  # blocks in each; "last-block" tunes the decoder's second
    heads: int = 2
    image_size: int = 32  # the processor resizes photos to this square
    patch_size: int = 8  # 16 patches per photo
    max_positions: int = 64  # longest caption in tokens

    def shape(self, vocab_size: int) -> Shape:
        return Shape(hidden=self.hidden, layers=self.layers, heads=self.heads, intermediate=self.hidden * 4,
                     image_size=self.image_size, patch_size=self.patch_size, max_positions=self.max_positions,
                     vocab_size=vocab_size)


def demo_caption_corpus() -> list[str]:
    """Every phrase the demo captions and descriptions can contain, for training the tiny tokenizer."""
    rng = random.Random(0)
    lines = []
    for colour in SHAPE_COLOURS:
        for shape in SHAPES:
            for background in BACKGROUNDS:
                shot = Shot(colour, shape, background)
                lines.append(shot.description)
                lines += [t.format(colour=colour, shape=shape, background=background, emoji=rng.choice(EMOJI),
                                   hashtag=rng.choice(HASHTAGS)) for t in TEMPLATES]
    return lines + list(EMOJI) * 5 + list(HASHTAGS) * 5


def make_demo_tokenizer():
    """A byte-level BPE tokenizer trained on the demo captions; GPT-2's one special token is eos = bos = pad."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(demo_caption_corpus() * 3, vocab_size=400, min_frequency=1, special_tokens=[EOS_TOKEN])
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN,
                                   unk_token=EOS_TOKEN, pad_token=EOS_TOKEN)


def make_demo_processor(config: TinyConfig = TinyConfig()):
    return vit_processor(config.image_size)


def make_tiny_captioner(tokenizer, config: TinyConfig = TinyConfig(), seed: int = 0):
    """A randomly initialised VisionEncoderDecoderModel of the published models' kind (ViT + GPT-2)."""
    return random_captioner(config.shape(len(tokenizer)), tokenizer.eos_token_id, seed)


def save_random_base(folder: Path, config: TinyConfig = TinyConfig(), seed: int = 0) -> Path:
    """A random tiny captioner with its tokenizer and processor, in published form (a starting point)."""
    folder = Path(folder)
    tokenizer = make_demo_tokenizer()
    make_tiny_captioner(tokenizer, config, seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    make_demo_processor(config).save_pretrained(folder)
    return folder


def split_into_parts(model_dir: Path, encoder_dir: Path, decoder_dir: Path) -> None:
    """Save a captioner's encoder (with the processor) and decoder (with the tokenizer) as two models,
    the form of the ``vit-gpt2`` base (google/vit-base-patch16-224-in21k + gpt2)."""
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(model_dir)
    model.encoder.save_pretrained(encoder_dir)
    AutoImageProcessor.from_pretrained(model_dir).save_pretrained(encoder_dir)
    model.decoder.save_pretrained(decoder_dir)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(decoder_dir)

