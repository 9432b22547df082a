"""igcap_ui.run_order: one session's saves one at a time, other sessions never waiting on them (threads,
as Streamlit runs sessions and, with fast reruns, two runs of one session)."""

from __future__ import annotations

import threading
import time

import pytest

from igcap_ui import run_order


@pytest.fixture
def sessions(monkeypatch):
    """Each thread says which browser session it runs for."""
    local = threading.local()
    monkeypatch.setattr(run_order, "_session_id", lambda: local.session)
    return local


def overlap(sessions, session_ids: list[str], hold: float = 0.2) -> list[tuple[float, float]]:
    """Enter in_click_order from one thread per session id at once; (entered, left) per thread."""
    spans, barrier = [None] * len(session_ids), threading.Barrier(len(session_ids))

    def run(i: int, session: str) -> None:
        sessions.session = session
        barrier.wait()
        with run_order.in_click_order():
            entered = time.monotonic()
            time.sleep(hold)
        spans[i] = (entered, time.monotonic())

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(session_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return spans


def test_two_runs_of_one_session_save_one_after_the_other(sessions):
    spans = sorted(overlap(sessions, ["alice", "alice", "alice"]))
    for (_, left), (entered, _) in zip(spans, spans[1:]):
        assert entered >= left  # never two inside at once


def test_other_sessions_do_not_wait(sessions):
    spans = overlap(sessions, ["alice", "bob", "carol"], hold=0.5)
    assert max(e for e, _ in spans) < min(left for _, left in spans)  # all three were inside together


def test_a_lock_is_dropped_once_no_run_holds_it(sessions):
    overlap(sessions, ["dora", "dora"], hold=0.01)
    assert "dora" not in run_order._LOCKS


def test_a_double_click_on_save_as_favourite_stores_the_caption_once(sessions, monkeypatch, tmp_path):
    """Two runs of one session saving the same card variant at once (a double click with fast reruns): each
    found no saved id on the card and stored the caption, two rows. In click order the second run finds the
    first one's id and updates that caption (the real saving.save_generated, a real database)."""
    from types import SimpleNamespace

    from sqlalchemy import select

    from db import Caption, make_engine, transaction, upgrade
    from igcap.captioner import CaptionResult
    from igcap.images import load_photo
    from igcap_ui import access, resources, saving
    from igcap_ui.caption_card import save_card
    from igcap_ui.results import Card
    from tests import builders

    engine = make_engine(f"sqlite:///{tmp_path / 'igcap.sqlite3'}")
    upgrade(engine)
    monkeypatch.setattr(resources, "db_engine", lambda: engine)
    monkeypatch.setattr(resources, "registry", lambda: {})
    monkeypatch.setattr(access, "current", lambda: SimpleNamespace(id="local"))
    photo = load_photo(builders.photo_bytes(), "red.jpg")
    result = CaptionResult("vit-gpt2-all", 0, 0, "golden hour", "golden hour", 3, 0.1, True)
    card = Card("vit-gpt2-all", [result], settings={"strategy": "greedy"})

    def on_save(card, result, text):  # as the page calls it; the run is slow to note what it saved
        saved = saving.save_generated(photo, card, result, text)
        time.sleep(0.2)
        return saved

    barrier, errors = threading.Barrier(2), []

    def run(text):
        sessions.session = "alice"
        barrier.wait()
        try:
            save_card(card, result, text, on_save)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(t,)) for t in ("golden hour!", "golden hour!!")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    with transaction(engine, write=False) as session:
        [row] = session.scalars(select(Caption)).all()
    assert row.id == card.saved_ids[0] and row.text == card.saved_texts[0]
    engine.dispose()


def test_save_my_caption_waits_for_the_sessions_earlier_save(sessions, monkeypatch, tmp_path):
    """"Save my caption" goes in click order too (as "Save as favourite" does): while an earlier run of the
    same browser session holds the session's save lock, a second run's save waits for it."""
    from types import SimpleNamespace

    from sqlalchemy import func, select

    from db import Caption, make_engine, transaction, upgrade
    from igcap.images import load_photo
    from igcap_ui import access, resources, saving
    from tests import builders

    engine = make_engine(f"sqlite:///{tmp_path / 'igcap.sqlite3'}")
    upgrade(engine)
    monkeypatch.setattr(resources, "db_engine", lambda: engine)
    monkeypatch.setattr(access, "current", lambda: SimpleNamespace(id="local"))
    photo = load_photo(builders.photo_bytes(), "red.jpg")

    def stored() -> int:
        with transaction(engine, write=False) as session:
            return session.scalar(select(func.count(Caption.id)))

    def second_run():
        sessions.session = "alice"
        saving.save_manual(photo, "golden hour")

    sessions.session = "alice"
    with run_order.in_click_order():  # the earlier run, still saving
        thread = threading.Thread(target=second_run)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and stored() == 0
    thread.join(10)
    assert stored() == 1
    engine.dispose()
