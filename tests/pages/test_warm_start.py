"""The app starts loading the Create page's models once its first page is drawn (IGCAP_WARM_START)."""

import pytest

from tests.pages.conftest import APP, TIMEOUT, no_exceptions


@pytest.mark.parametrize("setting", ["1", "0"])
def test_the_first_page_starts_the_models_loading_in_the_background(app_env, monkeypatch, setting):
    from streamlit.testing.v1 import AppTest

    from igcap import warm_start
    from igcap.registry import DEFAULT_KEYS
    from igcap_ui import resources

    monkeypatch.setenv("IGCAP_WARM_START", setting)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(at)
    cache = resources._model_cache()
    thread = warm_start.started(cache)
    if setting == "0":
        assert thread is None and cache.loaded_keys() == []
        return
    assert thread is not None  # started by the page run, before anyone pressed Generate
    thread.join(120)
    assert sorted(cache.loaded_keys()) == sorted(DEFAULT_KEYS)  # the Create page's default models
    at.run()  # later runs start nothing more
    assert warm_start.started(cache) is thread
