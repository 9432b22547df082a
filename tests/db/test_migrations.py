"""A database made at the first revision, with rows in it, keeps every row through the upgrades."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from db import Caption, Photo, Rating, repo, studies
from db.engine import alembic_config, current_revision, downgrade, head_revision, make_engine, transaction, upgrade

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def fill_first_revision(engine) -> None:
    """Rows written with the 0001 schema (raw SQL: the ORM classes describe the newest schema)."""
    when = CREATED if engine.dialect.name == "postgresql" else CREATED.replace(tzinfo=None)
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(text(
                "INSERT INTO photos (id, sha256, name, width, height, format, image_jpeg, thumbnail_jpeg, created_at) "
                "VALUES (:id, :sha, :name, 10, 20, 'JPEG', :img, :thumb, :at)"),
                dict(id=n, sha=f"{n}" * 64, name=f"old {n} 📷.jpg", img=b"img%d" % n, thumb=b"th%d" % n, at=when))
        for cid, pid, key in ((1, 1, "vit-gpt2-all"), (2, 1, "manual"), (3, 2, "nlpconnect-all")):
            conn.execute(text(
                "INSERT INTO captions (id, photo_id, model_key, model_source, text, generated_text, settings, "
                "favourite, seconds, created_at, updated_at) VALUES (:id, :pid, :key, NULL, :text, :gen, "
                ":settings, :fav, 1.5, :at, :at)"),
                dict(id=cid, pid=pid, key=key, text=f"caption {cid}", gen=None if key == "manual" else f"gen {cid}",
                     settings='{"num_beams": 4}', fav=cid == 3, at=when))
        for rid, cid, rater, stars in ((1, 1, "ann", 5), (2, 1, "bob", 2), (3, 3, "ann", 4)):
            conn.execute(text(
                "INSERT INTO ratings (id, caption_id, rater, stars, criterion, comment, created_at) "
                "VALUES (:id, :cid, :rater, :stars, 'overall', NULL, :at)"),
                dict(id=rid, cid=cid, rater=rater, stars=stars, at=when))
        if engine.dialect.name == "postgresql":  # explicit ids above: move the sequences past them
            for table in ("photos", "captions", "ratings"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)"))


def test_upgrade_from_the_first_revision_keeps_every_row(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    fill_first_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with transaction(engine, write=False) as s:
        photos = s.scalars(select(Photo).order_by(Photo.id)).all()
        captions = s.scalars(select(Caption).order_by(Caption.id)).all()
        ratings = s.scalars(select(Rating).order_by(Rating.id)).all()
        assert [(p.name, p.width, p.height, repo.photo_image(session=s, photo_id=p.id)) for p in photos] == [
            ("old 1 📷.jpg", 10, 20, b"img1"), ("old 2 📷.jpg", 10, 20, b"img2")]
        assert [(c.photo_id, c.model_key, c.text, c.generated_text, c.settings, c.favourite) for c in captions] == [
            (1, "vit-gpt2-all", "caption 1", "gen 1", {"num_beams": 4}, False),
            (1, "manual", "caption 2", None, {"num_beams": 4}, False),
            (2, "nlpconnect-all", "caption 3", "gen 3", {"num_beams": 4}, True)]
        assert [(r.caption_id, r.rater, r.stars) for r in ratings] == [(1, "ann", 5), (1, "bob", 2), (3, "ann", 4)]
        assert all(r.created_at == r.updated_at == CREATED for r in ratings)  # backfilled by 0002
        # and the upgraded database works as usual
        repo.rate(session=s, caption_id=1, rater="ann", stars=1)
    indexes = {ix["name"] for table in ("captions", "ratings") for ix in inspect(engine).get_indexes(table)}
    assert {"ix_captions_created_at", "ix_ratings_rater"} <= indexes
    engine.dispose()


def test_downgrade_and_upgrade_again_keep_rows(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0001")
    fill_first_revision(engine)
    upgrade(engine)
    downgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    upgrade(engine)
    with transaction(engine, write=False) as s:
        assert len(s.scalars(select(Rating)).all()) == 3 and len(s.scalars(select(Caption)).all()) == 3
    engine.dispose()


def test_owners_migration_gives_existing_rows_to_local_and_keeps_them(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0001")
    fill_first_revision(engine)
    upgrade(engine, "0005_owners")
    with transaction(engine) as s:
        photos = s.scalars(select(Photo).order_by(Photo.id)).all()
        assert [(p.id, p.owner, p.name, p.sha256) for p in photos] == [
            (1, "local", "old 1 📷.jpg", "1" * 64), (2, "local", "old 2 📷.jpg", "2" * 64)]
        captions = s.scalars(select(Caption).order_by(Caption.id)).all()
        assert [(c.id, c.photo_id, c.author, c.text) for c in captions] == [
            (1, 1, "local", "caption 1"), (2, 1, "local", "caption 2"), (3, 2, "local", "caption 3")]
        assert [(r.caption_id, r.rater, r.stars) for r in s.scalars(select(Rating).order_by(Rating.id))] == [
            (1, "ann", 5), (1, "bob", 2), (3, "ann", 4)]
        # the same photo can now belong to a second owner, as a separate private row
        values = dict(sha256="1" * 64, name="mine.jpg", width=1, height=1, format="JPEG", image_jpeg=b"x",
                      thumbnail_jpeg=b"t")
        theirs = repo.save_photo(session=s, owner="ben@example.org", **values)
        assert theirs.id not in (1, 2) and theirs.owner == "ben@example.org"
        assert repo.save_photo(session=s, **values).id == 1  # local's copy is found again, not duplicated
    unique = {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("photos")}
    assert ("owner", "sha256") in unique and ("sha256",) not in unique
    engine.dispose()


def test_downgrade_below_owners_refuses_when_two_owners_share_a_photo(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0005_owners")
    with transaction(engine) as s:
        for owner in ("ana@example.org", "ben@example.org"):
            repo.save_photo(session=s, owner=owner, sha256="a" * 64, name="same.jpg", width=1, height=1,
                            format="JPEG", image_jpeg=b"x", thumbnail_jpeg=b"t")
    with pytest.raises(RuntimeError, match="more than one owner"):
        downgrade(engine, "0002")
    assert current_revision(engine) == "0005_owners"
    with transaction(engine, write=False) as s:
        assert sorted(p.owner for p in s.scalars(select(Photo))) == ["ana@example.org", "ben@example.org"]
    engine.dispose()


def test_owners_migration_refuses_a_sqlite_connection_with_foreign_keys_on(tmp_path):
    """Run any other way (foreign keys on), rebuilding photos would cascade-delete every caption."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.sqlite3'}")
    upgrade(engine, "0001")
    fill_first_revision(engine)
    upgrade(engine, "0003_studies")  # the revision before 0005_owners
    config = alembic_config()
    with pytest.raises(RuntimeError, match="captions would be lost"), engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005_owners")
    with transaction(engine, write=False) as s:
        assert s.scalar(text("SELECT COUNT(*) FROM captions")) == 3
    engine.dispose()


def test_0003_studies_keeps_every_row_and_adds_study_captions_beside_them(blank_url):
    """A database at 0002 with photos, captions and ratings: after 0003 every row is as it was, the old
    captions are not study captions, the old ratings have no recorded text, and studies work."""
    engine = make_engine(blank_url)
    upgrade(engine, "0001")
    fill_first_revision(engine)
    upgrade(engine, "0002")
    upgrade(engine, "0003_studies")
    upgrade(engine)  # on to the head: the ORM maps the newest schema (0005_owners adds photos.owner)
    with transaction(engine) as s:
        captions = s.scalars(select(Caption).order_by(Caption.id)).all()
        assert [(c.id, c.photo_id, c.model_key, c.text, c.favourite, c.study_id) for c in captions] == [
            (1, 1, "vit-gpt2-all", "caption 1", False, None), (2, 1, "manual", "caption 2", False, None),
            (3, 2, "nlpconnect-all", "caption 3", True, None)]
        ratings = s.scalars(select(Rating).order_by(Rating.id)).all()
        assert [(r.caption_id, r.rater, r.stars, r.rated_text) for r in ratings] == [
            (1, "ann", 5, None), (1, "bob", 2, None), (3, "ann", 4, None)]
        assert all(r.created_at == r.updated_at == CREATED for r in ratings)
        # the new tables work on the upgraded database, beside the old rows
        study = studies.create_study(session=s, name="first", models=["vit-gpt2-all", "nlpconnect-all"],
                                     settings={"strategy": "greedy"}, photo_ids=[1, 2])
        studies.save_study_caption(session=s, study=study, photo_id=1, model_key="vit-gpt2-all", text="study text")
        assert repo.rate(session=s, caption_id=1, rater="cy", stars=3).rated_text == "caption 1"
    with transaction(engine, write=False) as s:
        assert len(s.scalars(select(Caption)).all()) == 4
        assert repo.gallery(session=s).total == 3  # study captions stay out of the gallery
    engine.dispose()


def test_0003_downgrade_drops_only_study_data(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0001")
    fill_first_revision(engine)
    upgrade(engine)
    with transaction(engine) as s:
        study = studies.create_study(session=s, name="gone", models=["vit-gpt2-all", "nlpconnect-all"],
                                     settings={}, photo_ids=[1])
        caption = studies.save_study_caption(session=s, study=study, photo_id=1, model_key="vit-gpt2-all", text="x")
        studies.rate_study_caption(session=s, study=study, caption_id=caption.id, rater="ann", stars={"overall": 4})
    downgrade(engine, "0002")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM captions")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM ratings")).scalar() == 3
    upgrade(engine)
    engine.dispose()


def test_0007_widens_raters_to_identities_and_keeps_every_rating(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0001")
    fill_first_revision(engine)
    upgrade(engine, "0005_owners")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    long_rater = "r" * 200 + "@example.org"
    with transaction(engine) as s:
        assert [(r.caption_id, r.rater, r.stars) for r in s.scalars(select(Rating).order_by(Rating.id))] == [
            (1, "ann", 5), (1, "bob", 2), (3, "ann", 4)]
        repo.rate(session=s, caption_id=3, rater=long_rater, stars=3)
    columns = {t: {c["name"]: c["type"] for c in inspect(engine).get_columns(t)} for t in ("ratings", "votes")}
    assert columns["ratings"]["rater"].length == columns["votes"]["rater"].length == 254
    with pytest.raises(RuntimeError, match="rater longer than 80"):
        downgrade(engine, "0005_owners")
    assert current_revision(engine) == head_revision()
    with transaction(engine) as s:
        repo.unrate(session=s, caption_id=3, rater=long_rater)
    downgrade(engine, "0005_owners")  # with no long rater left it goes down, keeping the rows
    with transaction(engine, write=False) as s:
        assert s.execute(text("SELECT COUNT(*) FROM ratings")).scalar() == 3
    engine.dispose()


def test_0008_widens_hashtag_set_owners_to_identities_and_keeps_every_set(blank_url):
    """A signed-in person's sets are kept under their identity (up to 254 characters); PostgreSQL refused to
    save one for an address longer than 200."""
    from db import hashtag_sets

    engine = make_engine(blank_url)
    upgrade(engine, "0007_rater_identity")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hashtag_sets (owner, name, tags, created_at, updated_at) "
                          "VALUES ('ana@example.org', 'travel', '#travel', :at, :at)"), dict(at=CREATED))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    long_owner = "o" * 240 + "@example.org"
    with transaction(engine) as s:
        hashtag_sets.save_set(session=s, name="food", tags=["#food"], owner=long_owner)
    with transaction(engine, write=False) as s:
        assert [x.tags for x in hashtag_sets.list_sets(session=s, owner="ana@example.org")] == ["#travel"]
        assert [x.name for x in hashtag_sets.list_sets(session=s, owner=long_owner)] == ["food"]
    assert {c["name"]: c["type"] for c in inspect(engine).get_columns("hashtag_sets")}["owner"].length == 254
    with pytest.raises(RuntimeError, match="owner longer than 200"):
        downgrade(engine, "0007_rater_identity")
    with transaction(engine) as s:
        hashtag_sets.delete_set(session=s, name="food", owner=long_owner)
    downgrade(engine, "0007_rater_identity")
    with transaction(engine, write=False) as s:
        assert s.execute(text("SELECT COUNT(*) FROM hashtag_sets")).scalar() == 1
    engine.dispose()
