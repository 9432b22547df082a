"""Hashtag sets in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect, select, text

from db import hashtag_sets, transaction
from db.engine import current_revision, downgrade, head_revision, make_engine, upgrade
from db.models import HashtagSet
from db.repo import NotFoundError
from tests.db.test_migrations import fill_first_revision

TRAVEL = ["#travel", "#wanderlust", "#roadtrip"]


def test_save_list_replace_delete(engine):
    with transaction(engine) as s:
        hashtag_sets.save_set(session=s, name="  Travel ", tags=TRAVEL)
        hashtag_sets.save_set(session=s, name="food", tags=["#foodie"])
        hashtag_sets.save_set(session=s, name="travel", tags=["#mine"], owner="ann")  # another person's
    with transaction(engine, write=False) as s:
        assert [(x.name, x.tag_list) for x in hashtag_sets.list_sets(session=s)] == [("food", ["#foodie"]),
                                                                                   ("travel", TRAVEL)]
        assert hashtag_sets.get_set(session=s, name="TRAVEL", owner="ann").tags == "#mine"
    with transaction(engine) as s:  # saving a name again replaces its tags, one row
        again = hashtag_sets.save_set(session=s, name="travel", tags=["#vanlife"])
        assert again.tags == "#vanlife"
    with transaction(engine) as s:
        hashtag_sets.delete_set(session=s, name="Food")
        with pytest.raises(NotFoundError, match="no hashtag set called 'food'"):
            hashtag_sets.delete_set(session=s, name="food")
    with transaction(engine, write=False) as s:
        assert [(x.owner, x.name, x.tags) for x in s.scalars(select(HashtagSet).order_by(HashtagSet.owner))] == [
            ("", "travel", "#vanlife"), ("ann", "travel", "#mine")]


@pytest.mark.parametrize("name, tags, words", [("", TRAVEL, "needs a name"), ("x" * 41, TRAVEL, "at most 40"),
                                               ("travel", [], "at least one hashtag"),
                                               ("travel", ["travel"], "at least one hashtag"),
                                               ("travel", ["#a b"], "at least one hashtag")])
def test_bad_sets_are_refused_with_a_message(engine, name, tags, words):
    with pytest.raises(ValueError, match=words), transaction(engine) as s:
        hashtag_sets.save_set(session=s, name=name, tags=tags)


def test_two_sessions_saving_the_same_name_at_once_leave_one_set(engine):
    errors = []

    def save(tag):
        try:
            with transaction(engine) as s:
                hashtag_sets.save_set(session=s, name="travel", tags=[tag])
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=save, args=(f"#t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with transaction(engine, write=False) as s:
        [only] = hashtag_sets.list_sets(session=s)
        assert only.tags in {f"#t{i}" for i in range(6)}


def test_migration_adds_the_table_and_keeps_rows_both_ways(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0001")
    fill_first_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision() and "hashtag_sets" in inspect(engine).get_table_names()
    with transaction(engine) as s:
        hashtag_sets.save_set(session=s, name="travel", tags=TRAVEL)
    # down to before the hashtag sets (through 0005_owners and 0003_studies, which sit on top and rebuild
    # tables on SQLite): photos, captions, ratings stay. db.engine.downgrade turns SQLite's foreign keys off
    # while tables are rebuilt (raw Alembic would cascade-delete captions and ratings).
    downgrade(engine, "0002")
    assert "hashtag_sets" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("photos", "captions", "ratings")]
    assert counts == [2, 3, 3]
    upgrade(engine)
    with transaction(engine) as s:
        assert hashtag_sets.list_sets(session=s) == []
        hashtag_sets.save_set(session=s, name="travel", tags=TRAVEL)
    engine.dispose()
