"""Stars given in a burst are all stored (issue 12 item 3: 13 of 112 ratings lost, the page showing them all).

Cause: Streamlit runs on_change callbacks at the start of the next run, and when the browser's next click
arrives while they run, the first st.session_state access inside a callback raises Streamlit's
RerunException; Streamlit swallows it as if the callback had called st.rerun(), and never calls that
callback again (the next run sees the widget's value as unchanged). These tests make a click arrive
exactly then, as a fast second click does in the browser.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db import Rating, repo
from tests.pages.conftest import no_exceptions, open_page, set_rater
from tests.pages.test_gallery import query


def click_arrives_during_first(monkeypatch, name: str) -> list:
    """While the first call of repo.<name> runs, the browser sends its next rerun request (the next click)."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates
    from streamlit.runtime.scriptrunner import RerunData, get_script_run_ctx

    real, calls = getattr(repo, name), []

    def wrapper(**kwargs):
        calls.append(kwargs["caption_id"])
        if len(calls) == 1:
            ctx = get_script_run_ctx()
            states = WidgetStates()
            states.widgets.extend(ctx.session_state.get_widget_states())  # the browser sends them all
            ctx.script_requests.request_rerun(RerunData(widget_states=states, page_script_hash=ctx.page_script_hash))
        return real(**kwargs)

    monkeypatch.setattr(repo, name, wrapper)
    return calls


def test_every_star_given_in_a_burst_is_stored(saved, app, db_url, monkeypatch):
    click_arrives_during_first(monkeypatch, "rate")
    set_rater(app, "Alex")
    at = open_page(app, "gallery.py")
    given = {cid: 1 + i % 5 for i, cid in enumerate(saved.values())}
    for cid, stars in given.items():  # several clicks, then one run: their callbacks run back to back
        at.feedback(key=f"stars.{cid}.Alex").set_value(stars - 1)
    at.run()
    no_exceptions(at)
    stored = {r.caption_id: r.stars for r in query(db_url, select(Rating))}
    shown = {cid: at.feedback(key=f"stars.{cid}.Alex").value + 1 for cid in given}
    assert shown == given
    assert stored == given


def test_every_favourite_switched_in_a_burst_is_stored(saved, app, db_url, monkeypatch):
    from db import Caption

    click_arrives_during_first(monkeypatch, "set_favourite")
    at = open_page(app, "gallery.py")
    for cid in saved.values():  # all four start as favourites
        at.toggle(key=f"fav.{cid}").set_value(False)
    at.run()
    no_exceptions(at)
    assert [at.toggle(key=f"fav.{cid}").value for cid in saved.values()] == [False] * 4
    assert [c.favourite for c in query(db_url, select(Caption))] == [False] * 4
