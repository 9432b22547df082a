"""The Evaluation page: per-model rating table and chart, CSV downloads with the filters applied."""

import csv
import io

import pytest
from streamlit.delta_generator import DeltaGenerator

from db import make_engine, repo, transaction
from tests.pages.conftest import no_exceptions, open_page


@pytest.fixture
def downloads(monkeypatch):
    """The bytes each download button offers, by key (AppTest does not expose a button's file)."""
    offered = {}
    original = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        offered[kwargs.get("key")] = data
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    return offered


def read_csv(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.fixture
def rated(saved, db_url):
    with transaction(make_engine(db_url)) as session:
        for text, rater, stars in [("Blue sky", "Alex", 4), ("Blue sky", "Sam", 2), ("My red one", "Alex", 5)]:
            repo.rate(session=session, caption_id=saved[text], rater=rater, stars=stars)
    return saved


def test_stats_table_and_exports(rated, app, downloads):
    at = open_page(app, "evaluation.py")
    no_exceptions(at)
    table = at.dataframe[0].value.set_index("Model")
    assert table.loc["ViT-GPT2 · last block", "Ratings"] == 2
    assert table.loc["ViT-GPT2 · last block", "Mean stars"] == "3.00"
    assert table.loc["Written by hand", "5★"] == 1
    assert table.loc["nlpconnect · all parameters", "Ratings"] == 0
    wide = read_csv(downloads["evaluation.download_wide"])
    assert sorted((r["caption"], r["ratings"], r["mean_stars"]) for r in wide) == [
        ("Blue sky", "2", "3.0"), ("My red one", "1", "5.0")]
    long = read_csv(downloads["evaluation.download_long"])
    assert sorted((r["caption"], r["rater"], r["stars"]) for r in long) == [
        ("Blue sky", "Alex", "4"), ("Blue sky", "Sam", "2"), ("My red one", "Alex", "5")]


def test_filters_apply_to_exports(rated, app, downloads):
    at = open_page(app, "evaluation.py")
    at.selectbox(key="evaluation.rater").set_value("Sam").run()
    assert [r["caption"] for r in read_csv(downloads["evaluation.download_wide"])] == ["Blue sky"]
    at.selectbox(key="evaluation.rater").set_value("Anyone").run()
    at.toggle(key="evaluation.unrated").set_value(True).run()
    assert len(read_csv(downloads["evaluation.download_wide"])) == 4  # unrated captions too


def test_empty_database_says_what_to_do(app_env, app):
    at = open_page(app, "evaluation.py")
    no_exceptions(at)
    assert any("No captions saved yet" in i.value for i in at.info)


def chart_spec(at) -> dict:
    import json

    [chart] = at.get("vega_lite_chart")
    return json.loads(chart.proto.spec)


def test_chart_reads_one_to_five_stars_in_order_with_full_labels_and_right_titles(rated, app):
    at = open_page(app, "evaluation.py")
    no_exceptions(at)
    enc = chart_spec(at)["encoding"]
    model_axis = next(e for e in enc.values() if isinstance(e, dict) and e.get("field") == "Model")
    count_axis = next(e for e in enc.values() if isinstance(e, dict) and e.get("field") == "Ratings")
    assert model_axis["title"] == "Model" and count_axis["title"] == "Ratings"
    assert model_axis["axis"]["labelLimit"] == 0  # full labels, never "Demo: nlpconnec…"
    colour = enc["color"]
    assert colour["scale"]["domain"] == ["1★", "2★", "3★", "4★", "5★"]  # legend and colours in star order
    assert len(colour["scale"]["range"]) == 5 and enc["order"]["field"] == "Stars value"


def test_a_filter_that_matches_nothing_is_not_called_an_empty_database(saved, app):
    at = open_page(app, "evaluation.py")
    at.text_input(key="evaluation.search").set_value("zzz-nowhere").run()
    no_exceptions(at)
    assert not any("No captions saved yet" in i.value for i in at.info)
    assert any("No caption matches these filters" in i.value for i in at.info)


def test_rated_by_leaves_out_people_who_rated_only_study_captions(saved, app, db_url):
    from tests.pages.test_gallery import rated_study

    rated_study(db_url, ["overall"])
    at = open_page(app, "evaluation.py")
    assert "Zed" not in at.selectbox(key="evaluation.rater").options


def test_with_nothing_rated_the_page_says_the_rated_export_is_empty_and_how_to_get_rows(saved, app, downloads):
    """Four saved captions in the table, none rated: "Rated captions" looked ready and downloaded only the
    header. The page says so before the download, names the toggle that gives rows, and counts each file's rows."""
    at = open_page(app, "evaluation.py")
    no_exceptions(at)
    assert read_csv(downloads["evaluation.download_wide"]) == []
    [note] = [i.value for i in at.info if "rated" in i.value]
    assert "0 of the 4 saved captions here are rated" in note and "Include unrated captions" in note
    labels = {b.key: b.label for b in at.get("download_button")}
    assert "0 rows" in labels["evaluation.download_wide"] and "0 rows" in labels["evaluation.download_long"]
    at.toggle(key="evaluation.unrated").set_value(True).run()
    assert len(read_csv(downloads["evaluation.download_wide"])) == 4
    assert not [i.value for i in at.info if "are rated" in i.value]
    assert "4 rows" in {b.key: b.label for b in at.get("download_button")}["evaluation.download_wide"]


def test_the_row_counts_follow_the_ratings(rated, app, downloads):
    at = open_page(app, "evaluation.py")
    labels = {b.key: b.label for b in at.get("download_button")}
    assert "2 rows" in labels["evaluation.download_wide"] and "3 rows" in labels["evaluation.download_long"]
    assert not [i.value for i in at.info if "are rated" in i.value]
