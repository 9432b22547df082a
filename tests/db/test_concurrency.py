"""Two people at once, a failure halfway through, a process killed mid-write: no rating is lost,
no half-written batch survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db import Caption, Photo, Rating, repo
from db.engine import make_engine, transaction
from tests.db.conftest import add_photo_with_captions, photo_values

ROOT = Path(__file__).resolve().parents[2]


def run_together(*jobs) -> None:
    """Start the jobs at the same moment in threads; re-raise the first error any of them had."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def wrap(job):
        barrier.wait()
        try:
            job()
        except BaseException as err:  # noqa: BLE001 - handed to the test below
            errors.append(err)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]


def test_two_people_rating_at_once_lose_nothing(db_url):
    """Two 'browser tabs' (separate engines) rate the same and different captions at the same time."""
    setup = make_engine(db_url)
    with transaction(setup) as s:
        captions = [c.id for n in range(6) for c in add_photo_with_captions(s, f"c{n}")[1]]
    shared, own = captions[:6], captions[6:]

    def rater(name: str, mine: list[int]):
        def job():
            engine = make_engine(db_url)
            for round_ in range(3):  # re-rating the same captions: updates, not new rows
                for cid in shared + mine:
                    with transaction(engine) as s:
                        repo.rate(session=s, caption_id=cid, rater=name, stars=1 + (cid + round_) % 5)
                    with transaction(engine) as s:  # and everyone rates as "team" on the same row
                        repo.rate(session=s, caption_id=cid, rater="team", stars=5 - round_)
            engine.dispose()
        return job

    run_together(rater("ann", own[:3]), rater("bob", own[3:]))
    with transaction(setup, write=False) as s:
        got = Counter((r.rater, r.caption_id) for r in s.scalars(select(Rating)))
        stars = {(r.rater, r.caption_id): r.stars for r in s.scalars(select(Rating))}
    expected = {("ann", c) for c in shared + own[:3]} | {("bob", c) for c in shared + own[3:]} | {
        ("team", c) for c in shared + own}
    assert set(got) == expected and set(got.values()) == {1}
    assert all(stars[("ann", c)] == 1 + (c + 2) % 5 for c in shared + own[:3])
    assert all(stars[("team", c)] == 3 for c in shared + own)
    setup.dispose()


def test_one_person_rating_in_several_tabs_under_several_spellings_stores_one_rating(engine):
    """Sessions are threads of one process sharing the engine. Four tabs of one person rating one caption at once as
    "Maya", "maya", "MAYA" and " Maya " stored three rows on PostgreSQL (each read no earlier name, and the
    upsert conflicted only on the exact spelling); the summaries, statistics and exports counted three."""
    names = ["Maya", "maya", "MAYA", " Maya "]
    for round_ in range(3):
        with transaction(engine) as s:
            _, (caption, _) = add_photo_with_captions(s, f"tabs{round_}")
            cid = caption.id

        def tab(i):
            def job():
                with transaction(engine) as s:
                    repo.rate(session=s, caption_id=cid, rater=names[i], stars=i + 1)
            return job

        run_together(*(tab(i) for i in range(len(names))))
        with transaction(engine, write=False) as s:
            [rating] = repo.ratings_for_caption(session=s, caption_id=cid)
            assert rating.rater in names and rating.stars in {1, 2, 3, 4}
            assert repo.rating_summaries(session=s, caption_ids=[cid]) == {cid: (1, float(rating.stars))}
    with transaction(engine, write=False) as s:
        assert sum(m.count for m in repo.rating_stats(session=s)) == 3


def test_the_same_photo_saved_at_once_is_stored_once(db_url):
    engine = make_engine(db_url)
    ids: list[int] = []

    def save():
        with transaction(engine) as s:
            ids.append(repo.save_photo(session=s, **photo_values("same")).id)

    run_together(*[save] * 4)
    with transaction(engine, write=False) as s:
        assert s.scalar(select(func.count(Photo.id))) == 1
    assert len(ids) == 4 and len(set(ids)) == 1
    engine.dispose()


def test_the_same_hand_written_caption_saved_from_two_tabs_at_once_is_stored_once(engine, monkeypatch):
    """The Create page's "Save my caption" (igcap_ui.saving.save_manual) pressed in two tabs of one person at
    once, the photo already stored: both looked for the text, found none and stored it, two rows (45 of 60
    double saves on PostgreSQL). The photo row is locked before the look-up now. The look-up is slowed so
    both tabs are inside the window every time; two tabs are two browser sessions (run_order's lock is
    per session and does not keep them apart)."""
    import time
    from types import SimpleNamespace

    from igcap.images import load_photo
    from igcap_ui import access, resources, run_order, saving
    from tests import builders

    tab = threading.local()
    monkeypatch.setattr(run_order, "_session_id", lambda: tab.session)
    monkeypatch.setattr(resources, "db_engine", lambda: engine)
    monkeypatch.setattr(access, "current", lambda: SimpleNamespace(id="local"))
    find = repo.find_caption

    def slow_find(**kwargs):
        found = find(**kwargs)
        time.sleep(0.3)  # a busy server: the other tab looks meanwhile
        return found

    monkeypatch.setattr(repo, "find_caption", slow_find)
    photo = load_photo(builders.photo_bytes(), "red.jpg")
    tab.session = "setup"
    saving.save_manual(photo, "an earlier caption of this photo")
    results = []

    def save(session_id):
        def job():
            tab.session = session_id
            results.append(saving.save_manual(photo, "Sunset over the bay"))
        return job

    run_together(save("tab-1"), save("tab-2"))
    with transaction(engine, write=False) as s:
        assert s.scalar(select(func.count(Caption.id)).where(Caption.text == "Sunset over the bay")) == 1
    assert sorted(new for _, new in results) == [False, True] and len({cid for cid, _ in results}) == 1


def test_a_transaction_failing_midway_leaves_no_partial_rows(engine):
    with pytest.raises(ValueError, match="stars"):
        with transaction(engine) as s:
            photo, captions = add_photo_with_captions(s, "half")
            repo.rate(session=s, caption_id=captions[0].id, rater="ann", stars=4)
            repo.rate(session=s, caption_id=captions[1].id, rater="ann", stars=9)  # fails after rows were flushed
    with pytest.raises(IntegrityError):
        with transaction(engine) as s:
            photo, _ = add_photo_with_captions(s, "orphan")
            s.add(Rating(caption_id=10_000, rater="ann", stars=3, criterion="overall"))  # no such caption
            s.flush()
    with transaction(engine, write=False) as s:
        assert [s.scalar(select(func.count(m.id))) for m in (Photo, Caption, Rating)] == [0, 0, 0]


def test_a_process_killed_mid_batch_leaves_only_whole_batches(db_url):
    batch = 6
    child = subprocess.Popen([sys.executable, "-m", "tests.db.writer_process", db_url, str(batch)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.strip())
            if line.strip() == "mid 3":  # batches 0-2 committed, batch 3 half flushed
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=30)
    assert "mid 3" in lines, (lines, child.stderr.read())
    assert child.returncode == -signal.SIGKILL
    engine = make_engine(db_url)
    with transaction(engine, write=False) as s:
        if engine.dialect.name == "sqlite":
            assert s.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        names = sorted(s.scalars(select(Photo.name)))
        per_photo = Counter(s.scalars(select(Caption.photo_id)))
        ratings = s.scalar(select(func.count(Rating.id)))
    assert names == [f"batch-{k}.jpg" for k in range(3)]
    assert sorted(per_photo.values()) == [batch] * 3 and ratings == 3 * batch
    engine.dispose()
