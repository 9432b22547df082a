"""``python -m igcap leaderboard`` over files written exactly as igcap's exports write them."""

import json

import pytest

from db.export import LONG_COLUMNS, to_csv
from igcap.cli import main
from igcap.leaderboard import VoteRow, compute_leaderboard
from tests.igcap import leaderboard_sim as sim

VOTE_COLUMNS = ["vote_id", "voted_utc", "photo_sha256", "model_a", "model_b", "caption_a_id", "caption_b_id",
                "winner", "rater", "study"]


def _rating_records(ratings, captions):
    text = {(c.photo, c.model): c.text for c in captions}
    return [{"rating_id": i, "rated_utc": "2026-11-30 10:00:00", "caption_id": r.caption_id,
             "photo_name": f"{r.photo}.jpg", "photo_sha256": r.photo, "model_key": r.model, "model_label": r.model,
             "caption": text[(r.photo, r.model)], "rater": r.rater, "criterion": r.criterion, "stars": r.stars,
             "comment": "", "study": "sim"} for i, r in enumerate(ratings, 1)]


def _vote_records(votes):
    return [{"vote_id": i, "voted_utc": "2026-11-30 10:00:00", "photo_sha256": v.photo, "model_a": v.model_a,
             "model_b": v.model_b, "caption_a_id": 1, "caption_b_id": 2, "winner": v.winner, "rater": v.rater,
             "study": "sim"} for i, v in enumerate(votes, 1)]


@pytest.fixture
def study(tmp_path):
    ratings, votes, captions = sim.simulate(5, photos=20, tie_share=0.1, both_bad_share=0.05)
    ratings_csv, votes_csv = tmp_path / "ratings.csv", tmp_path / "votes.csv"
    ratings_csv.write_bytes(to_csv(_rating_records(ratings, captions), LONG_COLUMNS))
    votes_csv.write_bytes(to_csv(_vote_records(votes), VOTE_COLUMNS))
    return ratings_csv, votes_csv, (ratings, votes, captions)


def test_leaderboard_from_exported_files_prints_a_table_and_writes_the_json(study, tmp_path, capsys):
    ratings_csv, votes_csv, rows = study
    out_json = tmp_path / "board.json"
    code = main(["leaderboard", "--ratings", str(ratings_csv), "--votes", str(votes_csv), "--bootstrap", "200",
                 "--seed", "3", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0
    assert "ranked by Bradley–Terry score" in out and "Krippendorff" in out and "Win rate" in out
    assert all(model in out for model in sim.MODELS) and "same caption" in out
    written = json.loads(out_json.read_text(encoding="utf-8"))
    # The files carry exactly the rows: the figures equal those computed from the rows themselves.
    assert written == json.loads(json.dumps(compute_leaderboard(*rows, bootstrap=200, seed=3).to_json()))


def test_json_dash_prints_only_json(study, capsys):
    ratings_csv, votes_csv, _ = study
    assert main(["leaderboard", "--votes", str(votes_csv), "--bootstrap", "50", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rank_by"] == "bt" and data["models"][0]["ratings"] == 0


def test_neutralised_cells_are_restored_and_names_print_as_plain_text(tmp_path, capsys):
    rows = [{"photo_sha256": f"p{i}", "model_key": "m", "rater": "=cmd|x" if i % 2 else "\x1b[31mred", "criterion":
             "overall", "stars": 3 + i % 2, "caption_id": i, "caption": "-so good", "photo_name": "x.jpg"}
            for i in range(12)]
    path = tmp_path / "r.csv"
    path.write_bytes(to_csv(rows, ["photo_sha256", "model_key", "rater", "criterion", "stars"]))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and b"'=cmd|x" in path.read_bytes()
    assert main(["leaderboard", "--ratings", str(path), "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert "=cmd|x" in out and "'=cmd" not in out
    assert "\x1b" not in out and "?[31mred" in out


@pytest.mark.parametrize("content, words", [
    ("photo_sha256,model_key,rater\r\na,m,ann\r\n", "lacks the column(s) criterion, stars"),
    ("photo_sha256,model_key,rater,criterion,stars\r\na,m,ann,overall,five\r\n", "data row 1: stars must be"),
    ("photo_sha256,model_key,rater,criterion,stars\r\na,m,ann,overall,9\r\n", "data row 1: stars must be"),
])
def test_bad_ratings_files_give_one_line_errors(tmp_path, capsys, content, words):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    assert main(["leaderboard", "--ratings", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and str(path) in err and "Traceback" not in err


def test_bad_votes_file_and_missing_files_give_one_line_errors(tmp_path, capsys):
    path = tmp_path / "votes.csv"
    path.write_text("photo_sha256,model_a,model_b,winner\na,x,y,left\n", encoding="utf-8")
    assert main(["leaderboard", "--votes", str(path)]) == 2
    assert "winner must be one of a, b, tie, both_bad, got 'left'" in capsys.readouterr().err
    assert main(["leaderboard", "--votes", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "latin1.csv").write_bytes("photo_sha256,model_a\n\xe9\n".encode("latin-1"))
    assert main(["leaderboard", "--votes", str(tmp_path / "latin1.csv")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["leaderboard"]) == 2
    assert "--ratings" in capsys.readouterr().err


def test_too_little_data_is_said_honestly(tmp_path, capsys):
    path = tmp_path / "votes.csv"
    path.write_text("photo_sha256,model_a,model_b,winner\np1,x,y,a\np2,x,y,tie\n", encoding="utf-8")
    assert main(["leaderboard", "--votes", str(path), "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert "not ranked: not enough data" in out
    assert "x needs 8 more votes on 6 more photos for its Bradley–Terry score" in out


def test_the_json_file_is_replaced_whole_or_not_at_all(study, tmp_path, capsys, monkeypatch):
    """It was opened for writing (truncated) first: a failure while writing (a full disk) left a truncated file
    in place of the old one. Now it goes through the exports' atomic writer."""
    import os

    ratings_csv, votes_csv, _ = study
    out_json = tmp_path / "board.json"
    out_json.write_text('{"old": true}\n', encoding="utf-8")
    real = os.fdopen

    def full_disk(fd, *args, **kwargs):
        handle = real(fd, *args, **kwargs)

        def write(data):
            raise OSError(28, "No space left on device")

        handle.write = write
        return handle

    monkeypatch.setattr(os, "fdopen", full_disk)
    assert main(["leaderboard", "--votes", str(votes_csv), "--bootstrap", "50", "--json", str(out_json)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert json.loads(out_json.read_text(encoding="utf-8")) == {"old": True}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".board.json")] == []


def test_a_ratings_file_with_a_very_long_caption_is_read(tmp_path, capsys):
    """The csv module refuses a cell over 131,072 characters by default; the exports write any caption."""
    rows = [{"photo_sha256": f"p{i}", "model_key": "m", "rater": "ann", "criterion": "overall", "stars": 4,
             "caption": "long " * 30_000} for i in range(3)]
    path = tmp_path / "r.csv"
    path.write_bytes(to_csv(rows, ["photo_sha256", "model_key", "rater", "criterion", "stars", "caption"]))
    assert main(["leaderboard", "--ratings", str(path), "--bootstrap", "0"]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("content, shown", [
    # a criterion from the file is named in the note that says which criteria the data has
    ("photo_sha256,model_key,rater,criterion,stars\nabc,m1,alice,\x1b[2J\x1b]0;owned\x07evil,4\n",
     "\\x1b[2J\\x1b]0;owned\\x07evil"),
    # a column name from the file is named in the error that says which columns were found
    ("a\x1b[31mRED,b\n1,2\n", "a\\x1b[31mRED"),
])
def test_text_from_a_ratings_file_never_reaches_the_terminal_as_control_characters(tmp_path, capsys, content, shown):
    """An escape sequence in a cell or a column name went to the terminal as it is in the note and in the
    error line (a cleared screen, a changed window title); it is printed as an escape, readable."""
    path = tmp_path / "evil.csv"
    path.write_text(content, encoding="utf-8")
    main(["leaderboard", "--ratings", str(path), "--bootstrap", "0"])
    out, err = capsys.readouterr()
    assert not [ch for ch in out + err if ch not in "\n" and (ord(ch) < 32 or 127 <= ord(ch) < 160)]
    assert shown in err


def test_every_error_line_is_printed_as_plain_text(monkeypatch, capsys):
    """main() is the one place that prints errors: whatever a command's message holds, each of its lines
    reaches the terminal with control characters as escapes."""
    import igcap.cli.leaderboard as command
    from igcap.cli import CliError

    def fail(args):
        raise CliError("first \x1b[2J line\nsecond \x9b31m line")

    monkeypatch.setattr(command, "run", fail)
    assert main(["leaderboard", "--votes", "v.csv"]) == 2
    assert capsys.readouterr().err == "error: first \\x1b[2J line\nsecond \\x9b31m line\n"


def test_without_intervals_the_header_says_ranks_compare_point_estimates(study, capsys):
    """--bootstrap 0 ranks by the point estimates alone; the header said "shared rank = overlapping intervals"
    of intervals it had not computed."""
    _, votes_csv, _ = study
    assert main(["leaderboard", "--votes", str(votes_csv), "--bootstrap", "0"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "overlapping intervals" not in header
    assert "no intervals (--bootstrap 0)" in header and "by the point estimates alone, without uncertainty" in header
    assert main(["leaderboard", "--votes", str(votes_csv), "--bootstrap", "50"]) == 0
    assert "shared rank = overlapping intervals" in capsys.readouterr().out.splitlines()[0]


def test_a_votes_file_of_one_sided_votes_ranks_the_models(tmp_path, capsys):
    """Every vote "a" (A always preferred): the table said "not ranked: not enough data" and each model "no
    interval ... (e.g. only ties)", with arena scores set by the prior."""
    path = tmp_path / "votes.csv"
    path.write_bytes(to_csv(_vote_records([VoteRow(f"p{i}", "A", "B", "a") for i in range(40)]), VOTE_COLUMNS))
    assert main(["leaderboard", "--votes", str(path), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "not ranked" not in out and "only ties" not in out
    assert "a model that won every vote against another, on at least 5 photos, ranks above it" in out
    lines = {line.split()[1]: line for line in out.splitlines() if line[:2] in ("1 ", "2 ")}
    assert lines["A"].startswith("1 ") and "≥ +1.27" in lines["A"] and "≥ 1221" in lines["A"]
    assert lines["B"].startswith("2 ") and "≤ -1.27" in lines["B"] and "≤ 779" in lines["B"]


def test_files_under_a_file_are_named_as_the_problem(study, tmp_path, capsys):
    """"cannot write …: File exists" / "Not a directory" said nothing of the file in the way."""
    _, votes_csv, _ = study
    photo = tmp_path / "IMG.JPG"
    photo.write_bytes(b"a photo")
    assert main(["leaderboard", "--votes", str(votes_csv), "--bootstrap", "0", "--json", str(photo / "b.json")]) == 2
    assert capsys.readouterr().err == f"error: cannot write {photo / 'b.json'}: {photo} is a file, not a folder\n"
    assert main(["leaderboard", "--votes", str(photo / "v.csv")]) == 2
    assert capsys.readouterr().err == f"error: cannot read {photo / 'v.csv'}: {photo} is a file, not a folder\n"
