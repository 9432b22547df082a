"""`python -m igcap models`: the registry and whether each model is available."""

from __future__ import annotations

import json
import sys

from igcap.cli import terminal_safe


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the caption models and whether each is available",
                       description="List the caption models. Example: python -m igcap models --check")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--check", action="store_true", help="load each model to prove it works (slow)")
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.config import Settings
    from igcap.loading import ModelLoadError, cache_from_settings, model_availability
    from igcap.registry import models_dir_problem
    from igcap.units import size

    settings = Settings.from_env()
    if problem := models_dir_problem(settings):
        print(terminal_safe(f"warning: {problem}"), file=sys.stderr)
    cache = cache_from_settings(settings)
    rows, available = [], model_availability(cache)
    for key, spec in cache.registry.items():
        avail = available[key]
        row = {"key": key, "label": spec.label, "source": spec.source, "base": spec.base, "strategy": spec.strategy,
               "demo": spec.demo, "available": avail.usable, "state": avail.state, "detail": avail.detail}
        if args.check:
            try:
                loaded = cache.get(key)
                row.update(state="loaded", detail=f"loads ({size(loaded.nbytes)})", available=True)
                cache.evict(key)
            except ModelLoadError as err:
                row.update(state="failed", detail=f"{err.message} {err.hint}", available=False)
        rows.append(row)
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else table(rows))
    return 0


def table(rows: list[dict]) -> str:
    cols = ("key", "state", "source", "detail")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)
