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




def browser_states(changes: dict):
    """The widget states the browser would send: every widget, with ``changes`` (key → value) applied."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    states = WidgetStates()
    for state in get_script_run_ctx().session_state.get_widget_states():
        for key, value in changes.items():
            if state.id.endswith(key):
                if isinstance(value, bool):
                    state.bool_value = value
                else:
                    state.string_value = str(value)
        states.widgets.append(state)
    return states


def request_rerun(states=None) -> None:
    from streamlit.runtime.scriptrunner import RerunData, get_script_run_ctx

    ctx = get_script_run_ctx()
    ctx.script_requests.request_rerun(RerunData(widget_states=states, page_script_hash=ctx.page_script_hash))


def test_a_save_cut_short_after_its_commit_is_not_mistaken_for_the_earlier_value(saved, app, db_url, monkeypatch):
    """The real browser's remaining loss (48 clicks on 8 captions 30 ms apart stored 2 to 7 earlier clicks
    when the machine was busy). Stars 1, then 4: saved, but the next clicks arrive during the save and
    cut its callback short before it notes what it stored; they switch a favourite and put this caption
    back at 1 star, and a further click cuts the stars callback off before it starts, so Streamlit never
    calls it. The page believed 1 star was still stored, showed 1 star, and the database kept 4."""
    from igcap_ui import gallery_items

    ids = list(saved.values())
    cid, other = ids[0], ids[-1]  # the gallery draws the newest first: the favourite comes first
    key, fav = f"stars.{cid}.Alex", f"fav.{other}"
    real_rate, real_favourite, clicks = repo.rate, gallery_items._favourite, {}

    def rate(**kwargs):
        result = real_rate(**kwargs)
        if not clicks:  # 4 stars committed; now the favourite click and the click back on 1 star arrive
            clicks["back"] = browser_states({key: 0, fav: False})
            request_rerun(clicks["back"])
        return result

    def favourite(*args):
        real_favourite(*args)
        request_rerun(clicks["back"])  # one more click: the stars callback, next in line, is cut off

    monkeypatch.setattr(gallery_items, "_favourite", favourite)  # before the page registers its callbacks
    set_rater(app, "Alex")
    at = open_page(app, "gallery.py")
    at.feedback(key=key).set_value(0).run()  # 1 star, saved
    monkeypatch.setattr(repo, "rate", rate)
    at.feedback(key=key).set_value(3).run()
    no_exceptions(at)
    assert at.feedback(key=key).value == 0  # the page shows 1 star …
    assert [r.stars for r in query(db_url, select(Rating)) if r.caption_id == cid] == [1]  # … and 1 is stored
