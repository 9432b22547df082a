import json
import shlex

import pytest

from igcap.config import Settings
from igcap.modelcard import model_card
from igcap.registry import MARKER_FILE, load_registry
from igcap.train import BaseSources, TrainResult, TrainSettings, write_marker


def use_command(card: str) -> str:
    lines = card.splitlines()
    return lines[lines.index("## Use") + 2]


@pytest.mark.parametrize("folder", ["My_Model", "shapes.v2", "vit-gpt2-all", "Café"])
def test_the_cards_use_command_names_the_key_the_registry_gives_the_model(tmp_path, folder):
    """For an output folder My_Model the card said `IGCAP_MODEL_MY_MODEL=… --models My_Model`, but the
    registry keys that variable my-model, so the command it printed answered "unknown model"."""
    out = tmp_path / folder
    out.mkdir()
    settings = TrainSettings(data=tmp_path / "data.csv", out=out)
    write_marker(out, settings)
    (out / "config.json").write_text("{}")
    result = TrainResult(out=out, trainable=1, total=2, splits={"train": 1}, skipped={})
    card = model_card(settings, result, BaseSources(tokenizer="gpt2", processor="vit"), {})
    words = shlex.split(use_command(card))
    variable, source = words[0].split("=", 1)
    key = words[words.index("--models") + 1]
    registry = load_registry(Settings.from_env({"IGCAP_DATA_DIR": str(tmp_path / "data"), variable: source}))
    assert key in registry and registry[key].source == str(out.resolve())
    assert json.loads((out / MARKER_FILE).read_text())["key"] == folder
