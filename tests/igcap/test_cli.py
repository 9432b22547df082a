import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from igcap.cli import main
from igcap.registry import DEFAULT_KEYS
from tests.builders import APPLEDOUBLE, photo_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.jpg").write_bytes(photo_bytes("JPEG", colour="red"))
    (tmp_path / "sub" / "b.png").write_bytes(photo_bytes("PNG", colour="blue"))
    (tmp_path / "notes.txt").write_text("not a photo, and not looked at")
    return tmp_path


def test_caption_a_folder_prints_one_caption_per_photo_per_model(hub_cache, folder, capsys):
    assert main(["caption", str(folder), "--preset", "fast", "--max-new-tokens", "6", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["captions"]
    assert sorted((r["photo"], r["model"]) for r in rows) == sorted(
        (str(folder / p), k) for p in ("a.jpg", "sub/b.png") for k in DEFAULT_KEYS)


def test_unreadable_photo_is_reported_and_the_rest_captioned(hub_cache, folder, capsys):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    code = main(["caption", str(folder), "--models", DEFAULT_KEYS[0], "--preset", "fast", "--max-new-tokens", "4",
                 "--csv"])
    out, err = capsys.readouterr()
    assert code == 1 and "broken.jpg" in err
    assert out.splitlines()[0].startswith("\ufeffphoto,model,variant,caption") and len(out.splitlines()) == 3


def test_hidden_files_in_a_folder_are_skipped_but_a_hidden_file_named_is_read(hub_cache, folder, capsys):
    """A folder copied from a Mac holds ._a.jpg (macOS's AppleDouble file) beside a.jpg: it was reported as
    "not an image" and the command exited 1. Hidden files and folders are skipped; a file named is read."""
    (folder / "._a.jpg").write_bytes(APPLEDOUBLE)
    (folder / "sub" / "._b.png").write_bytes(APPLEDOUBLE)
    (folder / ".thumbnails").mkdir()
    (folder / ".thumbnails" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    args = ["--models", DEFAULT_KEYS[0], "--preset", "fast", "--max-new-tokens", "4", "--csv"]
    assert main(["caption", str(folder), *args]) == 0
    out, err = capsys.readouterr()
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == [str(folder / "a.jpg"), str(folder / "sub" / "b.png")]
    assert err == ""
    assert main(["caption", str(folder / "._a.jpg"), *args]) == 1
    assert "._a.jpg" in capsys.readouterr().err


def test_every_photo_unreadable_exits_1_and_no_photo_at_all_is_a_usage_error(tmp_path, capsys):
    """Unreadable photos are failures (exit 1, as the README says), not usage errors (2): with every photo
    unreadable the exit status was 2. A folder without image files is a usage error."""
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (tmp_path / "empty").mkdir()
    assert main(["caption", str(tmp_path / "broken.jpg"), "--models", DEFAULT_KEYS[0]]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "broken.jpg" in err and "error: no photo could be read (1 failed)" in err
    _one_line_error(main(["caption", str(tmp_path / "empty"), "--models", DEFAULT_KEYS[0]]),
                    capsys.readouterr().err, "no photo could be read: no image files found")


@pytest.mark.parametrize("args, words", [(["--models", "nope"], "unknown model"),
                                         # no key at all: nothing was captioned and the exit status said success
                                         (["--models", ","], f"--models names no model; known: {DEFAULT_KEYS[0]}"),
                                         (["--models", " "], "--models names no model; known:"),
                                         (["--preset", "loud"], "unknown preset")])
def test_bad_options_give_one_line_errors(hub_cache, folder, capsys, args, words):
    assert main(["caption", str(folder), *args]) == 2
    out, err = capsys.readouterr()
    assert words in err and "Traceback" not in err and out == ""


def test_a_seed_out_of_range_is_one_line_and_the_largest_seed_works(hub_cache, folder, capsys):
    """A seed of 2**64 or more passed the settings and every model failed with a traceback (torch's
    "Overflow when unpacking long long"); the range is one for every seed (a study stores its own in int4)."""
    from igcap.decoding import SEED_MAX

    common = ["caption", str(folder), "--models", DEFAULT_KEYS[0], "--strategy", "sample", "--max-new-tokens", "4"]
    assert main([*common, "--seed", "99999999999999999999999"]) == 2
    _one_line_error(2, capsys.readouterr().err, f"Seed must be a whole number from 0 to {SEED_MAX}")
    assert main([*common, "--seed", str(SEED_MAX), "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)["captions"]) == 2 and "Traceback" not in err


def test_flags_the_strategy_ignores_are_named_in_one_note(hub_cache, folder, capsys):
    """--temperature, --top-k, --num-beams and --seed with greedy decoding changed nothing and said nothing."""
    common = ["caption", str(folder), "--models", DEFAULT_KEYS[0], "--max-new-tokens", "4"]
    assert main([*common, "--preset", "fast"]) == 0
    plain_out, err = capsys.readouterr()
    assert "note" not in err
    assert main([*common, "--preset", "fast", "--temperature", "4.5", "--top-k", "1", "--num-beams", "16",
                 "--seed", "3"]) == 0
    out, err = capsys.readouterr()
    assert out == plain_out
    assert [line for line in err.splitlines() if "note" in line] == [
        "note: greedy decoding (preset fast) ignores --num-beams (used with --strategy beam) "
        "and --temperature, --top-k, --seed (used with --strategy sample)"]
    assert main([*common, "--strategy", "beam", "--temperature", "0.5"]) == 0
    assert "note: beam search ignores --temperature (used with --strategy sample)" in capsys.readouterr().err
    assert main([*common, "--preset", "creative", "--strategy", "greedy", "--num-variants", "3"]) == 0
    assert ("note: greedy decoding ignores --num-variants (used with --strategy beam or --strategy sample)"
            in capsys.readouterr().err)
    assert main([*common, "--strategy", "sample", "--temperature", "0.5", "--seed", "1", "--no-repeat-ngram-size",
                 "2"]) == 0  # every flag used: no note
    assert "note" not in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--top-k", "-1"], "Top-k must be at least 0; beam search does not use --top-k, so leave it out"),
    (["--preset", "fast", "--num-beams", "1"], "Beams must be at least 2 and at most 16; greedy decoding does not"),
    (["--preset", "fast", "--temperature", "nan"], "Temperature must be above 0 and at most 5"),
])
def test_a_value_no_strategy_takes_is_refused_even_where_it_is_ignored(folder, capsys, args, words):
    _one_line_error(main(["caption", str(folder), *args]), capsys.readouterr().err, words)


def test_models_lists_the_registry_with_availability(hub_cache, capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in rows][:4] == list(DEFAULT_KEYS)
    assert all(r["state"] == "cached" and r["available"] for r in rows[:4])


def test_models_warns_of_a_models_dir_that_gives_no_model(hub_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IGCAP_MODELS_DIR", str(tmp_path / "missing"))
    assert main(["models", "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) >= 4  # the JSON stays whole: the warning goes to stderr
    assert captured.err == f"warning: IGCAP_MODELS_DIR={tmp_path / 'missing'} does not exist; every model comes from its usual source\n"


def test_help_is_fast_and_lists_commands():
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "igcap", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "caption" in out.stdout and "models" in out.stdout
    assert "torch" not in {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()}


HOSTILE_NAMES = ["=HYPERLINK(1,2).jpg", "+cmd.jpg", "@SUM(A1).jpg", "-2+3.jpg", "\x1b[31mred\x1b[0m.jpg"]


@pytest.fixture
def hostile_folder(tmp_path):
    for i, name in enumerate(HOSTILE_NAMES):
        (tmp_path / name).write_bytes(photo_bytes("JPEG", colour=["red", "blue", "green", "white", "black"][i]))
    return tmp_path


def test_caption_csv_neutralises_formula_file_names(hub_cache, hostile_folder, capsys, monkeypatch):
    """Issue 12 item 7: `caption --csv` wrote =HYPERLINK(…).jpg as a live formula cell."""
    import csv
    import io

    from db.export import FORMULA_STARTS, restore_cell

    monkeypatch.chdir(hostile_folder)  # "." lists the files by their bare names: the path as given
    assert main(["caption", ".", "--models", DEFAULT_KEYS[0], "--preset", "fast",
                 "--max-new-tokens", "4", "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\ufeffphoto,") and "\r\n" in out  # Excel-safe like the app's exports: BOM, CRLF
    rows = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff"))))
    assert sorted(restore_cell(r["photo"]) for r in rows) == sorted(HOSTILE_NAMES)
    cells = [v for r in rows for v in r.values()]
    assert not [c for c in cells if c.lstrip().startswith(FORMULA_STARTS)]


def test_caption_text_mode_escapes_control_characters(hub_cache, hostile_folder, capsys):
    """Issue 12 item 7: text mode printed the ANSI escape sequences in file names as they are."""
    (hostile_folder / "broken\x1b]0;pwned\x07.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    assert main(["caption", str(hostile_folder), "--models", DEFAULT_KEYS[0], "--preset", "fast",
                 "--max-new-tokens", "4"]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out and "\x1b" not in err and "\x07" not in err
    assert "\\x1b[31mred\\x1b[0m.jpg\t" in out and "broken\\x1b]0;pwned\\x07.jpg" in err
    assert all(len(line.split("\t")) == 3 for line in out.splitlines())


def test_caption_streams_a_folder_in_batches_keeping_the_order(hub_cache, tmp_path, capsys, monkeypatch):
    """Issue 12 item 1: the CLI held every decoded photo of the folder at once (48 × 12 MP: 4.3 GiB)."""
    import weakref

    import igcap.images

    names = [f"p{i}.jpg" for i in range(7)]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(photo_bytes("JPEG", size=(2000 + i, 1500)))  # decoded at 1080 px
    alive, peak, real = [0], [0], igcap.images.load_photo_file

    def probe(path, **kwargs):
        photo = real(path, **kwargs)
        alive[0] += 1
        peak[0] = max(peak[0], alive[0])
        weakref.finalize(photo.image, lambda: alive.__setitem__(0, alive[0] - 1))
        return photo

    monkeypatch.setattr(igcap.images, "load_photo_file", probe)
    keys = list(DEFAULT_KEYS[:2])
    assert main(["caption", str(tmp_path), "--models", ",".join(keys), "--preset", "fast", "--max-new-tokens", "4",
                 "--batch-size", "2", "--csv"]) == 0
    rows = [line.split(",")[:2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [[str(tmp_path / name), key] for key in keys for name in names]  # model by model, file order
    assert peak[0] <= 2, f"{peak[0]} decoded photos alive at once with --batch-size 2"


def test_caption_rows_flag_each_instagram_limit(capsys):
    """JSON and CSV carry over_limit fields per limit; text mode warns on stderr (6 hashtags > Instagram's 5)."""
    import argparse
    import csv
    import io

    from igcap.captioner import CaptionResult, ModelRun
    from igcap.cli.caption import Writer
    from igcap.instagram import DEFAULT_LIMITS

    six = "Beach day #a #b #c #d #e #f"
    run = ModelRun("m", (CaptionResult("m", 0, 0, six, six, 9, 0.1, True),
                         CaptionResult("m", 0, 1, "Beach day #a #b #c #d #e", "", 8, 0.1, True)))
    for mode in ("json", "csv", "text"):
        writer = Writer(argparse.Namespace(json=mode == "json", csv=mode == "csv"), DEFAULT_LIMITS)
        writer.model_done(run, ["beach.jpg"])
        writer.close()
        out, err = capsys.readouterr()
        assert "6 hashtags; Instagram allows 5" in err and err.count("warning:") == 1
        if mode == "json":
            rows = json.loads(out)["captions"]
        elif mode == "csv":
            rows = [{k: v == "True" if k.startswith("over_") else v for k, v in row.items()}
                    for row in csv.DictReader(io.StringIO(out))]
        else:
            continue
        assert [(r["over_limit_hashtags"], r["over_limit_chars"]) for r in rows] == [(True, False), (False, False)]
        assert [int(r["hashtags"]) for r in rows] == [6, 5]
        assert [(int(r["mentions"]), r["over_limit_mentions"]) for r in rows] == [(0, False), (0, False)]


def test_caption_limits_follow_the_environment(hub_cache, folder, capsys, monkeypatch):
    monkeypatch.setenv("IGCAP_INSTAGRAM_MAX_CHARS", "1")  # every caption of 2+ characters is over
    assert main(["caption", str(folder / "a.jpg"), "--models", DEFAULT_KEYS[0], "--preset", "fast",
                 "--max-new-tokens", "6", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["captions"]
    assert row["over_limit_chars"] == (len(row["caption"]) > 1) and row["over_limit_hashtags"] is False


def test_hashtag_sets_from_the_command_line(tmp_path, capsys):
    db = ["--database", f"sqlite:///{tmp_path / 'sets.sqlite3'}"]
    assert main(["hashtags", "add", "travel", "#travel", "wanderlust,", "#roadtrip", *db]) == 0
    assert main(["hashtags", "add", "Food", "#foodie #yum", *db]) == 0
    capsys.readouterr()
    assert main(["hashtags", "--json", *db]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "food", "tags": ["#foodie", "#yum"]},
                                                   {"name": "travel", "tags": ["#travel", "#wanderlust", "#roadtrip"]}]
    assert main(["hashtags", "remove", "FOOD", *db]) == 0
    assert main(["hashtags", "remove", "food", *db]) == 2
    assert main(["hashtags", "add", "bad", "good-vibes", *db]) == 2
    err = capsys.readouterr().err
    assert "no hashtag set called 'food'" in err and "not a hashtag" in err and "Traceback" not in err
    assert main(["hashtags", "list", *db]) == 0
    assert capsys.readouterr().out.split() == ["travel", "#travel", "#wanderlust", "#roadtrip"]


def test_caption_adds_a_hashtag_set_within_the_limit(hub_cache, folder, tmp_path, capsys):
    db = ["--database", f"sqlite:///{tmp_path / 'sets.sqlite3'}"]
    assert main(["hashtags", "add", "many", "#a #b #c #d #e #f #g", *db]) == 0
    capsys.readouterr()
    args = ["caption", str(folder / "a.jpg"), "--models", DEFAULT_KEYS[0], "--preset", "fast", "--max-new-tokens", "4"]
    assert main([*args, "--hashtags", "many", "--json", *db]) == 0
    out, err = capsys.readouterr()
    [row] = json.loads(out)["captions"]
    assert row["hashtags"] == 5 and not row["over_limit_hashtags"]  # the tiny model writes no hashtags itself
    assert row["caption"].endswith("#a #b #c #d #e") and "Left out #f #g" in err
    assert main([*args, "--hashtags", "nope", *db]) == 2
    assert "no hashtag set called 'nope' (saved sets: many" in capsys.readouterr().err


def test_length_presets_set_the_token_limits(hub_cache, folder, capsys):
    import argparse

    from igcap.cli.caption import decoding_settings

    def settings(*flags):
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        from igcap.cli import caption

        caption.add_parser(sub)
        return decoding_settings(parser.parse_args(["caption", "x.jpg", *flags]))

    assert (settings("--length", "short").max_new_tokens, settings("--length", "long").min_new_tokens) == (16, 24)
    assert settings("--length", "long", "--max-new-tokens", "40").max_new_tokens == 40
    args = ["caption", str(folder / "a.jpg"), "--models", DEFAULT_KEYS[0], "--preset", "fast", "--json"]
    assert main([*args, "--length", "short", "--min-new-tokens", "16"]) == 0
    [row] = json.loads(capsys.readouterr().out)["captions"]
    assert row["tokens"] == 16  # exactly the short preset's limit when the model may not stop sooner


def test_start_with_and_emoji_from_the_command_line(hub_cache, folder, capsys):
    args = ["caption", str(folder / "a.jpg"), "--models", DEFAULT_KEYS[0], "--preset", "fast", "--json",
            "--max-new-tokens", "6"]
    assert main([*args, "--start-with", "Sunset 🌅 at", "--max-emoji", "1"]) == 0
    [row] = json.loads(capsys.readouterr().out)["captions"]
    assert row["caption"].startswith("Sunset 🌅 at") and row["caption"].count("🌅") == 1
    assert main([*args, "--max-emoji", "-1"]) == 2
    assert "Emoji" in capsys.readouterr().err


def test_caption_rows_carry_the_path_as_given(hub_cache, tmp_path, capsys, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "IMG_0001.JPG").write_bytes(photo_bytes("JPEG", colour="red"))
    (tmp_path / "b" / "IMG_0001.JPG").write_bytes(photo_bytes("JPEG", colour="blue"))
    monkeypatch.chdir(tmp_path)
    assert main(["caption", "a/IMG_0001.JPG", "b", "--models", DEFAULT_KEYS[0], "--preset", "fast",
                 "--max-new-tokens", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["captions"]
    assert sorted(r["photo"] for r in rows) == ["a/IMG_0001.JPG", "b/IMG_0001.JPG"]


def test_sizes_are_said_in_mib():
    from igcap.images import PhotoError, load_photo

    with pytest.raises(PhotoError) as err:
        load_photo(b"x" * (3 * 1024 * 1024), "big.jpg", max_bytes=2 * 1024 * 1024)
    assert "3.0 MiB" in err.value.message and "2.0 MiB" in err.value.message


@pytest.mark.parametrize("env, words", [({"IGCAP_THREADS": "abc"}, "IGCAP_THREADS"),
                                        ({"IGCAP_MODELS_FILE": "models = 3"}, "models.toml: models must be")])
def test_a_bad_setting_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, env, words):
    for name, value in env.items():
        if name == "IGCAP_MODELS_FILE":
            (tmp_path / "models.toml").write_text(value)
            value = str(tmp_path / "models.toml")
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IGCAP_DATA_DIR", str(tmp_path))
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert words in err


def _one_line_error(code, err, words):
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert words in err


@pytest.mark.parametrize("problem, words", [
    ("read-only", "is read-only"),  # db.engine's own error: its message
    ("integrity", "the database refused this (IntegrityError"),  # e.g. a study deleted by another run meanwhile
])
def test_a_database_error_in_a_study_command_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, problem, words):
    """Only opening the database was caught: a read-only file, a busy lock held past the timeout or a study
    deleted by another run meanwhile ended `study create/generate/delete/list/export` with a traceback."""
    from sqlalchemy.exc import IntegrityError

    from db import studies
    from db.engine import DatabaseReadOnlyError

    def fail(**kwargs):
        raise (DatabaseReadOnlyError("the SQLite file x.db is read-only: make it writable") if problem == "read-only"
               else IntegrityError("INSERT INTO captions …", {}, Exception("FOREIGN KEY constraint failed")))

    url = f"sqlite:///{tmp_path / 'igcap.sqlite3'}"
    assert main(["hashtags", "add", "travel", "#travel", "--database", url]) == 0  # makes the database
    monkeypatch.setattr(studies, "list_studies", fail)
    code = main(["study", "list", "--database", url])
    _one_line_error(code, capsys.readouterr().err, words)


def test_hash_password_without_a_terminal_or_with_undecodable_input_is_one_line(monkeypatch, capsys):
    import getpass
    import io

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": (_ for _ in ()).throw(EOFError()))
    _one_line_error(main(["hash-password"]), capsys.readouterr().err, "--stdin")
    monkeypatch.setattr("sys.stdin", io.StringIO("\udcff\udcfepassword123\n"))  # bytes not valid UTF-8
    _one_line_error(main(["hash-password", "--stdin"]), capsys.readouterr().err, "not valid text")


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path):
    """`igcap … | head -1`: the rest of the output had nowhere to go and Python printed a BrokenPipeError
    traceback. Now the command stops quietly, with the shell's status for it (141)."""
    code = ("import sys, igcap.cli.models as m\n"
            "def run(args):\n    for _ in range(100000):\n        print('x' * 80)\n    return 0\n"
            "m.run = run\nfrom igcap.cli import main\nsys.exit(main(['models']))\n")
    script = tmp_path / "pipe.py"
    script.write_text(code)
    out = subprocess.run(f"{sys.executable} {script} | head -1", shell=True, capture_output=True, text=True,
                         cwd=str(ROOT), timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout == "x" * 80 + "\n"
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, out.stderr


@pytest.mark.parametrize("command", [["export", "--out", "{out}"], ["study", "list"], ["study", "export", "s", "--votes", "{out}"],
                                     ["leaderboard", "--study", "s"], ["hashtags", "list"]])
def test_a_mistyped_database_path_is_refused_and_not_made(tmp_path, capsys, command):
    """A --database (or DATABASE_URL) SQLite file that does not exist was made, empty, and `export` said
    "wrote 0 captions", `study list` "no studies yet": a typo looked like lost data."""
    typo = tmp_path / "no-such-dir" / "igcap.sqlit3"
    args = [a.replace("{out}", str(tmp_path / "out.csv")) for a in command]
    _one_line_error(main([*args, "--database", f"sqlite:///{typo}"]), capsys.readouterr().err, f"no database at {typo}")
    assert not typo.parent.exists() and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("argv, words", [
    (["evaluate", "--model", "m", "--data", ".", "--batch-size", "0"], "--batch-size: must be 1 or more, got 0"),
    (["evaluate", "--model", "m", "--data", ".", "--limit", "-2"], "--limit: must be 1 or more"),
    (["evaluate", "--model", "m", "--data", ".", "--max-caption-tokens", "x"], "not a whole number: 'x'"),
    (["leaderboard", "--votes", "v.csv", "--bootstrap", "-1"], "--bootstrap: must be 0 or more"),
])
def test_numbers_out_of_range_are_usage_errors_not_tracebacks(argv, words, capsys):
    # evaluate --batch-size 0 ended in a ZeroDivisionError traceback
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and words in err and "Traceback" not in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_gpu_asked_for_where_there_is_none_is_one_configuration_error(hub_cache, folder, capsys, monkeypatch, how):
    """`--device cuda` (or IGCAP_DEVICE=cuda) on a host without a GPU printed a traceback per model, each
    reported as "Captioning failed … the Models page shows this model's state", and exited 1: a setting that
    cannot work is one line and exit 2, before any model is loaded."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["caption", str(folder), "--preset", "fast", "--max-new-tokens", "4"]
    if how == "flag":
        args += ["--device", "cuda"]
    else:
        monkeypatch.setenv("IGCAP_DEVICE", "cuda")
    code = main(args)
    out, err = capsys.readouterr()
    _one_line_error(code, err, "--device cuda, but this host has no cuda device" if how == "flag"
                    else "IGCAP_DEVICE=cuda but no CUDA GPU is available")
    assert out == "" and "Models page" not in err



@pytest.mark.parametrize("argv", [["evaluate", "--model", DEFAULT_KEYS[0], "--data", "{data}", "--device", "cuda"],
                                  ["train-bench", "--device", "cuda", "--steps", "1", "--batch-size", "1"]])
def test_other_commands_refuse_a_gpu_that_is_not_there_in_one_line(tmp_path, capsys, monkeypatch, argv):
    """evaluate said "IGCAP_DEVICE=cuda but …" for --device cuda; train-bench built the full-size model and
    ended in torch's "Torch not compiled with CUDA enabled" traceback."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main([a.replace("{data}", str(tmp_path)) for a in argv])
    _one_line_error(code, capsys.readouterr().err, "--device cuda")


@pytest.mark.parametrize("argv, words", [
    (["demo-data", "{file}/sub", "--n", "10"], "cannot write {file}/sub: {file} is a file, not a folder"),
    (["demo-data", "{file}"], "{file} is a file, not a folder"),
    # it said "could not load the base model … offline? pass local folders with --encoder/--decoder"
    (["demo-models", "{file}/sub", "--photos", "10"], "cannot write {file}/sub: {file} is a file, not a folder"),
    (["demo-models", "{file}", "--photos", "10"], "{file} is a file, not a folder"),
])
def test_an_output_folder_that_cannot_be_made_is_one_line_naming_why(tmp_path, capsys, argv, words):
    """demo-data under a file ended in a NotADirectoryError traceback; demo-models blamed the base model."""
    photo = tmp_path / "IMG.JPG"
    photo.write_bytes(b"a photo")
    code = main([a.replace("{file}", str(photo)) for a in argv])
    _one_line_error(code, capsys.readouterr().err, words.replace("{file}", str(photo)))
    assert photo.read_bytes() == b"a photo"


def test_export_under_a_file_names_the_file_not_file_exists(tmp_path, capsys):
    photo = tmp_path / "IMG.JPG"
    photo.write_bytes(b"a photo")
    url = f"sqlite:///{tmp_path / 'igcap.sqlite3'}"
    assert main(["hashtags", "add", "travel", "#travel", "--database", url]) == 0  # makes the database
    capsys.readouterr()
    code = main(["export", "--out", str(photo / "x.csv"), "--database", url])
    err = capsys.readouterr().err
    _one_line_error(code, err, f"cannot write {photo / 'x.csv'}: {photo} is a file, not a folder")
    assert "File exists" not in err


@pytest.mark.parametrize("argv, usage, words", [
    (["--bogus"], "usage: igcap [-h]", "unrecognized arguments: --bogus"),  # said "arguments are required: COMMAND"
    ([], "usage: igcap [-h]", "choose a COMMAND"),
    (["caption", "--bogus", "x"], "usage: igcap caption", "unrecognized arguments: --bogus"),  # the top-level usage
    (["models", "extra"], "usage: igcap models", "unrecognized arguments: extra"),
])
def test_usage_errors_name_the_problem_with_the_right_usage(capsys, argv, usage, words):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(usage) and words in err and "required: COMMAND" not in err


def test_training_that_cannot_write_its_output_is_not_called_a_base_model_that_failed_to_load(tmp_path, monkeypatch):
    """`train --out IMG.JPG/x` said "could not load the base model … offline? pass local folders with
    --encoder/--decoder": every OSError was read as from_pretrained's. One from the file system names the path."""
    import errno

    from igcap.cli import CliError
    from igcap.cli.train import run_training

    monkeypatch.chdir(tmp_path)
    Path("IMG.JPG").write_bytes(b"a photo")

    def fail(error):
        def action():
            raise error
        return action

    with pytest.raises(CliError, match="^IMG.JPG/x: IMG.JPG is a file, not a folder$"):
        run_training(fail(NotADirectoryError(errno.ENOTDIR, "Not a directory", "IMG.JPG/x")))
    with pytest.raises(CliError, match="^IMG.JPG: IMG.JPG is a file, not a folder$"):
        run_training(fail(FileExistsError(errno.EEXIST, "File exists", "IMG.JPG")))
    with pytest.raises(CliError, match="^out/model.safetensors: No space left on device$"):
        run_training(fail(OSError(errno.ENOSPC, "No space left on device", "out/model.safetensors")))
    with pytest.raises(CliError, match="could not load the base model: We couldn't connect.*\n  offline?"):
        run_training(fail(OSError("We couldn't connect to 'https://huggingface.co'")))


def test_too_few_demo_photos_is_one_line(tmp_path, capsys):
    """`demo-models --photos 5` ended in write_demo_data's ValueError traceback (demo-data said it in one line)."""
    _one_line_error(main(["demo-models", str(tmp_path / "m"), "--photos", "5"]), capsys.readouterr().err,
                    "--photos: the demo dataset needs at least 10 photos")
    _one_line_error(main(["demo-data", str(tmp_path / "d"), "--n", "5"]), capsys.readouterr().err,
                    "the demo dataset needs at least 10 photos")


def test_every_command_describes_itself_in_plain_text():
    """export, study, leaderboard, loadtest and hash-password showed their module docstring in --help:
    "``python -m igcap export``: the …", markup and all, where the others read "Caption photos. Example: …"."""
    from igcap.cli import build_parser

    for name, command in build_parser().commands.choices.items():
        text = command.description or ""
        assert text[:1].isupper() and "`" not in text and not text.startswith("python -m"), (name, text)

