"""The app captions on light models: once the models are in the int8 cache, a fresh app process draws its
pages and writes captions with the default preset (beam search) without ever importing transformers
(igcap.light_model), the published layout included (a repo that borrows its bases' files). Sampling and the
other presets: tests/igcap/test_light_model.py."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from igcap.int8_cache import Int8CacheOptions
from igcap.loading import LoadOptions, load_captioner
from igcap.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    from tests import builders

    config.set_option("server.address", "localhost")  # as `make run`: no sign-in on this computer
    at = AppTest.from_file(sys.argv[1], default_timeout=300).run()
    at.file_uploader(key="create.upload").set_value([("red.jpg", builders.photo_bytes(), "image/jpeg")]).run()
    at.button(key="create.generate").click().run()  # the page's default preset: beam search
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    cards = [t for t in at.text_area if t.key and t.key.startswith("card")]
    print(len(cards), "transformers" in sys.modules, "torch._dynamo" in sys.modules)
""")


def test_a_fresh_app_process_captions_without_importing_transformers(hub_cache, tmp_path):
    cache = Int8CacheOptions(tmp_path / "int8", 256)
    for spec in load_registry().values():  # the first loads, through transformers, fill the int8 cache
        load_captioner(spec, LoadOptions(device="cpu", quantize=True, int8_cache=cache))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache),
           "IGCAP_DATA_DIR": str(tmp_path / "data"), "IGCAP_INT8_CACHE_DIR": str(cache.folder),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}", "IGCAP_DEMO_MODELS_DIR": str(tmp_path / "none")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "streamlit_app.py")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    cards, transformers, dynamo = out.stdout.split()[-3:]
    assert int(cards) == 4  # the premise: one caption per model was written
    assert (transformers, dynamo) == ("False", "False")
