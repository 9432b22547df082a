"""Peak memory of one upload (issue 12 item 1): a 108 KiB 16-bit or RGBA 7000×7000 PNG, under the pixel
limit, took the server from 98 MiB to 1.4 GiB while it was converted.

Each case runs the app's upload path (igcap_ui.photos._decode) in a fresh Python process and reads the
peak resident memory (VmHWM) there, before and after; the figures are printed (pytest -s shows them).
The bound: the decoded image at its own depth plus small copies (igcap.images' docstring), checked as
at most the decoded size + 60 MiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SIDE = 7000
CHILD = r"""
import json, sys, types
def hwm():
    return {k: int(v.split()[0]) / 1024 for k, v in
            (line.split(":", 1) for line in open("/proc/self/status")) if k in ("VmHWM", "VmRSS")}
import numpy  # imported by the app long before any upload; not part of one upload's cost
from igcap_ui.photos import _decode
data = open(sys.argv[1], "rb").read()
_decode(types.SimpleNamespace(getvalue=lambda: open(sys.argv[2], "rb").read(), name="warm.png", size=1))
before = hwm()
photo = _decode(types.SimpleNamespace(getvalue=lambda: data, name="big.png", size=len(data)))
after = hwm()
print(json.dumps({"before": before, "after": after, "kept": list(photo.image.size), "size": [photo.width, photo.height],
                  "mode": photo.image.mode}))
"""


def _png(path: Path, image: Image.Image) -> Path:
    image.save(path, format="PNG")
    return path


@pytest.fixture(scope="module")
def big_pngs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big-png")
    ramp = (np.arange(SIDE, dtype=np.uint32) * 9 % 65536).astype(np.uint16)
    grey16 = _png(folder / "grey16.png", Image.fromarray(np.repeat(ramp[None, :], SIDE, axis=0)))
    rgba = _png(folder / "rgba.png", Image.new("RGBA", (SIDE, SIDE), (10, 120, 200, 128)))
    warm = _png(folder / "warm.png", Image.new("RGB", (64, 48), "red"))
    return {"16-bit grey": (grey16, 2), "RGBA": (rgba, 4), "warm": warm}


@pytest.mark.parametrize("kind", ["16-bit grey", "RGBA"])
def test_one_large_upload_costs_about_its_decoded_size(big_pngs, kind):
    path, bytes_per_pixel = big_pngs[kind]
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(big_pngs["warm"])], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    growth = figures["after"]["VmHWM"] - figures["before"]["VmHWM"]
    decoded = SIDE * SIDE * bytes_per_pixel / 2**20
    print(f"\n{kind} {SIDE}×{SIDE} PNG ({path.stat().st_size / 1024:.0f} KiB): peak +{growth:.0f} MiB "
          f"(decoded at its own depth: {decoded:.0f} MiB; peak {figures['after']['VmHWM']:.0f} MiB, "
          f"held after {figures['after']['VmRSS']:.0f} MiB)")
    assert figures["size"] == [SIDE, SIDE] and max(figures["kept"]) == 1080 and figures["mode"] == "RGB"
    assert growth <= decoded + 60, f"one upload grew the process by {growth:.0f} MiB"
