"""Scoring a model on held-out photos: photos decoded a chunk at a time, as the app decodes them."""

import gc
import math
import weakref

import pytest
from PIL import Image

from igcap import evaluation
from igcap.data import CaptionRecord
from igcap.registry import ModelSpec
from tests import builders


def test_held_out_photos_are_decoded_a_chunk_at_a_time_at_the_apps_size(tmp_path, monkeypatch):
    """Every record was decoded at full size before the first caption: 150 photos of 1080 × 1080 held 501 MiB,
    thousands for a real test split."""
    folder = builders.save_tiny_model(tmp_path / "model", seed=2)
    records = []
    for i in range(10):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (2400, 1600), (20 * i, 100, 200)).save(path)
        records.append(CaptionRecord(image=path, caption=f"photo {i}"))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    records.insert(3, CaptionRecord(image=tmp_path / "broken.jpg", caption="unreadable"))
    monkeypatch.setattr(evaluation, "PHOTOS_PER_CHUNK", 4)
    alive, most, sizes = set(), [0], []
    real = evaluation.load_photo_file

    def tracked(path, **kwargs):
        photo = real(path, **kwargs)
        key = id(photo.image)
        alive.add(key)
        weakref.finalize(photo.image, alive.discard, key)
        most[0] = max(most[0], len(alive))
        sizes.append(photo.image.size)
        return photo

    monkeypatch.setattr(evaluation, "load_photo_file", tracked)
    pairs = evaluation.caption_records(ModelSpec("m", "m", str(folder)), records, batch_size=4)
    gc.collect()
    assert [reference for reference, _ in pairs] == [f"photo {i}" for i in range(10)]  # in step, broken left out
    assert most[0] <= 4 and set(sizes) == {(1080, 720)}


def test_the_validation_loss_leaves_out_a_photo_that_does_not_decode(tmp_path):
    """The dataset stands the next readable photo in for an unreadable one (so a training batch is never
    empty); the validation loss counted that next photo twice instead of leaving the bad one out."""
    from igcap.loading import LoadOptions, load_captioner

    folder = builders.save_tiny_model(tmp_path / "model", seed=2)
    loaded = load_captioner(ModelSpec("m", "m", str(folder)), LoadOptions(device="cpu", quantize=False))
    good = []
    for i, colour in enumerate(((200, 30, 30), (30, 30, 200))):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (64, 64), colour).save(path)
        good.append(CaptionRecord(image=path, caption=f"photo number {i} here"))
    missing = CaptionRecord(image=tmp_path / "gone.jpg", caption="a much longer caption that would weigh more")
    both = evaluation.validation_loss(loaded, good, batch_size=2)
    assert evaluation.validation_loss(loaded, [missing, *good], batch_size=2) == pytest.approx(both, rel=1e-6)
    assert math.isnan(evaluation.validation_loss(loaded, [missing], batch_size=2))
