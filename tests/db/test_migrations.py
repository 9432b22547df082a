"""A database made at the first revision, with rows in it, keeps every row through the upgrades."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

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
    assert {"ix_captions_created_at", "ix_ratings_rater_key"} <= indexes
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
    upgrade(engine)  # on to the head: the ORM maps the newest schema
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


def _at(engine, minute: int):
    """A time for raw SQL: aware on PostgreSQL, SQLAlchemy's naive UTC text on SQLite (so it sorts as the app's)."""
    when = CREATED + timedelta(minutes=minute)
    return when if engine.dialect.name == "postgresql" else when.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


NFD_CAFE = unicodedata.normalize("NFD", "Café in Zürich 📷")
# (id, caption, rater, stars, criterion, updated minute): one person's same judgement stored several times under
# several spellings (before 0009 only the exact spelling was unique); the latest of each is kept by 0009
RATINGS_0008 = [
    (1, 1, "Maya", 5, "overall", 1), (2, 1, "maya ", 2, "overall", 9), (3, 1, "MAYA", 4, "overall", 5),
    (4, 1, "Maya", 4, "relevance", 2), (5, 2, "Émile", 3, "overall", 9), (6, 2, "E\u0301mile", 1, "overall", 3),
    (7, 1, "bob", 3, "overall", 1), (8, 3, "Straße Fan", 5, "overall", 1), (9, 2, "STRASSE FAN", 2, "overall", 1),
]
MERGED_RATINGS = {1, 3, 6}  # Maya's older overall stars on caption 1 and Émile's older ones (decomposed) on 2
# (id, caption A, caption B, winner, rater): Zoë judged the pair twice, the second time with the sides swapped
VOTES_0008 = [(1, 4, 5, "a", "Zoë"), (2, 5, 4, "tie", "zoë"), (3, 4, 5, "b", "bob")]
MERGED_VOTES = {1}


def fill_0008(engine) -> None:
    """Rows as a database at 0008 holds them: non-ASCII and decomposed text, NULLs, a study with votes, and one
    person's duplicate ratings and votes under several spellings (raw SQL: the ORM maps the newest schema)."""
    at = lambda minute: _at(engine, minute)  # noqa: E731
    with engine.begin() as conn:
        run = lambda sql, rows: conn.execute(text(sql), rows)  # noqa: E731
        run("INSERT INTO photos (id, sha256, name, width, height, format, image_jpeg, thumbnail_jpeg, created_at, owner) "
            "VALUES (:id, :sha, :name, 1, 1, 'JPEG', :b, :b, :at, 'local')",
            [dict(id=n, sha=f"{n}" * 64, name=f"p{n}.jpg", b=b"x", at=at(0)) for n in (1, 2)])
        run("INSERT INTO studies (id, name, models, settings, criteria, k, seed, created_at) "
            "VALUES (1, 'old', '[\"m-one\", \"m-two\"]', '{}', '[\"overall\"]', 3, 7, :at)", [dict(at=at(0))])
        captions = [(1, 1, "vit-gpt2-all", NFD_CAFE, "cafe in zurich", None), (2, 1, "manual", "Große Straße", None, None),
                    (3, 2, "nlpconnect-all", "İstanbul by night", "ISTANBUL", None),
                    (4, 2, "m-one", "A said", "A said", 1), (5, 2, "m-two", "B said", "B said", 1)]
        captions += [(n, 1, "bulk", f"Bulk Ünïcode №{n}", None if n % 2 else f"GEN {n}", None) for n in range(10, 1210)]
        run("INSERT INTO captions (id, photo_id, model_key, text, generated_text, favourite, created_at, updated_at, "
            "study_id, author) VALUES (:id, :pid, :key, :text, :gen, false, :at, :at, :study, 'local')",
            [dict(id=c, pid=p, key=k, text=t, gen=g, study=st, at=at(0)) for c, p, k, t, g, st in captions])
        run("INSERT INTO ratings (id, caption_id, rater, stars, criterion, comment, created_at, updated_at, rated_text) "
            "VALUES (:id, :cid, :rater, :stars, :crit, NULL, :created, :updated, NULL)",
            [dict(id=r, cid=c, rater=who, stars=n, crit=crit, created=at(0), updated=at(m))
             for r, c, who, n, crit, m in RATINGS_0008])
        run("INSERT INTO votes (id, study_id, photo_id, caption_a_id, caption_b_id, model_a, model_b, text_a, text_b, "
            "winner, rater, created_at) VALUES (:id, 1, 2, :a, :b, :ma, :mb, 'x', 'y', :w, :rater, :at)",
            [dict(id=v, a=a, b=b, ma=f"m-{'one' if a == 4 else 'two'}", mb=f"m-{'one' if b == 4 else 'two'}", w=w,
                  rater=who, at=at(v)) for v, a, b, w, who in VOTES_0008])
        if engine.dialect.name == "postgresql":
            for table in ("photos", "captions", "ratings", "votes", "studies"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 2000)"))


def test_0009_folds_every_row_once_and_merges_only_one_persons_older_duplicates(blank_url):
    """Captions get their folded search text and ratings and votes their rater's person key, computed by the one
    Python rule for every existing row (in chunks), so search and rater matching give SQLite's answers on
    PostgreSQL too. The new uniqueness (one rating per person, caption and criterion; one judgement per person
    and pair) first merges what it would refuse: only the older rows of one person's same judgement go."""
    from db import Vote
    from db.people import person
    from db.search import caption_search_text

    engine = make_engine(blank_url)
    upgrade(engine, "0008_hashtag_owner_identity")
    fill_0008(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with transaction(engine, write=False) as s:
        captions = s.execute(select(Caption.id, Caption.text, Caption.generated_text, Caption.search_text)
                             .order_by(Caption.id)).all()
        assert len(captions) == 5 + 1200 and captions[0].text == NFD_CAFE  # the text itself is kept as typed
        assert all(key == caption_search_text(t, g) for _, t, g, key in captions)
        ratings = s.execute(select(Rating.id, Rating.rater, Rating.stars, Rating.rater_key).order_by(Rating.id)).all()
        assert [(r.id, r.rater, r.stars) for r in ratings] == [
            (r, who, n) for r, _, who, n, _, _ in RATINGS_0008 if r not in MERGED_RATINGS]
        assert all(r.rater_key == person(r.rater) for r in ratings)
        votes = s.execute(select(Vote.id, Vote.winner, Vote.rater, Vote.rater_key).order_by(Vote.id)).all()
        assert [(v.id, v.winner, v.rater) for v in votes] == [
            (v, w, who) for v, _, _, w, who in VOTES_0008 if v not in MERGED_VOTES]
        assert all(v.rater_key == person(v.rater) for v in votes)
        found = lambda **f: [i.caption.id for i in repo.gallery(session=s, filters=repo.GalleryFilter(**f)).items]  # noqa: E731
        assert found(search="café zürich") == [1] and found(search="STRASSE") == [2]
        assert found(search="gen 1208") == [1208] and found(search="ünïcode №1209") == [1209]
        assert found(rater="strasse fan") == [3, 2] and found(rater="ÉMILE") == [2]
        assert repo.rating_summaries(session=s, caption_ids=[1, 2]) == {1: (2, 2.5), 2: (2, 2.5)}
        assert studies.vote_rows(session=s, study=studies.get_study(session=s, name="old"))[0]["winner"] == "tie"
    with transaction(engine) as s:  # and the upgraded database keeps one rating per person
        assert repo.rate(session=s, caption_id=1, rater=" MAYA", stars=1).id == 2
        assert len(repo.ratings_for_caption(session=s, caption_id=1)) == 3
    engine.dispose()


def test_0009_downgrades_and_upgrades_again_keeping_every_row(blank_url):
    engine = make_engine(blank_url)
    upgrade(engine, "0008_hashtag_owner_identity")
    fill_0008(engine)
    upgrade(engine)
    downgrade(engine, "0008_hashtag_owner_identity")
    assert current_revision(engine) == "0008_hashtag_owner_identity"
    columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in ("captions", "ratings", "votes")}
    assert not {"search_text", "rater_key"} & (columns["captions"] | columns["ratings"] | columns["votes"])
    upgrade(engine)
    with transaction(engine, write=False) as s:
        counts = [s.scalar(text(f"SELECT COUNT(*) FROM {t}")) for t in ("captions", "ratings", "votes")]
        assert counts == [1205, len(RATINGS_0008) - len(MERGED_RATINGS), len(VOTES_0008) - len(MERGED_VOTES)]
        assert [i.caption.id for i in repo.gallery(session=s, filters=repo.GalleryFilter(search="CAFÉ")).items] == [1]
    engine.dispose()
