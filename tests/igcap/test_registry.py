import json
import shutil

import pytest

from igcap.config import ConfigError, Settings, env_key
from igcap.registry import DEFAULT_KEYS, MARKER_FILE, load_registry, spec_from_marker


def registry(tmp_path, **env):
    return load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path), **env}))


def test_defaults_are_the_four_published_models(tmp_path):
    reg = registry(tmp_path)
    assert list(reg) == list(DEFAULT_KEYS)
    assert reg["nlpconnect-all"].source == "Stoneman/IG-caption-generator-nlpconnect-all"
    assert {(s.base, s.strategy) for s in reg.values()} == {
        ("vit-gpt2", "last-block"), ("vit-gpt2", "all"), ("nlpconnect", "last-block"), ("nlpconnect", "all")}
    assert all(s.label and s.description for s in reg.values())


def test_env_override_replaces_a_source_and_adds_a_model(tmp_path):
    reg = registry(tmp_path, IGCAP_MODEL_VIT_GPT2_ALL=str(tmp_path / "w"),
                   IGCAP_MODEL_BASELINE="nlpconnect/vit-gpt2-image-captioning")
    assert env_key("vit-gpt2-all") == "IGCAP_MODEL_VIT_GPT2_ALL"
    assert reg["vit-gpt2-all"].source == str(tmp_path / "w") and reg["vit-gpt2-all"].is_local
    assert reg["baseline"].source == "nlpconnect/vit-gpt2-image-captioning" and not reg["baseline"].is_local


def test_models_dir_is_used_for_keys_it_holds(tmp_path):
    (tmp_path / "m" / "nlpconnect-all").mkdir(parents=True)
    (tmp_path / "m" / "nlpconnect-all" / "config.json").write_text("{}")
    reg = registry(tmp_path, IGCAP_MODELS_DIR=str(tmp_path / "m"))
    assert reg["nlpconnect-all"].source == str(tmp_path / "m" / "nlpconnect-all")
    assert reg["vit-gpt2-all"].source.startswith("Stoneman/")


def test_models_file_overrides_and_adds(tmp_path):
    f = tmp_path / "models.toml"
    f.write_text('[models.vit-gpt2-all]\nrevision = "v2"\n\n[models.baseline]\nlabel = "Untuned baseline"\n'
                 'source = "nlpconnect/vit-gpt2-image-captioning"\nbase = "nlpconnect"\n')
    reg = registry(tmp_path, IGCAP_MODELS_FILE=str(f))
    assert reg["vit-gpt2-all"].revision == "v2"
    assert reg["baseline"].label == "Untuned baseline" and reg["baseline"].base == "nlpconnect"


@pytest.mark.parametrize("text, words", [("[models.new]\nlabel = 'x'\n", "needs a source"),
                                         ("[models.vit-gpt2-all]\ncolour = 1\n", "unknown fields"),
                                         ("[models", "could not be read"),
                                         ("models = 3\n", "one table per model"),
                                         ('[models]\nbaseline = "nlpconnect/vit-gpt2-image-captioning"\n',
                                          "models.baseline must be a table"),
                                         ("[models.vit-gpt2-all]\nlabel = 7\n", "every other field a string"),
                                         ("[models.vit-gpt2-all]\ndemo = 'yes'\n", "demo must be true or false"),
                                         ("[models.vit-gpt2-all]\nlabel = 'Caf\u00e9'\n".encode("latin-1"),
                                          "not UTF-8")])
def test_bad_models_file_says_what_is_wrong(tmp_path, text, words):
    """Each one a ConfigError naming the problem; a Latin-1 file, `models = 3` and a string where a table
    belongs used to escape as UnicodeDecodeError, AttributeError and a misleading "unknown fields"."""
    f = tmp_path / "models.toml"
    f.write_bytes(text) if isinstance(text, bytes) else f.write_text(text)
    with pytest.raises(ConfigError, match=words):
        registry(tmp_path, IGCAP_MODELS_FILE=str(f))


def test_demo_models_are_found_and_labelled(tmp_path):
    folder = tmp_path / "demo-models" / "vit-gpt2-all"
    folder.mkdir(parents=True)
    (folder / MARKER_FILE).write_text(json.dumps({"key": "vit-gpt2-all", "label": "ViT-GPT2 · all", "demo": True,
                                                   "base": "vit-gpt2", "strategy": "all"}))
    spec = registry(tmp_path)["demo-vit-gpt2-all"]
    assert spec.demo and "synthetic" in spec.label and spec.source == str(folder.resolve())


@pytest.mark.parametrize("env, words", [({"IGCAP_DEVICE": "tpu"}, "IGCAP_DEVICE"),
                                        ({"IGCAP_MAX_LOADED_MODELS": "many"}, "whole number"),
                                        ({"IGCAP_QUANTIZE": "maybe"}, "IGCAP_QUANTIZE")])
def test_bad_settings_name_the_key(env, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_env(env)


def test_an_override_pointing_at_a_demo_model_keeps_its_demo_label(tmp_path):
    folder = tmp_path / "shapes"
    folder.mkdir()
    (folder / MARKER_FILE).write_text(json.dumps({"key": "shapes", "label": "Shapes", "demo": True}))
    reg = registry(tmp_path, IGCAP_MODEL_SHAPES=str(folder), IGCAP_MODEL_VIT_GPT2_ALL=str(folder))
    assert reg["shapes"].demo and "synthetic" in reg["shapes"].label and reg["shapes"].key == "shapes"
    assert reg["vit-gpt2-all"].demo and "synthetic" in reg["vit-gpt2-all"].label
    assert reg["vit-gpt2-all"].source == str(folder.resolve())


def test_two_models_under_one_label_are_told_apart_by_their_keys(tmp_path):
    f = tmp_path / "models.toml"
    f.write_text('[models.baseline]\nlabel = "ViT-GPT2 · all parameters"\nsource = "nlpconnect/vit-gpt2-image-captioning"\n')
    reg = registry(tmp_path, IGCAP_MODELS_FILE=str(f))
    labels = [spec.label for spec in reg.values()]
    assert len(set(labels)) == len(labels)
    assert reg["baseline"].label == "ViT-GPT2 · all parameters (baseline)"
    assert reg["vit-gpt2-all"].label == "ViT-GPT2 · all parameters (vit-gpt2-all)"
    assert reg["vit-gpt2-last-block"].label == "ViT-GPT2 · last block"  # unique labels stay as they are


LONG_KEY = "k" * 65  # db.models.MODEL_KEY_LENGTH + 1: generation worked, every save failed


@pytest.mark.parametrize("text, words", [
    (f"[models.{LONG_KEY}]\nsource = 'org/name'\n", r"\[models\.k+\].*1 to 64 characters"),
    ("[models.manual]\nsource = 'org/name'\n", r"\[models\.manual\].*reserved for captions written by hand"),
    ("[models.Manual]\nsource = 'org/name'\n", "reserved"),
    ("[models.vit-gpt2-all]\nbase = 'vitgpt2'\n", r"base 'vitgpt2' is not one of vit-gpt2, nlpconnect"),
    ("[models.new]\nsource = 'org/name'\nbase = 'gpt'\n", "base 'gpt' is not one of"),
    ("[models.vit-gpt2-all]\nsource = ''\n", "source is empty"),
    ("[models.new]\nsource = '  '\n", "source is empty"),
    ("[models.new]\nsource = 'org/name'\nlabel = ''\n", "label is empty"),
    ("[models.vit-gpt2-all]\nrevision = ''\n", "revision is empty"),
    ('[models." padded "]\nsource = "org/name"\n', "spaces"),
    ("[model.vit-gpt2-all]\nrevision = 'v2'\n", r"unknown top-level \['model'\].*\[models\.<key>\]"),
    ("title = 'mine'\n[models.new]\nsource = 'org/name'\n", r"unknown top-level \['title'\]"),
])
def test_a_models_file_value_that_would_break_later_is_refused(tmp_path, text, words):
    """Each of these loaded: a 65-character key generated captions that no save could store, `manual` took
    over hand-written captions' label and statistics, an unknown base fell back to vit-gpt2's tokenizer, an
    empty source meant the current folder, and a misspelt [model.x] table was ignored."""
    f = tmp_path / "models.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=words) as err:
        registry(tmp_path, IGCAP_MODELS_FILE=str(f))
    assert str(f) in str(err.value)


@pytest.mark.parametrize("variable, words", [("IGCAP_MODEL_MANUAL", "IGCAP_MODEL_MANUAL.*reserved"),
                                             ("IGCAP_MODEL_" + "K" * 65, "IGCAP_MODEL_K+: .*1 to 64 characters"),
                                             ("IGCAP_MODEL_", "IGCAP_MODEL_: .*1 to 64 characters")])
def test_a_model_variable_whose_key_would_break_later_is_refused(tmp_path, variable, words):
    with pytest.raises(ConfigError, match=words):
        registry(tmp_path, **{variable: "org/name"})


def test_the_key_limits_are_the_databases(tmp_path):
    from db.models import MANUAL, MODEL_KEY_LENGTH, Caption

    assert Caption.__table__.c.model_key.type.length == MODEL_KEY_LENGTH
    longest = "k" * MODEL_KEY_LENGTH
    assert longest in registry(tmp_path, **{env_key(longest): "org/name"})
    with pytest.raises(ConfigError, match="reserved"):
        registry(tmp_path, **{env_key(MANUAL): "org/name"})


@pytest.mark.parametrize("meta, words", [({"key": "manual"}, "reserved"), ({"key": LONG_KEY}, "1 to 64 characters"),
                                         ({"key": "k" * 60, "demo": True}, "1 to 64 characters, and 'demo-k+'")])
def test_a_marker_whose_key_would_break_later_is_refused(tmp_path, meta, words, caplog):
    folder = tmp_path / "demo-models" / "trained"
    folder.mkdir(parents=True)
    (folder / MARKER_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=words) as err:
        spec_from_marker(folder)
    assert str(folder / MARKER_FILE) in str(err.value)
    good = tmp_path / "demo-models" / "good"
    good.mkdir()
    (good / MARKER_FILE).write_text(json.dumps({"key": "good", "demo": True}))
    found = registry(tmp_path)  # one odd demo folder stopped every model, page and command: it is skipped
    assert "demo-good" in found and not any(spec.source == str(folder.resolve()) for spec in found.values())
    assert any(str(folder) in record.getMessage() for record in caplog.records)
    shutil.move(folder, tmp_path / "mine")  # a variable pointing at it names the model itself: its own key is unused
    assert registry(tmp_path, IGCAP_MODEL_MINE=str(tmp_path / "mine"))["mine"].source == str((tmp_path / "mine").resolve())


@pytest.mark.parametrize("source, local", [
    ("Stoneman/IG-caption-generator-vit-gpt2-all", False), ("nlpconnect/vit-gpt2-image-captioning", False),
    ("gpt2", False), ("org/name.v2", False),
    ("models/vit-gpt2-all", True),  # models/ is here: the folder meant, though vit-gpt2-all is not there yet
    ("downloads/models/vit-gpt2-all", True), ("./vit-gpt2-all", True), ("../elsewhere", True), ("~/models/x", True),
    ("/srv/models/x", True), ("models\\vit-gpt2-all", True), ("C:\\models\\x", True), ("my models/x", True),
])
def test_a_source_that_looks_like_a_path_is_a_folder_whatever_exists(tmp_path, monkeypatch, source, local):
    """A relative path counted as a folder only once it existed: `models/vit-gpt2-all`, the very value the
    error hint recommends, was looked up on the hub while missing. Hub ids are org/name, one slash."""
    from igcap.registry import source_is_local

    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    assert source_is_local(source) is local
    spec = registry(tmp_path, IGCAP_MODEL_VIT_GPT2_ALL=source)["vit-gpt2-all"]
    assert spec.is_local is local


def test_a_published_models_hub_id_stays_on_the_hub_beside_a_folder_of_its_owners_name(tmp_path, monkeypatch):
    (tmp_path / "Stoneman").mkdir()
    monkeypatch.chdir(tmp_path)
    assert not any(spec.is_local for spec in registry(tmp_path).values())
    f = tmp_path / "models.toml"
    f.write_text('[models.vit-gpt2-all]\nsource = "Stoneman/elsewhere"\n')
    assert registry(tmp_path, IGCAP_MODELS_FILE=str(f))["vit-gpt2-all"].is_local  # one a person typed is a folder


def test_a_models_dir_that_gives_no_model_is_named_and_why(tmp_path, monkeypatch):
    """IGCAP_MODELS_DIR pointing at no folder, or at one without <key>/config.json, was ignored in silence:
    every model went to the hub."""
    from igcap.registry import models_dir_problem

    monkeypatch.chdir(tmp_path)
    settings = lambda folder: Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path), "IGCAP_MODELS_DIR": folder})  # noqa: E731
    assert models_dir_problem(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path)})) is None
    assert models_dir_problem(settings("modles")) == (
        f"IGCAP_MODELS_DIR=modles (relative to {tmp_path}) does not exist; every model comes from its usual source")
    (tmp_path / "file").write_text("")
    assert "is not a folder" in models_dir_problem(settings(str(tmp_path / "file")))
    (tmp_path / "models" / "vit-gpt2-all" / "snapshots").mkdir(parents=True)
    problem = models_dir_problem(settings("models"))
    assert "holds no model: vit-gpt2-all has no config.json" in problem
    assert "expected vit-gpt2-last-block/config.json, vit-gpt2-all/config.json" in problem
    (tmp_path / "models" / "nlpconnect-all").mkdir()
    (tmp_path / "models" / "nlpconnect-all" / "config.json").write_text("{}")
    assert models_dir_problem(settings("models")) == (
        f"IGCAP_MODELS_DIR=models (relative to {tmp_path}): vit-gpt2-all has no config.json, so it is not used")
    (tmp_path / "models" / "vit-gpt2-all" / "config.json").write_text("{}")
    assert models_dir_problem(settings("models")) is None
