"""The Models page: state per model, why a model fails and what to do, loading on demand."""

from streamlit.testing.v1 import AppTest

from tests.pages.conftest import APP, TIMEOUT, no_exceptions, open_page, shown


def test_lists_models_without_loading_them(app):
    at = open_page(app, "models.py")
    no_exceptions(at)
    assert [shown(s.value) for s in at.subheader][:4] == ["ViT-GPT2 · last block", "ViT-GPT2 · all parameters",
                                                    "nlpconnect · last block", "nlpconnect · all parameters"]
    assert any("hf download Stoneman/IG-caption-generator-vit-gpt2-all" in c.value for c in at.code)
    assert any("IGCAP_MODEL_VIT_GPT2_ALL" in c.value for c in at.code)
    from igcap_ui import resources

    assert resources.model_cache().loaded_keys() == []


def test_load_button_loads_one_model(app):
    at = open_page(app, "models.py")
    at.button(key="models.load.vit-gpt2-all").click().run()  # the repo without tokenizer files: fallbacks
    no_exceptions(at)
    from igcap_ui import resources

    assert resources.model_cache().loaded_keys() == ["vit-gpt2-all"]
    assert not at.error


def test_unavailable_model_says_why_and_what_to_do(app_env, monkeypatch):
    monkeypatch.setenv("IGCAP_MODEL_NLPCONNECT_ALL", "/nonexistent")
    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "models.py")
    at.button(key="models.check_all").click().run()
    no_exceptions(at)
    [error] = at.error
    assert "/nonexistent" in shown(error.value) and "IGCAP_MODEL_NLPCONNECT_ALL" in shown(error.value)
    from igcap_ui import resources

    assert len(resources.model_cache().loaded_keys()) == 3


def make_demo_model(folder, tiny_model_dir, key="shapes"):
    import json
    import shutil

    from igcap.registry import MARKER_FILE

    target = folder / key
    shutil.copytree(tiny_model_dir, target)
    (target / MARKER_FILE).write_text(json.dumps({"key": key, "label": key.capitalize(), "demo": True}))
    return f"demo-{key}"


def test_help_fits_the_kind_of_source_and_memory_is_in_real_units(app_env, tiny_model_dir, tmp_path, monkeypatch):
    demo_dir = tmp_path / "demo-models"
    demo_dir.mkdir()
    key = make_demo_model(demo_dir, tiny_model_dir)
    monkeypatch.setenv("IGCAP_DEMO_MODELS_DIR", str(demo_dir))
    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "models.py")
    codes = [c.value for c in at.code]
    assert not any(f"hf download {demo_dir}" in c for c in codes)  # a folder is not a hub id
    assert any(c == "python -m igcap demo-models" for c in codes)
    at.button(key=f"models.load.{key}").click().run()
    no_exceptions(at)
    [memory] = [m.value for m in at.markdown if m.value.startswith("Memory:")]
    assert memory.endswith(("KiB", "MiB")) and " 0 " not in memory and "MB" not in memory
    assert at.metric[0].value.endswith(("KiB", "MiB")) and not at.metric[0].value.startswith("0 ")


def test_check_all_result_is_what_the_create_page_uses(app_env, tmp_path, monkeypatch):
    """A model whose files look fine but do not load: after 'Check all models' the Create page neither
    ticks it nor hides why."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    monkeypatch.setenv("IGCAP_MODEL_NLPCONNECT_ALL", str(broken))
    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "models.py")
    at.button(key="models.check_all").click().run()
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # another session, same server process
    no_exceptions(fresh)
    assert "nlpconnect-all" not in fresh.multiselect(key="create.models").value
    assert any("nlpconnect · all parameters" in w.value and "damaged" in w.value.lower() for w in fresh.warning)


def test_a_models_dir_that_gives_no_model_is_warned_of(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("IGCAP_MODELS_DIR", str(tmp_path / "missing"))
    at = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "models.py")
    no_exceptions(at)
    assert any(f"IGCAP_MODELS_DIR={tmp_path / 'missing'} does not exist" in shown(w.value) for w in at.warning)
