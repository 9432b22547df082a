"""The Evaluation page's study leaderboard: figures, charts and downloads from a simulated study, and the
"not enough data" states of a study that has just started."""

from __future__ import annotations

import csv
import io
import json

from db import make_engine, studies, transaction
from igcap.study import LEADERBOARD_COLUMNS, study_leaderboard
from tests.builders import simulated_study
from tests.pages.conftest import no_exceptions, open_page
from tests.pages.test_evaluation import downloads  # noqa: F401 - the fixture
from tests.pages.test_study_pages import page_text, study  # noqa: F401 - `study` is a fixture


def frame_with(at, column: str):
    """The first table on the page with this column (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_leaderboard_of_a_simulated_study(app_env, db_url, downloads):  # noqa: F811
    simulated_study(db_url)
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "evaluation.py")
    no_exceptions(at)
    board = frame_with(at, "Rank").set_index("Model")
    assert list(board.index) == ["good", "fair", "poor"]  # not in the registry: shown by key
    assert list(board["Ratings"]) == [18, 18, 18] and list(board["Votes"]) == [24, 24, 24]
    assert board.loc["good", "Rank"] == 1 <= board.loc["fair", "Rank"] <= board.loc["poor", "Rank"] and (
        board.loc["poor", "Rank"] > 1)
    assert board.loc["good", "Mean stars [95 % CI]"].startswith("4.")
    assert "[" in board.loc["good", "Bradley–Terry [95 % CI]"]
    assert len(at.get("vega_lite_chart")) == 3  # stars and BT error bars, the win-rate heat map
    assert any("Krippendorff" in m.label for m in at.metric)
    raters = frame_with(at, "Rater")
    assert sorted(raters["Rater"]) == ["ann", "bob", "cy"]

    engine = make_engine(db_url)
    with transaction(engine, write=False) as s:
        expected = study_leaderboard(session=s, name="sim", bootstrap=1000).to_json()
        n_ratings = studies.study_counts(session=s, study=studies.get_study(session=s, name="sim"))["ratings"]
    engine.dispose()
    assert json.loads(downloads["evaluation.study_board_json"]) == expected
    rows = list(csv.DictReader(io.StringIO(downloads["evaluation.study_board_csv"].decode("utf-8-sig"))))
    assert list(rows[0]) == LEADERBOARD_COLUMNS and [r["model_key"] for r in rows] == ["good", "fair", "poor"]
    ratings = list(csv.DictReader(io.StringIO(downloads["evaluation.study_ratings"].decode("utf-8-sig"))))
    votes = list(csv.DictReader(io.StringIO(downloads["evaluation.study_votes"].decode("utf-8-sig"))))
    assert len(ratings) == n_ratings == 54 and len(votes) == 36 and {v["study"] for v in votes} == {"sim"}


def test_a_new_study_says_what_data_is_missing(study, app):  # noqa: F811 - `study` from test_study_pages
    at = open_page(app, "evaluation.py")
    no_exceptions(at)
    text = page_text(at)
    assert "Not enough data to rank the models yet" in text
    assert "Not enough data yet for Krippendorff" in text
    board = frame_with(at, "Rank")
    assert all("10 more ratings" in needs for needs in board["Still needed"])
    assert all(v == "not enough data" for v in board["Mean stars [95 % CI]"])
    assert "No votes yet" in text
