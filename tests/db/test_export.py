"""The CSV export: opens in pandas (and Excel) with every character intact, never runs as a formula."""

from __future__ import annotations

import io
import sys

import pandas as pd
import pytest

from db import MANUAL, repo, transaction
from db.export import (CAPTION_COLUMNS, LONG_COLUMNS, FORMULA_STARTS, neutralise, rated_captions_csv,
                       rated_captions_rows, ratings_long_csv, ratings_long_rows, restore_cell, write_export)
from db.repo import GalleryFilter
from igcap.cli import main
from igcap.registry import DEFAULT_MODELS, ModelSpec
from tests.db.conftest import photo_values

NASTY = [
    "Sunset vibes 🌅🔥 #travel, #summer",
    'She said "hello", then left',
    "line one\nline two\r\nline three",
    "=1+1",
    "=HYPERLINK(\"http://evil.example\",\"click\")",
    "+SUM(A1:A2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1)",
    "\tstarts with a tab",
    "\rstarts with a carriage return",
    "'already quoted",
    " =1+1 after a space",
    "\u00a0@SUM(1) after a no-break space",
    "-",
    "plain",
]
DEFAULT_LABELS = {spec.key: spec.label for spec in DEFAULT_MODELS}
LABELS = {"vit-gpt2-all": "ViT-GPT2 (all layers)"}


@pytest.fixture
def nasty(engine):
    """One caption per nasty text, rated; plus an unrated one and a hand-written favourite."""
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **{**photo_values("n"), "name": "=evil, \"name\".jpg"})
        for i, text in enumerate(NASTY):
            caption = repo.add_caption(session=s, photo=photo, model_key="vit-gpt2-all", text=text,
                                       generated_text="=generated " + text, settings={"prompt": "@x", "n": i})
            repo.rate(session=s, caption_id=caption.id, rater="@ann", stars=1 + i % 5, comment="-- " + text)
            repo.rate(session=s, caption_id=caption.id, rater="bob", stars=5, criterion="relevance")
        repo.add_caption(session=s, photo=photo, model_key="vit-gpt2-all", text="nobody rated me", generated_text="x")
        manual = repo.add_caption(session=s, photo=photo, model_key=MANUAL, text="mine 💖", favourite=True)
        repo.rate(session=s, caption_id=manual.id, rater="bob", stars=4)
    return engine


def read(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype=str, keep_default_na=False)


def assert_no_formula_cells(frame: pd.DataFrame) -> None:
    cells = list(frame.columns) + [v for col in frame.columns for v in frame[col]]
    assert not [c for c in cells if c.lstrip().startswith(FORMULA_STARTS) or c.startswith(FORMULA_STARTS)]


def test_rated_captions_round_trip_through_pandas(nasty):
    with transaction(nasty, write=False) as s:
        data = rated_captions_csv(session=s, labels=LABELS)
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data  # BOM for Excel, CRLF rows
    frame = read(data)
    assert list(frame.columns) == CAPTION_COLUMNS + ["mean_overall", "mean_relevance"]
    assert [restore_cell(t) for t in frame["caption"]] == NASTY + ["mine 💖"]  # the unrated one is left out
    assert [restore_cell(t) for t in frame["generated_text"][:-1]] == ["=generated " + t for t in NASTY]
    assert set(frame["photo_name"].map(restore_cell)) == {"=evil, \"name\".jpg"}
    assert_no_formula_cells(frame)
    first = frame.iloc[0]
    assert (first["model_key"], first["model_label"], first["ratings"], first["mean_stars"]) == (
        "vit-gpt2-all", "ViT-GPT2 (all layers)", "2", "3.0")
    assert (first["mean_overall"], first["mean_relevance"], first["edited"], first["favourite"]) == (
        "1.0", "5.0", "true", "false")
    manual = frame.iloc[-1]
    assert (manual["model_label"], manual["generated_text"], manual["favourite"], manual["mean_relevance"]) == (
        "Written by hand", "", "true", "")
    assert restore_cell(first["decoding_settings"]) == '{"n": 0, "prompt": "@x"}'


def test_numbers_read_back_as_numbers(nasty):
    with transaction(nasty, write=False) as s:
        frame = pd.read_csv(io.BytesIO(rated_captions_csv(session=s, labels=LABELS)), encoding="utf-8-sig")
    assert frame["ratings"].dtype.kind == "i" and frame["mean_stars"].dtype.kind == "f"
    assert frame["mean_overall"].tolist()[:5] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_include_unrated_and_filters(nasty):
    with transaction(nasty, write=False) as s:
        everything = read(rated_captions_csv(session=s, include_unrated=True, labels=LABELS))
        manual_only = rated_captions_rows(session=s, filters=GalleryFilter(model_keys=[MANUAL]), labels={})
        fav = rated_captions_rows(session=s, filters=GalleryFilter(favourites_only=True), include_unrated=True)
    assert len(everything) == len(NASTY) + 2
    unrated = everything[everything["caption"] == "nobody rated me"].iloc[0]
    assert (unrated["ratings"], unrated["mean_stars"]) == ("0", "")
    assert [r["caption"] for r in manual_only] == ["mine 💖"] and [r["caption"] for r in fav] == ["mine 💖"]


def test_long_export_has_one_row_per_rating(nasty):
    with transaction(nasty, write=False) as s:
        frame = read(ratings_long_csv(session=s, labels=LABELS))
        only_bob = read(ratings_long_csv(session=s, filters=GalleryFilter(rater="bob")))
    assert list(frame.columns) == LONG_COLUMNS and len(frame) == 2 * len(NASTY) + 1
    assert_no_formula_cells(frame)
    ann = frame[frame["rater"] == "'@ann"]
    assert [restore_cell(c) for c in ann["comment"]] == ["-- " + t for t in NASTY]
    assert [restore_cell(c) for c in ann["caption"]] == NASTY
    assert set(frame["criterion"]) == {"overall", "relevance"} and frame["rated_utc"].str.match(r"\d{4}-").all()
    assert len(only_bob) == len(frame)  # the rater filter selects captions bob rated, with all their ratings


@pytest.mark.parametrize("text, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@a", "'@a"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("'x", "''x"), ("x=1", "x=1"), ("", ""), ("1-2", "1-2"), ("  ", "  "), (" x =1", " x =1"),
    # white space first: LibreOffice's import may trim it, then evaluate (these went out unchanged)
    (" =1", "' =1"), ("\u00a0=HYPERLINK(1)", "'\u00a0=HYPERLINK(1)"), (" @SUM(A1)", "' @SUM(A1)"), ("\n=1+1", "'\n=1+1"),
    # full-width and small forms (NFKC makes them = + - @), and invisible format characters first
    ("＝1+1", "'＝1+1"), ("＋1", "'＋1"), ("－1", "'－1"), ("＠a", "'＠a"), ("﹦1", "'﹦1"), (" ＝1", "' ＝1"),
    ("\u200b=1", "'\u200b=1"), ("\ufeff=1", "'\ufeff=1"), ("\u2060@a", "'\u2060@a"), ("\u00ad+1", "'\u00ad+1"),
    ("\u200b \ufeff＝1", "'\u200b \ufeff＝1"), ("x＝1", "x＝1"), ("\u200bx=1", "\u200bx=1"), ("\u200b", "\u200b"),
])
def test_neutralise_is_reversible(text, expected):
    assert neutralise(text) == expected and restore_cell(neutralise(text)) == text


def test_labels_fall_back_to_keys_without_a_registry(nasty):
    with transaction(nasty, write=False) as s:
        rows = rated_captions_rows(session=s)
    assert {r["model_label"] for r in rows} == {"vit-gpt2-all", "Written by hand"}


def test_labels_come_from_the_registry_passed_in(nasty):
    registry = {"vit-gpt2-all": ModelSpec("vit-gpt2-all", "ViT-GPT2 (all layers)", "some/repo")}
    with transaction(nasty, write=False) as s:
        rows = rated_captions_rows(session=s, labels=registry)
        long = ratings_long_rows(session=s, labels=registry)
    assert {r["model_label"] for r in rows} == {r["model_label"] for r in long} == {"ViT-GPT2 (all layers)",
                                                                                   "Written by hand"}


def test_export_command_labels_models_from_the_registry(nasty, db_url, tmp_path, monkeypatch):
    out = tmp_path / "rated.csv"
    assert main(["export", "--out", str(out), "--database", db_url, "--model", "vit-gpt2-all"]) == 0
    assert set(read(out.read_bytes())["model_label"]) == {DEFAULT_LABELS["vit-gpt2-all"]}
    broken = tmp_path / "models.toml"
    broken.write_text("[models.x\n")  # not TOML: the registry cannot be read, the export still works
    monkeypatch.setenv("IGCAP_MODELS_FILE", str(broken))
    assert main(["export", "--out", str(out), "--database", db_url, "--model", "vit-gpt2-all"]) == 0
    assert set(read(out.read_bytes())["model_label"]) == {"vit-gpt2-all"}


def test_empty_export_still_has_a_header(engine):
    with transaction(engine, write=False) as s:
        frame = read(rated_captions_csv(session=s, labels={}))
    assert list(frame.columns) == CAPTION_COLUMNS and frame.empty


def test_write_export(nasty, tmp_path):
    out = tmp_path / "sub" / "rated.csv"
    with transaction(nasty, write=False) as s:
        assert write_export(out, session=s, labels={}) == len(NASTY) + 1
        assert write_export(out, long=True, session=s, labels={}) == 2 * len(NASTY) + 1
    assert len(read(out.read_bytes())) == 2 * len(NASTY) + 1
    assert [p.name for p in out.parent.iterdir()] == ["rated.csv"]  # no temporary file left behind


def test_export_command_writes_the_file(nasty, db_url, tmp_path, capsys):
    out = tmp_path / "rated.csv"
    assert main(["export", "--out", str(out), "--database", db_url, "--model", "manual"]) == 0
    assert "wrote 1 captions" in capsys.readouterr().out
    assert read(out.read_bytes())["caption"].tolist() == ["mine 💖"]
    assert main(["export", "--out", str(out), "--database", db_url, "--long", "--min-stars", "4",
                 "--search", "=1+1"]) == 0
    assert read(out.read_bytes())["rater"].tolist() == ["'@ann", "bob"]


@pytest.mark.parametrize("args, message", [
    (["--min-stars", "7"], "minimum stars"),
    (["--since", "2026-02-01", "--until", "2026-01-01"], "after"),
    (["--database", "mysql://x/y"], "SQLite or PostgreSQL"),
])
def test_export_command_reports_bad_input_in_one_line(tmp_path, capsys, args, message):
    assert main(["export", "--out", str(tmp_path / "x.csv"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_export_command_reports_an_unwritable_path(engine, db_url, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", "--out", str(blocker / "x.csv"), "--database", db_url]) == 2
    assert "cannot write" in capsys.readouterr().err


NA_LOOKALIKES = ["NA", "null", "None", "nan", "N/A", "#N/A", "NULL", "", "  spaced  ", "0042", "1e3", "TRUE",
                 "=1+1", "'tis", "line one\r\nline two"]


def documented_reading() -> str:
    """The Python block docs/data.md gives for reading an export back exactly."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "data.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- round-trip-reading.*?-->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/data.md must show the exact round-trip reading in a marked python block"
    return match.group(1)


def test_documented_reading_gives_back_na_lookalike_captions_exactly(engine, tmp_path):
    """Issue 12 item 8: plain read_csv turned the captions "NA" and "null" into NaN."""
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values("na", name="null"))
        ids = [repo.add_caption(session=s, photo=photo, model_key="vit-gpt2-all", text=text,
                                generated_text=text).id for text in NA_LOOKALIKES]
    path = tmp_path / "export.csv"
    with transaction(engine, write=False) as s:
        write_export(path, session=s, include_unrated=True, labels=LABELS)
    scope = {"path": path}
    exec(documented_reading(), scope)  # noqa: S102 - the documentation's own snippet, run as a reader would
    frame = scope["frame"]
    assert list(frame.columns) == CAPTION_COLUMNS
    assert list(frame["caption_id"]) == [str(i) for i in ids]
    assert list(frame["caption"]) == NA_LOOKALIKES
    assert list(frame["generated_text"]) == NA_LOOKALIKES
    assert set(frame["photo_name"]) == {"null"}
    assert set(frame["mean_stars"]) == {""}  # no ratings: an empty cell, read as ""
    plain = pd.read_csv(path)  # what the docs used to promise
    assert plain["caption"].isna().any()


def test_export_file_mode_follows_the_umask(nasty, tmp_path):
    import os
    import stat

    out = tmp_path / "rated.csv"
    old = os.umask(0o022)
    try:
        with transaction(nasty, write=False) as s:
            write_export(out, session=s, labels={})
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # like any file the shell creates, not mkstemp's 0600


def test_export_out_dash_writes_to_standard_output(nasty, db_url, tmp_path, capsysbinary, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--out", "-", "--database", db_url, "--model", "manual"]) == 0
    out, err = capsysbinary.readouterr()
    assert read(out)["caption"].tolist() == ["mine 💖"]
    assert b"wrote 1 captions" in err  # the note goes to stderr, so stdout stays a clean CSV
    assert not (tmp_path / "-").exists()


def test_a_rating_keeps_the_text_it_was_given_to_after_an_edit(engine):
    """Issue 13 item 16: stars given to "a blue circle…" stood beside "Night flight…" in the export."""
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values("rt"))
        cid = repo.add_caption(session=s, photo=photo, model_key="vit-gpt2-all",
                               text="a blue circle on a black background",
                               generated_text="a blue circle on a black background").id
        repo.rate(session=s, caption_id=cid, rater="ann", stars=2)
    with transaction(engine) as s:
        repo.edit_caption(session=s, caption_id=cid, text="Night flight over the city")
        repo.rate(session=s, caption_id=cid, rater="bob", stars=5)
    with transaction(engine, write=False) as s:
        long = {r["rater"]: r for r in read_rows(ratings_long_csv(session=s, labels={}))}
        [wide] = read_rows(rated_captions_csv(session=s, labels={}))
    assert (long["ann"]["caption"], long["ann"]["rated_text"], long["ann"]["rated_text_is_current"]) == (
        "Night flight over the city", "a blue circle on a black background", "false")
    assert (long["bob"]["rated_text"], long["bob"]["rated_text_is_current"]) == ("Night flight over the city", "true")
    assert wide["ratings_of_other_text"] == "1"


def test_a_rating_keeps_the_text_the_rater_was_shown_when_the_caption_changed_before_the_click(engine):
    """The rater's page showed "A calm beach…"; the author edited it in another tab; then the stars were
    clicked. They were recorded as given to the new text, and the export said the rating was current."""
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values("shown"))
        cid = repo.add_caption(session=s, photo=photo, model_key="vit-gpt2-all", text="A calm beach at dawn",
                               generated_text="A calm beach at dawn").id
    with transaction(engine) as s:  # the author, in another tab
        repo.edit_caption(session=s, caption_id=cid, text="Buy cheap followers at spam.example")
    with transaction(engine) as s:
        rating = repo.rate(session=s, caption_id=cid, rater="ann", stars=5, shown_text="A calm beach at dawn")
        assert rating.rated_text == "A calm beach at dawn"
        repo.rate(session=s, caption_id=cid, rater="bob", stars=1)  # no shown text: the caption's text now
    with transaction(engine, write=False) as s:
        long = {r["rater"]: r for r in read_rows(ratings_long_csv(session=s, labels={}))}
        [wide] = read_rows(rated_captions_csv(session=s, labels={}))
    assert (long["ann"]["rated_text"], long["ann"]["rated_text_is_current"]) == ("A calm beach at dawn", "false")
    assert (long["bob"]["rated_text"], long["bob"]["rated_text_is_current"]) == (
        "Buy cheap followers at spam.example", "true")
    assert wide["ratings_of_other_text"] == "1"


def read_rows(data: bytes) -> list[dict]:
    import csv

    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
