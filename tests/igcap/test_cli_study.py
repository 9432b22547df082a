"""`python -m igcap study …`: create over a folder, generate (resumable), list, export; one-line errors."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from db import Caption, Photo, make_engine, studies, transaction, upgrade
from db.export import LONG_COLUMNS, VOTE_COLUMNS
from igcap.cli import main
from igcap.registry import DEFAULT_KEYS
from tests.builders import photo_bytes, simulated_study
from tests.db.test_studies import make_study, rate_next, vote_next

MODELS = ",".join(DEFAULT_KEYS[:2])


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    (tmp_path / "photos" / "a.jpg").write_bytes(photo_bytes("JPEG", colour="red"))
    (tmp_path / "photos" / "sub" / "b.png").write_bytes(photo_bytes("PNG", colour="blue"))
    return tmp_path / "photos"


@pytest.fixture
def database(tmp_path):
    """A database that exists (read-only commands refuse a --database file that does not)."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_create_generate_list_and_export_a_study(hub_cache, folder, database, tmp_path, capsys, monkeypatch):
    assert main(["study", "create", "spring", str(folder), "--models", MODELS, "--preset", "fast",
                 "--criteria", "overall,fits-photo", "--k", "2", "--seed", "5", "--database", database]) == 0
    assert "2 photo(s) × 2 model(s), k = 2, seed 5" in capsys.readouterr().out
    assert main(["study", "generate", "spring", "--database", database]) == 0
    out, err = capsys.readouterr()
    assert "wrote 4 caption(s)" in out and "[4/4]" in err
    assert main(["study", "generate", "spring", "--database", database]) == 0  # resume: nothing left
    out = capsys.readouterr().out
    assert "wrote 0 caption(s)" in out and "4 were there already" in out

    engine = make_engine(database)
    with transaction(engine) as s:
        study = studies.get_study(session=s, name="spring")
        caption = studies.next_caption(session=s, study=study, rater="ann")
        studies.rate_study_caption(session=s, study=study, caption_id=caption.id, rater="ann",
                                   stars={"overall": 4, "fits-photo": 2})
        pair = studies.next_pair(session=s, study=study, rater="ann")
        studies.vote(session=s, study=study, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner="b", rater="ann")
    engine.dispose()

    assert main(["study", "list", "--database", database]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("spring\t2 photos\t2 models\t4/4 captions\t2 ratings\t1 votes")
    ratings, votes = tmp_path / "r.csv", tmp_path / "v.csv"
    assert main(["study", "export", "spring", "--ratings", str(ratings), "--votes", str(votes),
                 "--database", database]) == 0
    long = pd.read_csv(ratings, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(long.columns) == LONG_COLUMNS and sorted(long["criterion"]) == ["fits-photo", "overall"]
    assert set(long["study"]) == {"spring"}
    voted = pd.read_csv(votes, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(voted.columns) == VOTE_COLUMNS and list(voted["winner"]) == ["b"]
    # '-' is standard output for both files, the "wrote …" line on standard error (it was appended to the
    # piped CSV, and --votes - made a file named "-")
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert main(["study", "export", "spring", "--votes", "-", "--database", database]) == 0
    out, err = capsys.readouterr()
    assert not (tmp_path / "-").exists() and "wrote 1 votes to -" in err and "wrote" not in out


@pytest.mark.parametrize("args, words", [
    (["create", "x", "{folder}", "--models", "nope"], "unknown model"),
    (["create", "x", "{folder}", "--models", ", "], "--models names no model; known:"),
    (["create", "x", "{folder}", "--k", "0"], "ratings per caption"),
    (["create", "x", "{folder}", "--criteria", "Not OK!"], "criterion"),
    (["generate", "missing"], "no study named"),
    (["export", "missing", "--votes", "v.csv"], "no study named"),
    (["export", "missing"], "--ratings FILE.csv"),
])
def test_bad_input_gives_one_line_errors(hub_cache, folder, database, capsys, args, words):
    args = [a.format(folder=folder) for a in args]
    assert main(["study", *args, "--database", database]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_study_seed_outside_the_seed_range_is_a_usage_error(hub_cache, folder, database, capsys):
    """2**31 was stored on SQLite and refused by PostgreSQL's int4 column with a DataError."""
    base = ["study", "create", "seeded", str(folder), "--models", MODELS, "--database", database]
    for seed in ("2147483648", "-1"):
        with pytest.raises(SystemExit) as stop:
            main([*base, "--seed", seed])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "--seed: must be from 0 to 2147483647" in err and "Traceback" not in err
    assert main([*base, "--seed", "2147483647"]) == 0
    assert "seed 2147483647" in capsys.readouterr().out


def test_a_study_name_is_used_once(hub_cache, folder, database, capsys):
    assert main(["study", "create", "once", str(folder), "--models", MODELS, "--database", database]) == 0
    assert main(["study", "create", "once", str(folder), "--models", MODELS, "--database", database]) == 2
    assert "already exists" in capsys.readouterr().err


def test_generate_prints_photo_names_as_plain_text(hub_cache, folder, database, capsys):
    """The progress lines name each photo as stored (an uploaded file's name, or a path): an escape sequence
    in one reached the terminal as it is."""
    (folder / "red\x1b]0;owned\x07.jpg").write_bytes(photo_bytes("JPEG", colour="green"))
    assert main(["study", "create", "names", str(folder), "--models", DEFAULT_KEYS[0], "--preset", "fast",
                 "--database", database]) == 0
    assert main(["study", "generate", "names", "--database", database]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "red\\x1b]0;owned\\x07.jpg" in err


def test_leaderboard_of_a_study_equals_the_leaderboard_of_its_exported_files(database, tmp_path, capsys):
    import json

    simulated_study(database)
    assert main(["leaderboard", "--study", "sim", "--database", database, "--bootstrap", "200", "--json", "-"]) == 0
    from_db = json.loads(capsys.readouterr().out)
    ratings, votes = tmp_path / "r.csv", tmp_path / "v.csv"
    assert main(["study", "export", "sim", "--ratings", str(ratings), "--votes", str(votes),
                 "--database", database]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--ratings", str(ratings), "--votes", str(votes), "--bootstrap", "200",
                 "--json", "-"]) == 0
    from_files = json.loads(capsys.readouterr().out)
    keep = ("model_key", "ratings", "mean_stars", "mean_stars_ci", "votes", "wins", "losses", "ties", "bt_score",
            "bt_ci", "rank")
    assert [{k: m[k] for k in keep} for m in from_db["models"]] == [{k: m[k] for k in keep}
                                                                    for m in from_files["models"]]
    assert from_db["agreement"] == from_files["agreement"] and from_db["win_rate"] == from_files["win_rate"]
    by_key = {m["model_key"]: m for m in from_db["models"]}
    assert by_key["good"]["mean_stars"] > by_key["fair"]["mean_stars"] > by_key["poor"]["mean_stars"]
    assert (by_key["good"]["ratings"], by_key["good"]["votes"]) == (24, 32)  # 8 photos × 3 raters; 2 pairs × 8 × 2


def with_older_rows(database: str, rows: list[tuple[str, dict]]) -> None:
    """Rows as a database before revision 0009_folded_keys could hold them (one person's judgement stored twice,
    under two spellings): written by raw SQL at 0008, then upgraded, which merges them as it merges any database's
    (each person's latest judgement is kept)."""
    from sqlalchemy import text

    from db.engine import downgrade

    engine = make_engine(database)
    downgrade(engine, "0008_hashtag_owner_identity")
    with engine.begin() as conn:
        for sql, values in rows:
            conn.execute(text(sql), values)
    upgrade(engine)
    engine.dispose()


def _sqlite_time(when) -> str:
    return when.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


RATING_SQL = ("INSERT INTO ratings (caption_id, rater, stars, criterion, rated_text, created_at, updated_at) "
              "VALUES (:caption_id, :rater, :stars, 'overall', :text, :at, :at)")
VOTE_SQL = ("INSERT INTO votes (study_id, photo_id, caption_a_id, caption_b_id, model_a, model_b, text_a, text_b, "
            "winner, rater, created_at) VALUES (:study_id, :photo_id, :a, :b, :model_a, :model_b, :text_a, :text_b, "
            ":winner, :rater, :at)")


def test_older_data_gives_the_same_leaderboard_from_the_database_and_from_its_exported_files(database, tmp_path,
                                                                                               capsys):
    """Rows stored before raters were matched by person: "ANN" beside "ann" on a caption, and bob voting twice
    on one pair. The files were read as they are (two raters, both votes), so `leaderboard --ratings/--votes`
    disagreed with `--study`; since 0009 the database keeps each person's latest judgement alone, and its files
    say the same."""
    from db import Rating, Vote

    simulated_study(database)
    engine = make_engine(database)
    with transaction(engine, write=False) as s:
        rated = s.scalars(select(Rating).where(Rating.rater == "ann").order_by(Rating.id)).first()
        caption = s.get(Caption, rated.caption_id)
        voted = s.scalars(select(Vote).where(Vote.rater == "bob").order_by(Vote.id)).first()
    engine.dispose()
    later = _sqlite_time(datetime.now(UTC) + timedelta(minutes=1))
    with_older_rows(database, [
        (RATING_SQL, dict(caption_id=caption.id, rater="ANN", stars=1 if rated.stars > 1 else 5, text=caption.text,
                          at=later)),
        (VOTE_SQL, dict(study_id=voted.study_id, photo_id=voted.photo_id, a=voted.caption_b_id, b=voted.caption_a_id,
                        model_a=voted.model_b, model_b=voted.model_a, text_a=voted.text_b, text_b=voted.text_a,
                        winner="a" if voted.winner == "a" else "b", rater="Bob", at=later))])
    from_db, from_files = boards_from_database_and_files(database, tmp_path, capsys, bootstrap=100)
    keep = ("model_key", "ratings", "mean_stars", "votes", "wins", "losses", "bt_score")
    assert [{k: m[k] for k in keep} for m in from_files["models"]] == [{k: m[k] for k in keep}
                                                                      for m in from_db["models"]]
    assert from_db["agreement"] == from_files["agreement"]
    assert sorted(r["rater"] for r in from_files["raters"]) == ["ann", "bob", "cy"]
    assert sum(m["ratings"] for m in from_files["models"]) == 8 * 3 * 3


def test_leaderboard_study_errors_are_one_line(database, capsys):
    simulated_study(database)
    assert main(["leaderboard", "--study", "nope", "--database", database]) == 2
    assert "no study named" in capsys.readouterr().err
    assert main(["leaderboard", "--study", "sim", "--votes", "v.csv", "--database", database]) == 2
    assert "either --study or --ratings" in capsys.readouterr().err


def test_delete_says_what_would_go_and_deletes_only_with_yes(database, capsys):
    engine = make_engine(database)
    upgrade(engine)
    make_study(engine, photos=2, models=["m-one", "m-two"], k=1, name="spring")
    rate_next(engine, "ann", name="spring")
    vote_next(engine, "ann", name="spring")

    assert main(["study", "delete", "spring", "--database", database]) == 2
    err = capsys.readouterr().err
    assert "4 caption(s), 1 rating(s), 1 vote(s) and 2 photo(s) that nothing else uses; its 0 other" in err
    assert "nothing was deleted" in err and "--yes" in err
    assert len(err.strip().splitlines()) == 1
    with transaction(engine, write=False) as s:
        assert [st.name for st in studies.list_studies(session=s)] == ["spring"]

    assert main(["study", "delete", "spring", "--yes", "--database", database]) == 0
    assert ("deleted study 'spring' with 4 caption(s), 1 rating(s), 1 vote(s) and 2 photo(s) that nothing else "
            "uses; its 0 other photo(s) stay") in capsys.readouterr().out
    with transaction(engine, write=False) as s:
        assert studies.list_studies(session=s) == []  # its photos had only its captions: nothing shows them
        assert s.query(Caption).count() == 0 and s.query(Photo).count() == 0
    assert main(["study", "delete", "spring", "--yes", "--database", database]) == 2
    assert "no study named 'spring'" in capsys.readouterr().err
    engine.dispose()


def test_a_rating_given_again_counts_from_the_files_as_in_the_database(database, tmp_path, capsys):
    """Older rows: "Ann" and a duplicate "ann" (stored later, changed earlier, 1 star) on one caption; the person
    then rates it again through the app, which updates the row under the first name. The files were read in
    their order (by caption, then id), so the stale 1 star won there; 0009 keeps the latest changed row alone."""
    from db import Rating, studies

    simulated_study(database)
    engine = make_engine(database)
    with transaction(engine) as s:
        first = s.scalars(select(Rating).where(Rating.rater == "ann").order_by(Rating.id)).first()
        first.rater = "Ann"
        caption = s.get(Caption, first.caption_id)
    engine.dispose()
    yesterday = _sqlite_time(datetime.now(UTC) - timedelta(days=1))  # stored before the rule
    with_older_rows(database, [(RATING_SQL, dict(caption_id=caption.id, rater="ann", stars=1, text=caption.text,
                                                 at=yesterday))])
    engine = make_engine(database)
    with transaction(engine) as s:
        study = studies.get_study(session=s, name="sim")
        studies.rate_study_caption(session=s, study=study, caption_id=caption.id, rater="ann", stars={"overall": 5})
    with transaction(engine, write=False) as s:
        mine = s.scalars(select(Rating).where(Rating.caption_id == caption.id, Rating.rater_key == "ann")).all()
        assert [(r.rater, r.stars) for r in mine] == [("Ann", 5)]
    engine.dispose()
    from_db, from_files = boards_from_database_and_files(database, tmp_path, capsys, bootstrap=0)
    assert [(m["model_key"], m["mean_stars"]) for m in from_files["models"]] == [
        (m["model_key"], m["mean_stars"]) for m in from_db["models"]]
    assert from_files["agreement"] == from_db["agreement"] and from_files["raters"] == from_db["raters"]


def boards_from_database_and_files(database, tmp_path, capsys, bootstrap: int) -> tuple[dict, dict]:
    """The study "sim"'s leaderboard JSON from `leaderboard --study`, and from its exported files."""
    import json

    boards = []
    for args in (["--study", "sim", "--database", database],
                 ["--ratings", str(tmp_path / "r.csv"), "--votes", str(tmp_path / "v.csv")]):
        if args[0] == "--ratings":
            assert main(["study", "export", "sim", "--ratings", args[1], "--votes", args[3], "--database", database]) == 0
            capsys.readouterr()
        assert main(["leaderboard", *args, "--bootstrap", str(bootstrap), "--json", "-"]) == 0
        boards.append(json.loads(capsys.readouterr().out))
    return boards[0], boards[1]


def test_export_to_a_path_under_a_file_names_that_file(database, tmp_path, capsys):
    """It said "cannot write the file: File exists": neither which file nor the real problem."""
    engine = make_engine(database)
    make_study(engine, photos=2, models=["m-one", "m-two"], k=1, name="spring")
    engine.dispose()
    photo = tmp_path / "IMG.JPG"
    photo.write_bytes(b"a photo")
    ratings, votes = tmp_path / "r.csv", photo / "v.csv"
    code = main(["study", "export", "spring", "--ratings", str(ratings), "--votes", str(votes), "--database", database])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: cannot write {votes}: {photo} is a file, not a folder\n"
