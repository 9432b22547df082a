"""A study in real headless Chromium: create it from an uploaded photo, write its captions with the tiny
models, rate one caption blind, vote on one pair and see the names only after the vote."""

from __future__ import annotations

import pytest

from igcap.registry import DEFAULT_MODELS
from tests import builders
from tests.e2e.test_browser import go_to, open_create_page, settle, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NAMES = [m.key for m in DEFAULT_MODELS] + [m.label for m in DEFAULT_MODELS]


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def stored(db_url: str):
    from sqlalchemy import select

    from db import Rating, Vote, make_engine, transaction

    engine = make_engine(db_url)
    with transaction(engine, write=False) as session:
        ratings = [(r.rater, r.stars, r.criterion, r.rated_text) for r in session.scalars(select(Rating))]
        votes = [(v.rater, v.winner, v.model_a, v.model_b) for v in session.scalars(select(Vote))]
    engine.dispose()
    return ratings, votes


def test_study_rate_and_vote_blind(app_server, browser_page, screenshots, tmp_path):
    url, db_url = app_server
    page = browser_page
    open_create_page(page, url)
    name_box = page.get_by_label("Your name (for ratings)", exact=True)
    name_box.fill("Browser Rater")
    name_box.press("Enter")
    settle(page)

    go_to(page, "Studies")
    if not page.get_by_label("Study name", exact=True).is_visible():  # open by itself while there is no study
        page.get_by_text("New study").click()
    page.get_by_label("Study name", exact=True).fill("E2E study")
    page.get_by_label("Study name", exact=True).press("Enter")
    settle(page)
    photo = tmp_path / "beach.png"
    photo.write_bytes(builders.photo_bytes("PNG", size=(96, 64), colour="orange"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.locator('[data-testid="stFileChipName"]', has_text="beach.png").wait_for()
    page.locator('[data-testid="stFileChipIconSpinner"]').wait_for(state="detached")
    settle(page)
    page.get_by_role("button", name="Create study").click()
    settle(page)
    page.get_by_text("Created the study E2E study").wait_for()
    page.get_by_role("button", name="Write the captions").click()
    page.get_by_text("Done: 4 caption(s) written").wait_for(timeout=120_000)
    page.get_by_text("4 of 4 captions written").wait_for()
    settle(page)
    shot(page, screenshots, "10-study-generated.png")

    go_to(page, "Rate")
    page.get_by_text("0 of 4 rated by you").wait_for()
    shown = main_text(page)
    assert not [n for n in NAMES if n in shown], "the model is named on the Rate page before rating"
    shot(page, screenshots, "11-rate.png")
    page.get_by_role("radio", name="4 out of 5 stars").first.click()
    settle(page)
    page.get_by_role("button", name="Submit rating").click()
    settle(page)
    page.get_by_text("1 of 4 rated by you").wait_for()
    ratings, _ = stored(db_url)
    assert [(r, s, c) for r, s, c, _ in ratings] == [("Browser Rater", 4, "overall")] and ratings[0][3] is not None

    go_to(page, "Arena")
    page.get_by_text("0 of 6 pairs judged by you").wait_for()
    shown = main_text(page)
    assert not [n for n in NAMES if n in shown], "a model is named in the Arena before the vote"
    shot(page, screenshots, "12-arena-before.png")
    page.get_by_role("button", name="A is better").click()
    settle(page)
    page.get_by_text("A was written by").wait_for()
    page.get_by_text("1 of 6 pairs judged by you").wait_for()
    settle(page)
    _, votes = stored(db_url)
    [(rater, winner, model_a, model_b)] = votes
    labels = {m.key: m.label for m in DEFAULT_MODELS}
    revealed = page.locator('[data-testid="stAlertContentSuccess"]').inner_text()
    assert (rater, winner) == ("Browser Rater", "a")
    assert labels[model_a] in revealed and labels[model_b] in revealed
    shot(page, screenshots, "13-arena-after.png")


def test_leaderboard_of_a_simulated_study(app_server, browser_page, screenshots):
    """The Evaluation page draws a rated study's leaderboard: table, error bars, heat map, agreement."""
    url, db_url = app_server
    builders.simulated_study(db_url, name="Simulated")
    page = browser_page
    open_create_page(page, url)
    go_to(page, "Evaluation")
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="Simulated").click()
    settle(page)
    page.get_by_text("Ranked by Bradley–Terry score").wait_for()
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 3
    page.get_by_text("Krippendorff's α (ordinal)").wait_for()
    shot(page, screenshots, "14-evaluation-leaderboard.png")


def test_delete_a_study_after_typing_its_name(app_server, browser_page, screenshots):
    """Deleting asks for the study's name, says what goes, and keeps the photos."""
    from db import make_engine, studies, transaction

    url, db_url = app_server
    builders.simulated_study(db_url, name="Pilot <b>run</b>")
    engine = make_engine(db_url)
    with transaction(engine, write=False) as session:
        photos = len(studies.pickable_photos(session=session))
    page = browser_page
    open_create_page(page, url)
    go_to(page, "Studies")
    page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Study", exact=True)).click()
    page.get_by_role("option", name="Pilot <b>run</b>").click()
    settle(page)
    page.get_by_text("Delete this study").click()
    button = page.get_by_role("button", name="Delete study")
    assert button.is_disabled()
    box = page.get_by_label("Type the study's name to delete it", exact=True)
    box.fill("Pilot <b>run</b>")
    box.press("Enter")
    settle(page)
    shot(page, screenshots, "15-study-delete.png")
    button.click()
    settle(page)
    page.get_by_text("Deleted the study “Pilot <b>run</b>”").wait_for()
    with transaction(engine, write=False) as session:
        assert "Pilot <b>run</b>" not in [s.name for s in studies.list_studies(session=session)]
        assert len(studies.pickable_photos(session=session)) == photos
    engine.dispose()
