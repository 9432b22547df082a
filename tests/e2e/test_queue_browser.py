"""Waiting in line in a real browser, with Streamlit's default fast reruns: a click while waiting stops the
run on its thread (StopException, not the RerunException AppTest raises) and the next run starts at once.
The place in line was given up then: "Your place in line lapsed" after any click."""

from __future__ import annotations

import time

from tests.e2e.conftest import serve_app


def test_a_click_while_waiting_keeps_the_place_in_line(hub_cache, tmp_path, browser_page):
    with serve_app(tmp_path, hub_cache, script="tests/e2e/queue_page.py") as (url, _):
        page = browser_page
        page.goto(url)
        page.get_by_text("QUEUE waiting=0 running=1").wait_for(timeout=60_000)
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("Waiting for your turn: 1st in line").wait_for(timeout=30_000)
        for _ in range(3):  # each click stops the waiting run and starts another
            page.get_by_role("button", name="Another button").click()
            time.sleep(1.5)
            page.get_by_text("Waiting for your turn: 1st in line").wait_for(timeout=30_000)
        assert page.get_by_text("QUEUE waiting=1 running=1").is_visible()
        assert not page.get_by_text("lapsed").count() and not page.get_by_text("NO PENDING GENERATION").count()
