"""`python -m igcap evaluate --model … --data …`: validation loss and caption metrics on held-out photos."""

from __future__ import annotations

import json
from pathlib import Path

from igcap.cli import CliError, check_device, whole_number


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model on held-out photos (loss, BLEU, ROUGE-L, diversity, EOS)",
                       description="Captions the held-out split with greedy decoding and scores it. Example: "
                                   "python -m igcap evaluate --model models/my-model --data instagram/ --json")
    p.add_argument("--model", required=True, help="a registry key or a model folder")
    p.add_argument("--data", required=True, type=Path, help="the dataset (split as in training: same --seed)")
    p.add_argument("--split", default="test", choices=["test", "validation", "all"])
    p.add_argument("--seed", type=int, default=42, help="the split's seed (use training's)")
    p.add_argument("--validation", type=float, default=0.1)
    p.add_argument("--test", type=float, default=0.1)
    p.add_argument("--max-samples", type=whole_number(3), help="as in training (the split depends on it)")
    p.add_argument("--limit", type=whole_number(1), help="score at most this many photos")
    p.add_argument("--max-caption-tokens", type=whole_number(2), default=64)
    p.add_argument("--preset", help="decoding preset instead of plain greedy (balanced, creative, precise, fast)")
    p.add_argument("--batch-size", type=whole_number(1), default=16)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--no-loss", dest="with_loss", action="store_false", help="skip the validation loss")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from igcap.data import DataError, load_splits
    from igcap.evaluation import default_decoding, evaluate_spec, spec_for
    from igcap.loading import ModelLoadError

    device = check_device(args.device)
    try:
        spec = spec_for(args.model)
        splits, _ = load_splits(args.data, args.seed, args.validation, args.test, args.max_samples)
    except (KeyError, DataError) as err:
        raise CliError(str(err).strip("'\"")) from None
    _check_split(args)
    records = splits.train + splits.validation + splits.test if args.split == "all" else getattr(splits, args.split)
    records = records[: args.limit] if args.limit else records
    if not records:
        raise CliError(f"the {args.split} split is empty; use --split all or a larger dataset")
    try:
        report = evaluate_spec(spec, records, _decoding(args, default_decoding), device, args.with_loss,
                               args.batch_size, args.max_caption_tokens)
    except ModelLoadError as err:
        raise CliError(f"{err.message} {err.hint}") from None
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json else report.table())
    return 0


def _check_split(args) -> None:
    """Warn when the held-out photos asked for are not the ones the model's training held out."""
    import sys
    from pathlib import Path

    from igcap.data import split_settings, trained_split

    if args.split == "all" or not Path(args.model).is_dir():
        return
    trained = trained_split(Path(args.model))
    if trained is None:
        return
    asked = split_settings(args.seed, args.validation, args.test, args.max_samples)
    if trained != asked:
        was = ("an earlier split (rows shuffled, not photos)" if not trained else
               ", ".join(f"{k} {trained.get(k)}" for k in asked if trained.get(k) != asked[k]))
        print(f"note: this model was trained with {was}; the {args.split} photos scored here are not the ones its "
              f"training held out, and it may have trained on some of them", file=sys.stderr)


def _decoding(args, default):
    if not args.preset:
        return default(args.max_caption_tokens)
    from igcap.decoding import PRESETS

    if args.preset not in PRESETS:
        raise CliError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[args.preset]
