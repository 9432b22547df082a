"""Reading captioned-photo datasets, splitting them, and turning batches into labels and pixels."""

import csv
import logging

import pytest
import torch

from igcap import data
from igcap.data import CaptionCollator, CaptionDataset, DataError, encode_labels, read_captions, split_records
from tests import builders


def write_csv(path, rows, header=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def write_jpeg(path, colour="red", **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(builders.photo_bytes("JPEG", colour=colour, **kwargs))


@pytest.fixture
def kaggle(tmp_path):
    """The Kaggle layout: a first CSV with the real header and paths without ".jpg", a second without a header."""
    one = tmp_path / "instagram_data"
    for i in (1, 2, 3, 5):
        write_jpeg(one / "img" / f"insta{i}.jpg")
    (one / "img" / "insta5.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")  # corrupt
    write_csv(one / "captions_csv.csv", [
        [1, "img/insta1", "Sunset vibes 🌅 #travel #summer"],
        [2, "img/insta2", ""],  # empty caption
        [3, "img/insta3", "  coffee first ☕  "],
        [4, "img/insta4", "this photo was never downloaded"],  # missing image
        [5, "img/insta5", "a corrupt file"],
    ], header=["Sr No", "Image File", "Caption"])
    two = tmp_path / "instagram_data2"
    write_jpeg(two / "img2" / "insta10.jpg", colour="blue")
    write_csv(two / "captions_csv2.csv", [[0, "img2/insta10", "blue mood 💙 #blue"]])
    return tmp_path


def test_kaggle_layout_keeps_good_rows_verbatim_and_counts_skips(kaggle):
    table = read_captions(kaggle)
    captions = {r.image.name: r.caption for r in table.records}
    assert captions == {"insta1.jpg": "Sunset vibes 🌅 #travel #summer", "insta3.jpg": "coffee first ☕",
                        "insta10.jpg": "blue mood 💙 #blue"}
    assert all(r.image.is_absolute() and r.image.is_file() for r in table.records)
    assert table.skipped == {data.EMPTY_CAPTION: 1, data.MISSING_IMAGE: 1, data.UNREADABLE_IMAGE: 1}
    summary = table.summary()
    assert "3 captioned photos" in summary and "img/insta4" in summary and "unreadable image" in summary


def test_either_kaggle_part_alone_is_enough(kaggle):
    import shutil

    shutil.rmtree(kaggle / "instagram_data")
    assert [r.caption for r in read_captions(kaggle).records] == ["blue mood 💙 #blue"]


def test_any_folder_with_a_csv_of_image_and_caption(tmp_path):
    write_jpeg(tmp_path / "photos" / "a.png")
    write_csv(tmp_path / "mine.csv", [["photos/a.png", "my own caption #diy"]], header=["image", "caption"])
    assert [r.caption for r in read_captions(tmp_path).records] == ["my own caption #diy"]
    assert [r.caption for r in read_captions(tmp_path / "mine.csv").records] == ["my own caption #diy"]


def test_hidden_files_in_a_dataset_folder_are_not_read(tmp_path):
    """A folder copied from a Mac holds ._mine.csv beside mine.csv: it was read as a second CSV of junk rows."""
    write_jpeg(tmp_path / "photos" / "a.png")
    write_csv(tmp_path / "mine.csv", [["photos/a.png", "my own caption #diy"]], header=["image", "caption"])
    (tmp_path / "._mine.csv").write_bytes(builders.APPLEDOUBLE)
    table = read_captions(tmp_path)
    assert table.sources == [tmp_path / "mine.csv"] and not table.skipped
    assert [r.caption for r in table.records] == ["my own caption #diy"]


def test_multiline_quoted_captions_are_one_caption(tmp_path):
    write_jpeg(tmp_path / "a.jpg")
    write_jpeg(tmp_path / "b.jpg")
    (tmp_path / "c.csv").write_text('image,caption\na.jpg,"line one\nline two 💫"\nb.jpg,café\n', encoding="utf-8")
    captions = [r.caption for r in read_captions(tmp_path).records]
    assert captions == ["line one\nline two 💫", "café"]


def test_a_csv_that_is_not_utf8_stops_with_the_encoding_and_the_fix(tmp_path):
    """A CSV saved by Excel as Windows-1252 was read with every accented letter turned into U+FFFD, without a
    word: the model learnt the garbled captions."""
    write_jpeg(tmp_path / "a.jpg")
    write_jpeg(tmp_path / "b.jpg")
    (tmp_path / "c.csv").write_bytes("image,caption\na.jpg,plain\nb.jpg,café crème ☕?\n"
                                     .replace("☕", "").encode("cp1252"))
    with pytest.raises(DataError) as caught:
        read_captions(tmp_path)
    message = str(caught.value)
    assert "c.csv" in message and "not UTF-8" in message and "line 3" in message
    assert "CSV UTF-8" in message and "iconv -f cp1252 -t utf-8" in message


def test_headerless_two_column_csv(tmp_path):
    write_jpeg(tmp_path / "b.jpg")
    write_csv(tmp_path / "pairs.csv", [["b.jpg", "two columns"]])
    assert [r.caption for r in read_captions(tmp_path).records] == ["two columns"]


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nowhere", "no dataset at"),
    (lambda p: p, "no CSV in"),
])
def test_unusable_dataset_paths_get_a_clear_message(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        read_captions(make(tmp_path))


def test_a_dataset_without_usable_rows_says_why(tmp_path):
    write_csv(tmp_path / "c.csv", [["missing.jpg", "caption"]], header=["image", "caption"])
    with pytest.raises(DataError, match="missing image"):
        read_captions(tmp_path)


# ---------------------------------------------------------------- splits

def records(n):
    return [data.CaptionRecord(image=data.Path(f"/x/{i}.jpg"), caption=f"caption {i}") for i in range(n)]


def test_split_is_deterministic_disjoint_and_complete():
    rows = records(100)
    a, b = split_records(rows, seed=1), split_records(list(reversed(rows)), seed=1)
    assert a == b  # independent of the order rows were read in
    parts = [set(a.train), set(a.validation), set(a.test)]
    assert set().union(*parts) == set(rows) and sum(map(len, parts)) == len(rows)
    assert split_records(rows, seed=2).test != a.test
    many = split_records(records(4000), seed=1).sizes()  # the fractions, up to chance
    assert abs(many["validation"] - 400) < 60 and abs(many["test"] - 400) < 60


def test_every_caption_of_a_photo_is_in_the_same_part():
    """The split shuffled rows: a photo with three captions sat in train and in test (12 of 13 test photos)."""
    rows = [data.CaptionRecord(image=data.Path(f"/x/{i}.jpg"), caption=f"caption {i} take {k}")
            for i in range(50) for k in range(3)]
    splits = split_records(rows, seed=1)
    photos = {part: {r.image for r in getattr(splits, part)} for part in ("train", "validation", "test")}
    assert not photos["train"] & photos["validation"] and not photos["train"] & photos["test"]
    assert not photos["validation"] & photos["test"]
    assert all(len([r for r in splits.test if r.image == image]) == 3 for image in photos["test"])


def test_a_photo_removed_or_added_moves_no_other_photo_between_parts():
    """With one photo fewer, a shuffle of the whole list put 65 of 100 test photos into training."""
    rows = records(1000)
    before = split_records(rows, seed=7)
    after = split_records(rows[:500] + rows[501:] + records(1001)[1000:], seed=7)
    for part in ("train", "validation", "test"):
        assert set(getattr(before, part)) - {rows[500]} <= set(getattr(after, part))


def test_the_photo_key_is_relative_to_the_csv_so_a_moved_dataset_splits_the_same():
    def at(root):
        return [data.CaptionRecord(image=data.Path(f"{root}/img/{i}.jpg"), caption="c",
                                   source=f"{root}/captions.csv") for i in range(200)]
    first, moved = split_records(at("/data/ig"), seed=3), split_records(at("/mnt/elsewhere/ig"), seed=3)
    assert [r.image.name for r in first.test] == [r.image.name for r in moved.test]


def test_max_samples_and_tiny_datasets_still_hold_out_one_each():
    assert sum(split_records(records(100), max_samples=20).sizes().values()) == 20
    sizes = split_records(records(100), max_samples=20).sizes()
    assert sizes["train"] > sizes["validation"] and sizes["train"] > sizes["test"]  # not all held out
    for n in (3, 5, 8):
        sizes = split_records(records(n)).sizes()
        assert sizes["validation"] >= 1 and sizes["test"] >= 1 and sizes["train"] >= 1
    with pytest.raises(DataError):
        split_records(records(10), validation=0.6, test=0.5)


# ---------------------------------------------------------------- labels

def original_labels(tokenizer, captions, max_tokens):
    """What the original training did: pad to max length with the pad token (= EOS for GPT-2), no -100,
    no EOS appended."""
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer(captions, padding="max_length", max_length=max_tokens, truncation=True,
                     return_tensors="pt").input_ids


def summed_loss(model, labels):
    """Sum of per-token losses of a batch (what the padding must not change)."""
    pixels = torch.zeros(len(labels), 3, 224, 224)
    with torch.no_grad():
        logits = model(pixel_values=pixels, labels=labels).logits
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="sum")


def test_labels_end_with_eos_and_pad_with_minus_100(tokenizer):
    captions = ["a red circle 🎨 #shapes", "hello world, this is a caption."]
    labels = encode_labels(tokenizer, captions, max_tokens=64)
    eos = tokenizer.eos_token_id
    for row, caption in zip(labels.tolist(), captions):
        tokens = tokenizer(caption, add_special_tokens=False)["input_ids"]
        assert row[: len(tokens) + 1] == tokens + [eos]
        assert all(x == -100 for x in row[len(tokens) + 1:])
    assert tokenizer.decode(labels[0][labels[0] >= 0][:-1]) == captions[0]  # emoji and hashtag survive


def test_truncation_keeps_the_eos(tokenizer):
    labels = encode_labels(tokenizer, ["a red circle on a blue background 🎨 #shapes"], max_tokens=4)
    assert labels.shape == (1, 4) and labels[0, -1].item() == tokenizer.eos_token_id


def learned_targets(labels):
    return (labels != -100).sum(dim=1).tolist()


def test_the_loss_sees_each_caption_and_one_eos_unlike_the_original(tokenizer):
    """Exactly the caption's tokens and one EOS are targets, however wide the batch is. The original's
    labels (EOS as padding, no -100, no EOS appended) fail both checks below."""
    short, long = "hello world", "a red circle on a blue background 🎨 #shapes"
    n_short = len(tokenizer(short, add_special_tokens=False)["input_ids"])
    model = builders.make_tiny_model(tokenizer)

    def short_caption_loss(labels):
        return summed_loss(model, labels[:1])

    ours_alone, ours_batched = encode_labels(tokenizer, [short], 64), encode_labels(tokenizer, [short, long], 64)
    assert learned_targets(ours_batched)[0] == n_short + 1
    assert torch.allclose(short_caption_loss(ours_alone), short_caption_loss(ours_batched), atol=1e-4)

    narrow, wide = original_labels(tokenizer, [short, long], 16), original_labels(tokenizer, [short, long], 24)
    assert learned_targets(narrow)[0] != n_short + 1  # every pad position is a target
    assert not torch.allclose(short_caption_loss(narrow), short_caption_loss(wide), atol=1e-4)


# ---------------------------------------------------------------- batches

def test_dataset_decodes_each_photo_when_asked_and_the_collator_batches_them(kaggle, tokenizer):
    from PIL import Image

    table = read_captions(kaggle)
    dataset = CaptionDataset(table.records)
    assert len(dataset) == 3 and all(isinstance(r.image, data.Path) for r in dataset.records)  # no pixels held
    assert isinstance(dataset[0]["image"], Image.Image)
    batch = CaptionCollator(tokenizer, builders.make_processor())([dataset[i] for i in range(3)])
    assert batch["pixel_values"].shape == (3, 3, 224, 224)
    assert batch["labels"].shape[0] == 3


def test_collator_applies_exif_orientation_like_inference(tmp_path, tokenizer):
    from igcap.images import load_photo

    path = tmp_path / "sideways.jpg"
    path.write_bytes(builders.upright_test_photo())
    processor = builders.make_processor()
    record = data.CaptionRecord(image=path, caption="x")
    batch = CaptionCollator(tokenizer, processor)([CaptionDataset([record])[0]])
    expected = processor(images=[load_photo(path.read_bytes()).image], return_tensors="pt")["pixel_values"]
    assert torch.equal(batch["pixel_values"], expected)
    top, bottom = batch["pixel_values"][0, 0, :20].mean(), batch["pixel_values"][0, 0, -20:].mean()
    assert top > bottom  # red (high red channel) on top: the photo was turned upright


def test_the_dataset_check_follows_the_photo_rules_in_a_fresh_process(tmp_path):
    """`train` checked photos with plain Pillow: in a fresh process it knew no HEIC (phone photos skipped as
    unreadable), stopped on a decompression bomb with a traceback, and passed photos over the pixel limit
    that the collator then dropped from every batch. It also tried .jpg/.jpeg/.png/.webp only, lower case."""
    import csv
    import json
    import subprocess
    import sys

    from PIL import Image

    from tests import builders

    img = tmp_path / "img"
    img.mkdir()
    (img / "IMG_0001.heic").write_bytes(builders.heic_bytes())
    (img / "IMG_0003.HEIC").write_bytes(builders.heic_bytes(colour="blue"))
    (img / "IMG_0004.JPG").write_bytes(builders.photo_bytes())
    Image.new("1", (8000, 8000)).save(img / "big.png")  # 64 MP: over igcap.images.MAX_PIXELS
    Image.new("1", (14000, 13000)).save(img / "bomb.png")  # 182 MP: past Pillow's own bomb guard
    with open(tmp_path / "captions.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image", "caption"], ["img/IMG_0001.heic", "beach day"],
                                 ["img/IMG_0003", "no extension, as in the Kaggle CSV"], ["img/IMG_0004", "coffee"],
                                 ["img/big.png", "too big"], ["img/bomb.png", "a bomb"]])
    script = ("import json, sys\nfrom igcap.data import read_captions\nt = read_captions(sys.argv[1])\n"
              "print(json.dumps({'usable': sorted(r.image.name for r in t.records), 'skipped': dict(t.skipped)}))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["usable"] == ["IMG_0001.heic", "IMG_0003.HEIC", "IMG_0004.JPG"]
    assert found["skipped"] == {"photo over the file-size or pixel limit": 2}


def test_training_always_keeps_a_photo_and_max_samples_is_never_exceeded():
    """Drawn by hash, a tiny dataset could put every photo in the held-out parts (3 photos, seed 391: train
    empty); and the first photo was kept even when it alone had more captions than max_samples."""
    for n in (1, 2, 3, 4):
        for seed in range(400):
            sizes = split_records(records(n), seed=seed).sizes()
            assert sizes["train"] >= 1 and sum(sizes.values()) == n, (n, seed, sizes)
            if n >= 3:
                assert sizes["validation"] >= 1 and sizes["test"] >= 1
    rows = [data.CaptionRecord(image=data.Path(f"/x/{i}.jpg"), caption=f"c{i}.{k}") for i in range(10)
            for k in range(1 + i % 3)]
    for cap in (1, 2, 5, 7):
        assert sum(split_records(rows, max_samples=cap).sizes().values()) <= cap
    with pytest.raises(DataError):
        split_records([data.CaptionRecord(image=data.Path("/x/a.jpg"), caption=f"c{k}") for k in range(5)],
                      max_samples=2)


# ---------------------------------------------------------------- photos that cannot be decoded

def write_truncated_jpeg(path):
    """A JPEG whose header is fine but whose data stops halfway (a download or copy cut off)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((160, 120), 60).convert("RGB").save(buf, format="JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_a_photo_cut_off_after_its_header_is_skipped_while_reading(tmp_path):
    """Only the header was checked: a truncated JPEG passed, then failed in the collator during training."""
    write_jpeg(tmp_path / "good.jpg")
    write_truncated_jpeg(tmp_path / "cut.jpg")
    write_csv(tmp_path / "c.csv", [["good.jpg", "fine"], ["cut.jpg", "cut off"]], header=["image", "caption"])
    table = read_captions(tmp_path)
    assert [r.image.name for r in table.records] == ["good.jpg"]
    assert table.skipped == {data.UNREADABLE_IMAGE: 1} and "cut.jpg" in table.summary()


def test_a_photo_unreadable_at_training_time_is_replaced_and_recorded(tmp_path, tokenizer, caplog):
    """A photo that fails when its batch is built (changed or removed after the dataset was read) stopped the
    whole run when it was alone in its batch (batch size 1, or the last evaluation batch), and the collator's
    count of failures was never reported."""
    rows = []
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_jpeg(tmp_path / name)
        rows.append([name, f"caption of {name}"])
    write_csv(tmp_path / "c.csv", rows, header=["image", "caption"])
    table = read_captions(tmp_path)
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 no longer a photo")
    failures = tmp_path / "run" / "unreadable.txt"
    dataset = CaptionDataset(table.records, failures=failures)
    collate = CaptionCollator(tokenizer, builders.make_processor())
    with caplog.at_level(logging.WARNING):
        item = dataset[1]
    assert item["caption"] == "caption of c.jpg"  # the next readable photo stands in
    batch = collate([item])  # a batch of one still trains
    assert batch["pixel_values"].shape == (1, 3, 224, 224) and batch["labels"].shape[0] == 1
    assert "b.jpg" in caplog.text
    dataset[1]
    assert data.read_failures(failures) == {str(tmp_path / "b.jpg")}  # one photo, however often it failed
    assert data.read_failures(tmp_path / "none.txt") == set()
    for name in ("a.jpg", "c.jpg"):
        (tmp_path / name).unlink()
    with pytest.raises(DataError, match="none of the 3 photos"):
        dataset[0]
