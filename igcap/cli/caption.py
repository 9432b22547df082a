"""`python -m igcap caption PHOTO_OR_FOLDER…`: captions from the chosen models, printed as each batch finishes.

A folder is streamed: for each model in turn, the photos are decoded (at 1080 px, see igcap.images)
``--batch-size`` at a time, captioned and printed, so memory does not grow with the folder (48
twelve-megapixel photos held at once peaked at 4.3 GiB). The order stays model by model, photos in
file order; a photo is decoded once per model, which costs little beside generation.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from igcap.cli import CliError, check_device, print_error, terminal_safe
from igcap.cli.hashtags import load_tags
from igcap.decoding import KNOBS, PRESETS, STRATEGY_WORDS, DecodingError, bounds_problem, unused_knobs
from igcap.lengths import LENGTHS

COLUMNS = ("photo", "model", "variant", "caption", "raw_text", "tokens", "seconds", "ended_with_eos",
           "chars", "hashtags", "over_limit_chars", "over_limit_hashtags",
           "mentions", "over_limit_mentions")  # limits: IGCAP_INSTAGRAM_*


def add_parser(sub) -> None:
    p = sub.add_parser("caption", help="caption photos (files or folders) with the chosen models",
                       description="Caption photos. Example: python -m igcap caption photos/ --models vit-gpt2-all "
                                   "--preset creative --seed 7 --csv > captions.csv")
    p.add_argument("paths", nargs="+", metavar="PHOTO_OR_FOLDER", help="image files, or folders to search")
    p.add_argument("--models", help="comma-separated model keys (default: the four published models)")
    p.add_argument("--preset", default="balanced", help="decoding preset: balanced, creative, precise, fast")
    for name, knob in KNOBS.items():  # one flag per DecodingSettings field that has one
        if knob.flag:
            p.add_argument("--" + name.replace("_", "-"), dest=name, type=knob.type, help=knob.help)
    p.add_argument("--variants", dest="num_variants", type=int, help=argparse.SUPPRESS)  # short alias of --num-variants
    p.add_argument("--length", choices=list(LENGTHS), help="caption length: " + "; ".join(
        length.label for length in LENGTHS.values()) + " (--min-new-tokens/--max-new-tokens still win)")
    p.add_argument("--keep-fragment", action="store_true", help="keep an unfinished last sentence")
    p.add_argument("--hashtags", metavar="SET[,SET]", help="add saved hashtag sets (igcap hashtags) to every "
                   "caption, never past Instagram's limits")
    p.add_argument("--database", metavar="URL", help="database with the hashtag sets (default: DATABASE_URL or the "
                   "local SQLite file)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--batch-size", type=int, default=8, help="photos per batch (default 8)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="where to run (default auto)")
    q = p.add_mutually_exclusive_group()
    q.add_argument("--quantize", dest="quantize", action="store_true", default=None, help="int8 weights on CPU")
    q.add_argument("--no-quantize", dest="quantize", action="store_false", help="full-precision weights")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace

    from igcap.captioner import Captioner
    from igcap.config import Settings
    from igcap.loading import cache_from_settings

    settings = decoding_settings(args)
    tags = load_tags(args.hashtags, args.database) if args.hashtags else []
    config = Settings.from_env()
    config = replace(config, device=check_device(args.device, config.device),
                     quantize=config.quantize if args.quantize is None else args.quantize)
    cache = cache_from_settings(config)
    keys = model_keys(args.models, cache.registry)
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    files, failed = photo_files(args.paths), {}
    quiet_transformers(args.verbose)
    writer = Writer(args, config.instagram, tags)
    captioner, bad_models = Captioner(cache, batch_size=args.batch_size), set()
    for key in keys:
        captioned = 0
        for photos in photo_batches(files, args.batch_size, failed):
            [model_run] = captioner.caption([p.image for p in photos], [key], settings)
            writer.model_done(model_run, [p.name for p in photos])
            captioned += len(photos)
            del photos  # this batch's pixels go before the next batch is decoded
            if not model_run.ok:
                bad_models.add(key)
                break  # a model that failed on one batch would fail (and be reported) on every batch
        if not captioned and key == keys[0]:
            if not failed:
                raise CliError("no photo could be read: no image files found")
            print_error(f"no photo could be read ({len(failed)} failed)")  # a failure (1), each reported above
            break
    writer.close()
    return 1 if failed or bad_models else 0


def decoding_settings(args):
    """The settings the preset and the flags ask for, else CliError saying why they cannot work. Flags given
    for knobs the strategy does not read are named in one note on stderr; a value no strategy takes is
    refused there too."""
    if args.preset not in PRESETS:
        raise CliError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
    chosen = {k: getattr(args, k) for k, knob in KNOBS.items() if knob.flag and getattr(args, k) is not None}
    if args.keep_fragment:
        chosen["drop_fragment"] = False
    try:
        base = PRESETS[args.preset]
        if getattr(args, "length", None):
            base = LENGTHS[args.length].apply(base)
        settings = base.replace(**chosen)
    except DecodingError as err:
        raise CliError(str(err)) from None
    note_unused(settings, chosen, preset=None if chosen.get("strategy") else args.preset)
    return settings


def note_unused(settings, chosen: dict, preset: str | None) -> None:
    """One note naming the flags in ``chosen`` that the strategy does not read, and the strategy that would;
    CliError for a value outside its knob's bounds (``--top-k -1`` is wrong under any strategy)."""
    unused = unused_knobs(settings.strategy, chosen)
    words = STRATEGY_WORDS[settings.strategy]
    groups: dict[tuple, list[str]] = {}
    for name in unused:
        flag = "--" + name.replace("_", "-")
        if problem := bounds_problem(name, chosen[name]):
            raise CliError(f"{problem}; {words} does not use {flag}, so leave it out")
        groups.setdefault(KNOBS[name].only, []).append(flag)
    if groups:
        ignored = " and ".join(f"{', '.join(flags)} (used with {' or '.join('--strategy ' + s for s in only)})"
                               for only, flags in groups.items())
        print(f"note: {words}{f' (preset {preset})' if preset else ''} ignores {ignored}", file=sys.stderr)


def model_keys(text: str | None, registry) -> list[str]:
    """The keys ``--models`` names (default: the published models), else CliError naming the known keys."""
    from igcap.registry import DEFAULT_KEYS

    if text is None:
        return [k for k in DEFAULT_KEYS if k in registry]
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:  # `--models ,`: nothing would be captioned, and the exit status would say success
        raise CliError(f"--models names no model; known: {', '.join(registry)}")
    unknown = [k for k in keys if k not in registry]
    if unknown:
        raise CliError(f"unknown model {', '.join(unknown)}; known: {', '.join(registry)}")
    return keys


def photo_files(paths: list[str]) -> list[Path]:
    """Files given, and image files in folders given (searched recursively, sorted, hidden files left out:
    igcap.folders)."""
    from igcap.folders import visible_files
    from igcap.images import IMAGE_EXTENSIONS

    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += [f for f in visible_files(path, "**/*") if f.suffix.lower() in IMAGE_EXTENSIONS]
        else:
            files.append(path)
    return files


def photo_batches(files: list[Path], size: int, failed: dict):
    """Decoded photos, ``size`` at a time, in file order. A file that cannot be read is reported on stderr
    once and recorded in ``failed`` (path → message), and skipped on later passes."""
    from dataclasses import replace

    from igcap.images import WORKING_SIDE, PhotoError, load_photo_file

    batch = []
    for f in files:
        if f in failed:
            continue
        try:
            # the row names the path as given (a/IMG_0001.JPG and b/IMG_0001.JPG stay apart)
            batch.append(replace(load_photo_file(f, max_side=WORKING_SIDE), name=str(f)))
        except PhotoError as err:
            failed[f] = err.message
            print(terminal_safe(f"skipped {f}: {err.message}"), file=sys.stderr)
            continue
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def quiet_transformers(verbose: bool) -> None:
    if not verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


class Writer:
    """Prints each model's captions as soon as the model finishes (text or CSV), or all at the end (JSON)."""

    def __init__(self, args, limits=None, tags=()):
        from igcap.instagram import DEFAULT_LIMITS

        self.mode = "json" if args.json else "csv" if args.csv else "text"
        self.rows, self.errors = [], []
        self.limits, self.tags = limits or DEFAULT_LIMITS, list(tags)
        if self.mode == "csv":  # as the app's exports: UTF-8 with a BOM (Excel reads emoji right), CRLF rows
            if hasattr(sys.stdout, "reconfigure"):
                sys.stdout.reconfigure(newline="")  # the csv module writes CRLF itself; no second CR on Windows
            sys.stdout.write("\ufeff")
            self.csv = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
            self.csv.writeheader()

    def model_done(self, run, names: list[str]) -> None:
        """One model's captions of one batch of photos (``names``, in the order they were captioned)."""
        if run.error:
            self.errors.append({"model": run.model_key, "error": run.error.message, "hint": run.error.hint})
            print(terminal_safe(f"{run.model_key}: {run.error.message} {run.error.hint}"), file=sys.stderr)
        from igcap.hashtags import add_hashtags
        from igcap.instagram import instagram_stats

        for r in run.results:
            text = r.text
            if self.tags:
                addition = add_hashtags(text, self.tags, self.limits)
                text = addition.text
                if addition.left_out:
                    print(terminal_safe(f"note: {names[r.photo_index]} {r.model_key}#{r.variant + 1}: "
                                        f"{addition.message(self.limits)}"), file=sys.stderr)
            stats = instagram_stats(text, self.limits)
            over = stats.over_limit()
            row = dict(zip(COLUMNS, (names[r.photo_index], r.model_key, r.variant, text, r.raw_text,
                                     r.tokens, round(r.seconds, 3), r.ended_with_eos, stats.chars, stats.hashtags,
                                     over["chars"], over["hashtags"], stats.mentions, over["mentions"])))
            self.rows.append(row)
            if stats.warning():
                print(terminal_safe(f"warning: {row['photo']} {r.model_key}#{r.variant + 1}: {stats.warning()}"), file=sys.stderr)
            if self.mode == "csv":
                self.csv.writerow(csv_row(row))
            elif self.mode == "text":
                model = row["model"] + (f"#{r.variant + 1}" if r.variant else "")
                print("\t".join(terminal_safe(v) for v in (row["photo"], model, row["caption"])))
        sys.stdout.flush()

    def close(self) -> None:
        if self.mode == "json":
            print(json.dumps({"captions": self.rows, "errors": self.errors}, indent=2, ensure_ascii=False))


def csv_row(row: dict) -> dict:
    """Text cells neutralised as the exports do (a file named ``=HYPERLINK(…).jpg`` is not a formula)."""
    from db.csv_cells import neutralise

    return {k: neutralise(v) if isinstance(v, str) else v for k, v in row.items()}
