"""Synthetic data in the Kaggle layout, and the four tiny demo models."""

import csv
import random

import pytest

from igcap import demo
from igcap.cli import main
from igcap.data import EMPTY_CAPTION, MISSING_IMAGE, UNREADABLE_IMAGE, read_captions


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-data")
    return demo.write_demo_data(root, n=60, seed=3)


def test_demo_data_has_the_kaggle_layout(demo_data):
    root = demo_data.root
    with open(root / "instagram_data" / "captions_csv.csv", encoding="utf-8") as f:
        first = list(csv.reader(f))
    with open(root / "instagram_data2" / "captions_csv2.csv", encoding="utf-8") as f:
        second = list(csv.reader(f))
    assert first[0] == ["Sr No", "Image File", "Caption"]  # the real header
    assert second[0][1].startswith("img2/insta")  # the real second CSV has no header
    assert len(first) - 1 + len(second) == 60
    assert all(not row[1].endswith(".jpg") for row in first[1:])  # paths without extension, as in Kaggle
    assert (root / "instagram_data" / "img" / f"{first[1][1].split('/')[1]}.jpg").is_file()


def test_demo_captions_name_the_shape_with_emoji_and_hashtag(demo_data):
    table = read_captions(demo_data.root)
    for record in table.records:
        assert demo.named_phrase(record.caption), record.caption
        assert "#" in record.caption and any(e in record.caption for e in demo.EMOJI)


def test_demo_data_is_broken_on_purpose_and_the_reader_reports_it(demo_data):
    assert demo_data.empty_captions and demo_data.missing_images and demo_data.corrupt_images
    skipped = read_captions(demo_data.root).skipped
    assert skipped == {EMPTY_CAPTION: len(demo_data.empty_captions), MISSING_IMAGE: 1, UNREADABLE_IMAGE: 1}


def test_demo_data_is_deterministic(tmp_path):
    a, b = demo.write_demo_data(tmp_path / "a", n=12, seed=5), demo.write_demo_data(tmp_path / "b", n=12, seed=5)
    first_csv = "instagram_data/captions_csv.csv"
    for rel in (first_csv, "instagram_data2/captions_csv2.csv", "instagram_data/img/insta1.jpg"):
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes()
    c = demo.write_demo_data(tmp_path / "c", n=12, seed=6)
    assert (c.root / first_csv).read_bytes() != (a.root / first_csv).read_bytes()


def test_description_style_for_pretraining(tmp_path):
    made = demo.write_demo_data(tmp_path, n=10, seed=0, style="description")
    captions = [r.caption for r in read_captions(made.root).records]
    assert all(c.startswith("a ") and c.endswith(" background") for c in captions)
    with pytest.raises(ValueError):
        demo.write_demo_data(tmp_path / "x", n=10, style="poetry")


def test_the_drawn_shape_has_the_named_colour():
    shot = demo.Shot("purple", "circle", "white")
    image = demo.draw_shot(shot, random.Random(0))
    assert image.getpixel((demo.IMAGE_SIDE // 2, demo.IMAGE_SIDE // 2)) == demo.SHAPE_COLOURS["purple"]
    assert image.getpixel((1, 1)) == demo.BACKGROUNDS["white"]  # a circle leaves the corners empty


def test_caption_checking():
    assert demo.named_phrase("Loving this RED circle ✨") == ("red", "circle")
    assert demo.names_same_shape("a blue square on a white background", "blue square mood today 🔥")
    assert not demo.names_same_shape("a blue circle", "blue square mood today")
    assert not demo.names_same_shape("anything", "no shape named here")


def test_demo_data_command_refuses_a_folder_in_use(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo-data", str(tmp_path), "--n", "10"]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "keep.txt").read_text() == "mine"
    assert main(["demo-data", str(tmp_path / "new"), "--n", "10"]) == 0
    assert (tmp_path / "new" / "instagram_data" / "captions_csv.csv").is_file()


@pytest.mark.slow
def test_demo_models_are_four_labelled_variants_the_app_can_load(tmp_path):
    """A shortened plan (the real one trains longer): four folders with markers, both strategies, listed by
    the registry as demo models, each loading and captioning through the engine."""
    from igcap.config import Settings
    from igcap.evaluation import caption_records
    from igcap.registry import load_registry

    plan = demo.DemoPlan(photos=40, pretrain_epochs=1, finetune_epochs=1, batch_size=16)
    with demo.torch_threads(1):
        made = demo.build_demo_models(tmp_path / "demo-models", plan=plan, report=lambda *_: None)
    assert list(made) == list(demo.DEMO_KEYS)
    registry = load_registry(Settings(data_dir=tmp_path, demo_models_dir=tmp_path / "demo-models"))
    demos = {k: s for k, s in registry.items() if s.demo}
    assert set(demos) == {f"demo-{k}" for k in demo.DEMO_KEYS}
    assert all("synthetic shapes" in s.label for s in demos.values())
    assert {(s.base, s.strategy) for s in demos.values()} == {(b, st) for b in ("vit-gpt2", "nlpconnect")
                                                             for st in ("last-block", "all")}
    held_out = demo.held_out_records(tmp_path / "demo-models" / "_data", seed=plan.seed)[:2]
    for spec in demos.values():
        assert len(caption_records(spec, held_out)) == 2
    assert not (made["vit-gpt2-all"] / "checkpoints").exists()  # demo folders stay small
