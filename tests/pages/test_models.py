"""The Models page: state per model, why a model fails and what to do, loading on demand."""

from streamlit.testing.v1 import AppTest

from tests.pages.conftest import APP, TIMEOUT, no_exceptions, open_page


def test_lists_models_without_loading_them(app):
    at = open_page(app, "models.py")
    no_exceptions(at)
    assert [s.value for s in at.subheader][:4] == ["ViT-GPT2 · last block", "ViT-GPT2 · all parameters",
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
    assert "/nonexistent" in error.value and "IGCAP_MODEL_NLPCONNECT_ALL" in error.value
    from igcap_ui import resources

    assert len(resources.model_cache().loaded_keys()) == 3
