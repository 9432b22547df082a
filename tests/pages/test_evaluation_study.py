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
    assert list(board["Ratings"]) == [24, 24, 24] and list(board["Votes"]) == [32, 32, 32]
    # The header counts what the figures rest on (8 photos × 3 models × 3 raters; 3 pairs × 8 photos × 2).
    assert "8 photos × 3 models · 72 ratings · 48 votes" in page_text(at)
    rank = board["Rank"].astype(int)  # text, so that an unranked model shows "—" (not a grey "None")
    assert rank["good"] == 1 <= rank["fair"] <= rank["poor"] and rank["poor"] > 1
    assert "Still needed" not in board.columns  # every figure shown: nothing needed
    assert board.loc["good", "Mean stars [95 % CI]"].startswith("4.")
    assert "[" in board.loc["good", "Bradley–Terry [95 % CI]"]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # stars and BT error bars, the win-rate heat map
    assert "% (16)" in str(charts[2].proto)  # each pair's rate with the votes it rests on (2 voters × 8 photos)
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
    assert len(ratings) == n_ratings == 72 and len(votes) == 48 and {v["study"] for v in votes} == {"sim"}


def test_a_new_study_says_what_data_is_missing(study, app):  # noqa: F811 - `study` from test_study_pages
    at = open_page(app, "evaluation.py")
    no_exceptions(at)
    text = page_text(at)
    assert "Not enough data to rank the models yet" in text
    assert "Not enough data yet for Krippendorff" in text
    board = frame_with(at, "Rank")
    assert all("10 more ratings" in needs for needs in board["Still needed"])
    assert list(board.columns[:3]) == ["Rank", "Model", "Still needed"]  # where it is not cut off
    assert set(board["Rank"]) == {"—"} and set(board["Arena score"]) == {"—"}
    assert "(10 ratings on at least 8 photos, or 10 votes on at least 8)" in text  # igcap.leaderboard.Thresholds
    assert all(v == "not enough data" for v in board["Mean stars [95 % CI]"])
    assert "No votes yet" in text
    # two photos: below what the figures need, which ratings alone cannot fix (photos cannot be added)
    assert any("This study has 2 photos and the leaderboard's figures need ratings or votes on at least 8"
               in w.value for w in at.warning)


def test_agreement_says_when_raters_never_differ(app_env, db_url):
    """Every rating the same star value: Krippendorff's alpha is 0/0; the page said "not enough data"."""
    simulated_study(db_url, stars=4)
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "evaluation.py")
    no_exceptions(at)
    text = page_text(at)
    assert ("Krippendorff's α is undefined: every rating of the captions rated by two or more people is the same "
            "star value") in text
    assert "Not enough data yet for Krippendorff" not in text


def test_votes_that_all_go_one_way_rank_the_models_with_their_bounds(app_env, db_url):
    """Every voter picked the better caption: each bootstrap resample had the same win counts, and the page said
    "Not enough data to rank the models yet" and "Not enough votes yet" though every model had 32 votes."""
    simulated_study(db_url, stars=3, unanimous=True)  # stars that never differ: only the votes can rank
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "evaluation.py")
    no_exceptions(at)
    text = page_text(at)
    assert "Not enough data to rank" not in text and "Not enough votes yet" not in text
    board = frame_with(at, "Rank").set_index("Model")
    assert list(board.index) == ["good", "fair", "poor"] and list(board["Rank"]) == ["1", "2", "3"]
    bt = board["Bradley–Terry [95 % CI]"]
    assert bt["good"].startswith("≥ +") and bt["poor"].startswith("≤ -") and bt["fair"] == "no bound"
    assert board.loc["good", "Arena score"].startswith("≥ ")
    assert "a model that won every vote against another, on at least 5 photos, ranks above it" in text
    assert "its interval is open above" in text and "rule of three" in text
