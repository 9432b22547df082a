"""`python -m igcap bench --first-click SECONDS`: a person's first click after the app's process starts.

The benchmark's "cold" scenario times process start → first caption with no pause: it is what a script
pays, and most of it is importing torch and transformers. A person after a restart (Streamlit Community
Cloud waking a sleeping app) first opens the page and picks a photo; the app uses that time to load the
Create page's models in the background (``igcap.warm_start``). This measures what the person then waits:
each run is a fresh process that clicks ``delay`` seconds after it started, asking one photo × the four
models with the app's default decoding preset, with the warm start off and on (alternating, median of
``repeats``); figures are click → first caption and click → all four. The models and int8 cache are the
benchmark's (``igcap.bench``: full-size random weights, or tiny ones with ``--quick``).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from igcap import bench

WARM = (False, True)


def run_child(set_dir: Path, delay: float, warm: bool) -> dict:
    """One fresh process: click ``delay`` s after it was started; the seconds the person waited."""
    with tempfile.TemporaryDirectory(prefix="igcap-click-") as tmp:
        out = Path(tmp) / "click.json"
        env = bench._child_env(set_dir, Path(tmp))
        env["IGCAP_WARM_START"] = "1" if warm else "0"
        started = time.time()
        args = [sys.executable, "-m", "igcap.bench_click", "child", str(set_dir), str(started + delay), str(out)]
        bench._run_process(args, env, out, "the first-click child")
        return json.loads(out.read_text())


def child_main(argv: list[str]) -> int:
    """``python -m igcap.bench_click child SET_DIR CLICK_AT OUT``: nothing heavy is imported before the
    click except what the app itself starts in the background (the warm start, when on)."""
    set_dir, click_at, out = Path(argv[0]), float(argv[1]), Path(argv[2])
    from igcap import warm_start
    from igcap.captioner import Captioner
    from igcap.config import Settings
    from igcap.decoding import DEFAULT_PRESET, PRESETS
    from igcap.loading import cache_from_settings

    settings = Settings.from_env()
    cache = cache_from_settings(settings)
    if settings.warm_start:
        warm_start.start(cache, bench.KEYS)  # as igcap_ui.resources.warm_start does after the first page
    photo = bench.bench_photos(1)
    time.sleep(max(0.0, click_at - time.time()))
    click, first, ready = time.time(), [], len(cache.loaded_keys())
    runs = Captioner(cache).caption(photo, bench.KEYS, PRESETS[DEFAULT_PRESET],
                                    on_result=lambda run: first or first.append(time.time()))
    done = time.time()
    bench._raise_failures(runs)
    out.write_text(json.dumps({"first_caption_s": first[0] - click, "all_captions_s": done - click,
                               "late_s": click - click_at, "preset": DEFAULT_PRESET,
                               "warm_start": settings.warm_start, "models_loaded_at_click": ready}))
    return 0


def run_first_click(options: bench.BenchOptions, delay: float, progress=print) -> dict:
    """Both settings of the warm start, ``options.repeats`` alternating rounds, on the first set given."""
    if delay < 0:
        raise ValueError(f"the delay before the click must be 0 s or more, not {delay}")
    folder = options.cache_dir or bench.default_cache_dir(options.quick)
    set_name = options.sets[0]
    set_dir = bench.build_set(set_name, folder, options.quick)
    progress(f"[{set_name}] filling the int8 cache …")
    run_child(set_dir, 0.0, warm=False)  # later starts read the cache, as a host that keeps its disk does
    runs: dict[bool, list[dict]] = {warm: [] for warm in WARM}
    for round_ in range(options.repeats):
        for warm in WARM if round_ % 2 == 0 else WARM[::-1]:
            progress(f"[{set_name}] round {round_ + 1}/{options.repeats}: warm start {'on' if warm else 'off'} …")
            runs[warm].append(run_child(set_dir, delay, warm))
    result = {"machine": bench.machine_info(), "set": set_name, "delay_s": delay, "repeats": options.repeats,
              "preset": runs[False][0]["preset"], "photos": 1, "models": len(bench.KEYS)}
    for warm in WARM:
        result["warm_start_on" if warm else "warm_start_off"] = {
            key: round(statistics.median(run[key] for run in runs[warm]), 3) for key in ("first_caption_s", "all_captions_s")
        } | {"runs": runs[warm]}
    return result


def format_first_click(result: dict) -> str:
    lines = [f"first click {result['delay_s']:g} s after the process started ({result['set']}, one photo × "
             f"{result['models']} models, preset {result['preset']!r}, median of {result['repeats']}):",
             f"{'warm start':<12}{'click → first caption':>24}{'click → all four':>20}"]
    for warm in WARM:
        entry = result["warm_start_on" if warm else "warm_start_off"]
        lines.append(f"{'on' if warm else 'off':<12}{entry['first_caption_s']:>22.2f} s{entry['all_captions_s']:>18.2f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit("usage: python -m igcap bench --first-click SECONDS (this module's own entry point is for its children)")
