"""Captioned-photo datasets: reading, splitting, and turning batches into model inputs lazily.

Reads Kaggle's "Instagram Images with Captions" layout (``instagram_data/captions_csv.csv`` + ``img/``,
``instagram_data2/captions_csv2.csv`` + ``img2/``, either or both) or any folder holding CSVs of
(image path, caption). Rows that cannot be used are skipped and counted by reason. Captions are kept as
written: emoji and hashtags are what an Instagram caption model has to learn.

Each photo is decoded once while the dataset is read, small (JPEGs at 1/8 scale), so a file that is cut off
or damaged is skipped and counted before training starts; its pixels are thrown away. Training decodes them
again one item at a time (CaptionDataset), never all at once: 20k photos processed up front are
20k × 3 × 224 × 224 floats = 12 GB.
"""

from __future__ import annotations

import csv
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from igcap.folders import visible_files
from igcap.images import IMAGE_EXTENSIONS, PhotoError, load_photo_file

log = logging.getLogger(__name__)

KAGGLE_PARTS = (("instagram_data", "captions_csv.csv"), ("instagram_data2", "captions_csv2.csv"))
IMAGE_COLUMNS = ("image file", "image", "image_file", "image path", "image_path", "file", "filename", "path")
CAPTION_COLUMNS = ("caption", "captions", "text")
# tried when the CSV names a file without one (the Kaggle CSVs leave out ".jpg"): what igcap.images reads, in
# lower and upper case (cameras write IMG_0001.JPG and IMG_0002.HEIC)
IMAGE_SUFFIXES = tuple(sorted(IMAGE_EXTENSIONS)) + tuple(sorted(s.upper() for s in IMAGE_EXTENSIONS))
LABEL_IGNORE = -100  # positions the loss skips (PyTorch's CrossEntropyLoss default ignore_index)

# Reasons a row is skipped, as shown in reports.
EMPTY_CAPTION = "empty caption"
MISSING_IMAGE = "missing image"
UNREADABLE_IMAGE = "unreadable image"
TOO_LARGE = "photo over the file-size or pixel limit"  # igcap.images' limits, as in the app
BAD_ROW = "row without image path or caption"
# A photo that decoded when the dataset was read but not when its batch was built (changed or removed
# meanwhile): the next readable photo stands in for it, and the run reports how many there were.
UNREADABLE_WHILE_TRAINING = "unreadable image while training (another photo stood in)"
CHECK_SIDE = 32  # read_captions decodes each photo this small: JPEGs at 1/8 scale, cheap


class DataError(ValueError):
    """A dataset that cannot be used at all (nothing to read, no usable rows); the message says why."""


@dataclass(frozen=True)
class CaptionRecord:
    image: Path  # absolute path of the photo
    caption: str  # as written, emoji and hashtags included
    source: str = ""  # the CSV it came from


@dataclass
class CaptionTable:
    """The usable rows of a dataset and what was skipped (reason → count, with a few examples)."""

    records: list[CaptionRecord]
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)

    def skip(self, reason: str, what: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(what)

    def summary(self) -> str:
        """One readable paragraph: how many rows are usable and why the others were skipped."""
        lines = [f"{len(self.records)} captioned photos from {', '.join(str(s) for s in self.sources)}"]
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  skipped {count} ({reason}), e.g. {', '.join(self.examples.get(reason, []))}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Splits:
    train: list[CaptionRecord]
    validation: list[CaptionRecord]
    test: list[CaptionRecord]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


# ---------------------------------------------------------------- reading

def find_csvs(root: Path) -> list[Path]:
    """The CSVs of a dataset: a CSV file itself, the Kaggle parts that exist, or every CSV in the folder
    (hidden ones left out)."""
    root = Path(root).expanduser()
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"no dataset at {root}: expected a folder or a CSV file")
    kaggle = [root / part / name for part, name in KAGGLE_PARTS if (root / part / name).is_file()]
    found = kaggle or visible_files(root, "*.csv")  # not macOS's ._mine.csv beside mine.csv
    if not found:
        raise DataError(f"no CSV in {root}: expected instagram_data/captions_csv.csv, "
                        "instagram_data2/captions_csv2.csv, or a CSV of (image path, caption)")
    return found


def read_captions(root: Path, check_images: bool = True) -> CaptionTable:
    """All usable (photo, caption) rows under ``root``; unusable rows are counted in ``.skipped``.

    ``check_images`` decodes each photo once, small (``CHECK_SIDE``: JPEGs in draft mode, at 1/8 scale), with
    the app's rules (igcap.images), so a file cut off after its header is skipped here rather than failing
    in the middle of training. A photo named by several rows is decoded once.
    """
    table = CaptionTable(records=[])
    checked: dict[Path, PhotoError | None] = {}

    def check(photo: Path) -> PhotoError | None:
        if check_images and photo not in checked:
            checked[photo] = photo_problem(photo)
        return checked.get(photo)

    for path in find_csvs(root):
        table.sources.append(path)
        for image, caption in csv_rows(path):
            record = _record(path, image, caption, table, check)
            if record is not None:
                table.records.append(record)
    if not table.records:
        raise DataError(f"no usable rows in {root}\n{table.summary()}")
    return table


def csv_rows(path: Path) -> list[tuple[str, str]]:
    """(image path, caption) pairs from one CSV, with or without a header row.

    With a header, columns are found by name ("Image File", "Caption", ...). Without one (the real
    captions_csv2.csv has none), three columns mean (number, image, caption), two mean (image, caption).
    """
    import io

    rows = [row for row in csv.reader(io.StringIO(csv_text(path), newline=""))
            if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    image_col, caption_col = _column(header, IMAGE_COLUMNS), _column(header, CAPTION_COLUMNS)
    if image_col is not None and caption_col is not None:
        rows = rows[1:]
    else:
        image_col, caption_col = (1, 2) if len(rows[0]) >= 3 else (0, 1)
    width = max(image_col, caption_col) + 1
    return [(row[image_col], row[caption_col]) if len(row) >= width else ("", "") for row in rows]


def csv_text(path: Path) -> str:
    """A CSV's text, which must be UTF-8 (with or without a byte-order mark); anything else stops with a
    DataError that says where and how to convert it. (Decoded leniently, a CSV saved by Excel as
    Windows-1252 had each accented letter replaced, silently, in the captions the model learnt.)"""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DataError(f"{path} is not UTF-8 text (line {line}: byte {data[err.start:err.start + 1]!r} "
                        f"cannot be UTF-8); save it as UTF-8 (Excel: Save As → \"CSV UTF-8\"), or convert it, "
                        f"e.g. from Excel's Windows-1252: iconv -f cp1252 -t utf-8 {path} > utf8.csv") from None


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def photo_problem(path: Path) -> PhotoError | None:
    """Why the photo at ``path`` cannot be used (igcap.images' rules, its pixels decoded small), or None."""
    try:
        load_photo_file(path, max_side=CHECK_SIDE)
    except PhotoError as error:
        return error
    return None


def _record(csv_path: Path, image: str, caption: str, table: CaptionTable, check) -> CaptionRecord | None:
    image, caption = image.strip(), caption.strip()
    if not image:
        table.skip(BAD_ROW, f"{csv_path.name}")
        return None
    if not caption or caption.lower() == "nan":
        table.skip(EMPTY_CAPTION, image)
        return None
    path = resolve_image(csv_path.parent, image)
    if path is None:
        table.skip(MISSING_IMAGE, image)
        return None
    problem = check(path)
    if problem is not None:
        table.skip(TOO_LARGE if problem.code in ("too_large", "too_many_pixels") else UNREADABLE_IMAGE, image)
        return None
    return CaptionRecord(image=path, caption=caption, source=str(csv_path))


def resolve_image(folder: Path, name: str) -> Path | None:
    """The photo a CSV row names, relative to the CSV's folder; the real CSVs leave out ".jpg"."""
    path = (folder / name).resolve()
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    return None


SPLIT_VERSION = 2  # 2: by photo, each photo's part from a hash (1: a shuffle of the rows); kept with a trained model


def split_settings(seed: int, validation: float, test: float, max_samples: int | None) -> dict:
    """What decides a split, as kept beside a trained model (training-metrics.json) for evaluate to check."""
    return {"version": SPLIT_VERSION, "seed": seed, "validation": validation, "test": test,
            "max_samples": max_samples}


def trained_split(model_folder: Path) -> dict | None:
    """The split a model folder was trained with (split_settings), {} for a model trained before splits were
    kept (version 1), None when the folder has no training record."""
    import json

    path = Path(model_folder) / "training-metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("split") or {}
    except (OSError, ValueError):
        return None


def split_records(records: list[CaptionRecord], seed: int = 42, validation: float = 0.1, test: float = 0.1,
                  max_samples: int | None = None) -> Splits:
    """Train/validation/test by **photo**: every caption of a photo lands in the same part, so a held-out
    photo is never one the model trained on under another caption.

    Each photo's part follows from a hash of (``seed``, the photo's path relative to its CSV's folder): the
    same photo is in the same part whatever else the dataset holds, so adding or removing photos moves no
    other photo between parts (a shuffle of the whole list reshuffled everything: one photo fewer put 65 of
    100 test photos into training). The parts' sizes are the fractions of the photos up to chance (a few
    percentage points on a few hundred photos); with three photos or more each held-out part gets at least
    one. ``max_samples`` caps the rows, whole photos at a time, in a second order drawn from the seed.
    """
    if not 0 <= validation < 1 or not 0 <= test < 1 or validation + test >= 1:
        raise DataError("validation and test fractions must be in [0, 1) and leave room for training")
    by_photo: dict[str, list[CaptionRecord]] = {}
    for record in sorted(records, key=lambda r: (str(r.image), r.caption)):  # independent of CSV order
        by_photo.setdefault(photo_key(record), []).append(record)
    photos = sorted(by_photo, key=lambda k: (_unit(seed, "sample", k), k))
    if max_samples:  # whole photos while they fit (one with more captions than are left is passed over)
        kept, rows = [], 0
        for key in photos:
            if rows + len(by_photo[key]) <= max_samples:
                kept.append(key)
                rows += len(by_photo[key])
        if not kept:
            raise DataError(f"max samples ({max_samples}) is fewer than any photo's captions")
        photos = kept
    parts: dict[str, list[str]] = {"validation": [], "test": [], "train": []}
    draw = {key: _unit(seed, "part", key) for key in photos}
    for key in sorted(photos, key=lambda k: (draw[k], k)):
        u = draw[key]
        parts["validation" if u < validation else "test" if u < validation + test else "train"].append(key)
    if not parts["train"]:  # training needs a photo: the held-out one drawn highest goes back
        donor = max(("validation", "test"), key=lambda part: len(parts[part]))
        parts["train"].append(parts[donor].pop())
    if len(photos) >= 3:  # tiny runs still evaluate: a part with a photo to spare gives one to an empty part
        for part, fraction in (("validation", validation), ("test", test)):
            if fraction and not parts[part]:
                donor = max((p for p in parts if p != part), key=lambda p: (len(parts[p]), p == "train"))
                if len(parts[donor]) > 1:
                    parts[part].append(parts[donor].pop())
    return Splits(**{part: [r for key in sorted(keys) for r in by_photo[key]] for part, keys in parts.items()})


def photo_key(record: CaptionRecord) -> str:
    """What names a photo across reads of its dataset: its path relative to the CSV that lists it."""
    if record.source:
        try:
            return Path(record.image).relative_to(Path(record.source).parent).as_posix()
        except ValueError:
            pass
    return Path(record.image).as_posix()


def _unit(seed: int, purpose: str, key: str) -> float:
    """A number in [0, 1) fixed by the seed, the purpose and the photo (the same on every machine)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}\0{purpose}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def load_splits(root: Path, seed: int = 42, validation: float = 0.1, test: float = 0.1,
                max_samples: int | None = None) -> tuple[Splits, CaptionTable]:
    """Read a dataset and split it; the held-out ``test`` part is the same for the same seed."""
    table = read_captions(root)
    return split_records(table.records, seed, validation, test, max_samples), table


# ---------------------------------------------------------------- batches

class CaptionDataset:
    """A torch-style map dataset of (photo, caption) that decodes each photo when its item is asked for (no
    pixels are held; with data-loader workers the decoding runs in them).

    Photos go through igcap.images (EXIF orientation, any mode → RGB) exactly as at inference time. A photo
    that no longer decodes (read_captions decoded it; it changed since) is logged, written to ``failures``
    (a file, so that data-loader workers and other processes of a multi-GPU run add to one record; see
    read_failures) and replaced by the next readable one: a batch never comes out empty, so one bad file
    cannot stop a run, whatever the batch size.
    """

    def __init__(self, records: list[CaptionRecord], failures: Path | None = None):
        self.records = list(records)
        self.failures = Path(failures) if failures else None
        self.failed: Counter = Counter()  # path → failures, in this process

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        for step in range(len(self.records)):
            item = self.readable((index + step) % len(self.records))
            if item is not None:
                return item
        raise DataError(f"none of the {len(self.records)} photos could be read any more "
                        f"(e.g. {self.records[0].image}); were they moved or deleted after training started?")

    def readable(self, index: int) -> dict | None:
        """Record ``index``'s item, or None when its photo does not decode (recorded; no stand-in: a measure
        over the records, such as the validation loss, leaves it out rather than counting another twice)."""
        record = self.records[index]
        if str(record.image) in self.failed:  # failed before in this process: not decoded again
            return None
        try:
            image = load_photo_file(record.image).image
        except (PhotoError, OSError) as err:
            self._record_failure(str(record.image), getattr(err, "message", str(err)))
            return None
        return {"image": image, "caption": record.caption}

    def _record_failure(self, path: str, why: str) -> None:
        self.failed[path] += 1
        log.warning("skipping %s, the next readable photo stands in: %s", path, why)
        if self.failures is not None:
            try:
                self.failures.parent.mkdir(parents=True, exist_ok=True)
                with open(self.failures, "a", encoding="utf-8") as f:  # one short line: appends do not interleave
                    f.write(path.replace("\n", " ") + "\n")
            except OSError as err:
                log.warning("could not record the unreadable photo in %s: %s", self.failures, err)


def read_failures(path: Path) -> set[str]:
    """The photos a CaptionDataset recorded in its ``failures`` file (each once), or none."""
    try:
        return {line for line in Path(path).read_text(encoding="utf-8").splitlines() if line}
    except FileNotFoundError:
        return set()


def encode_labels(tokenizer, captions: list[str], max_tokens: int):
    """Labels for a batch: caption tokens + EOS, padded with -100 so padding adds nothing to the loss.

    Captions longer than ``max_tokens`` are cut to ``max_tokens - 1`` tokens and still end with EOS, so the
    model learns to stop. (GPT-2 has no pad token; padding with EOS instead of -100, as the original did,
    teaches it to predict EOS forever and hides where captions end.)
    """
    import torch

    if max_tokens < 2:
        raise ValueError("max_tokens must leave room for at least one token and EOS")
    eos = tokenizer.eos_token_id
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"][: max_tokens - 1] + [eos] for c in captions]
    width = max(len(x) for x in ids)
    labels = torch.full((len(ids), width), LABEL_IGNORE, dtype=torch.long)  # (B, T)
    for row, tokens in enumerate(ids):
        labels[row, : len(tokens)] = torch.tensor(tokens)
    return labels


class CaptionCollator:
    """Turns a list of dataset items ({"image": a decoded photo, "caption"}) into {"pixel_values", "labels"}."""

    def __init__(self, tokenizer, processor, max_tokens: int = 64):
        self.tokenizer, self.processor, self.max_tokens = tokenizer, processor, max_tokens

    def __call__(self, items: list[dict]) -> dict:
        pixels = self.processor(images=[i["image"] for i in items], return_tensors="pt")["pixel_values"]  # (B, 3, H, W)
        return {"pixel_values": pixels,
                "labels": encode_labels(self.tokenizer, [i["caption"] for i in items], self.max_tokens)}
