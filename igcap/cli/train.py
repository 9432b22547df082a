"""`python -m igcap train`: fine-tune one variant (a base × a strategy) on captioned photos."""

from __future__ import annotations

from pathlib import Path

from igcap.cli import CliError, file_problem

EXAMPLE = ("python -m igcap train --data instagram/ --out models/my-model --base vit-gpt2 --strategy last-block "
           "--epochs 3 --batch-size 16")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a caption model on captioned photos",
                       description=f"Fine-tune one variant and save it in the published form. Example: {EXAMPLE}")
    p.add_argument("--data", required=True, type=Path, help="Kaggle-layout folder, or a folder/CSV of (image, caption)")
    p.add_argument("--out", required=True, type=Path, help="output folder (checkpoints go to OUT/checkpoints)")
    p.add_argument("--base", default="vit-gpt2", help="vit-gpt2 (ViT + GPT-2 joined fresh), nlpconnect, or tiny "
                   "(a random tiny model that trains offline in seconds on demo-data)")
    p.add_argument("--strategy", default="last-block", choices=["last-block", "all"],
                   help="last-block: GPT-2's last block, final norm and head; all: every parameter")
    p.add_argument("--key", help="registry key written to the marker (default: the output folder's name)")
    p.add_argument("--label", help="the name the dashboard shows")
    p.add_argument("--description", default="", help="one line for the dashboard and the model card")
    add_training_arguments(p)
    p.set_defaults(func=run)


def add_training_arguments(p) -> None:
    """The options train and train-all share."""
    src = p.add_argument_group("base sources (hub ids or local folders; for offline training)")
    src.add_argument("--encoder",
                     help="image encoder for the vit-gpt2 base (default google/vit-base-patch16-224-in21k)")
    src.add_argument("--decoder", help="GPT-2 for the vit-gpt2 base (default gpt2)")
    src.add_argument("--base-model", help="a ready VisionEncoderDecoderModel to start from (the nlpconnect base)")
    src.add_argument("--tokenizer", help="default: the decoder's or base model's")
    src.add_argument("--processor", help="image processor; default: the encoder's or base model's")
    hp = p.add_argument_group("training")
    hp.add_argument("--epochs", type=float, default=3.0)
    hp.add_argument("--batch-size", type=int, default=8, help="per device")
    hp.add_argument("--eval-batch-size", type=int)
    hp.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float, default=5e-5)
    hp.add_argument("--warmup", type=float, default=0.0, help="warm-up steps (>= 1) or fraction of all steps (< 1)")
    hp.add_argument("--weight-decay", type=float, default=0.0)
    hp.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    hp.add_argument("--max-caption-tokens", type=int, default=64, help="labels are cut to this, EOS included")
    hp.add_argument("--max-samples", type=int, help="use at most this many rows (quick runs)")
    hp.add_argument("--validation", type=float, default=0.1, help="fraction held out for validation loss")
    hp.add_argument("--test", type=float, default=0.1, help="fraction held out for caption metrics")
    hp.add_argument("--seed", type=int, default=42)
    hp.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                    help="auto: bf16 where the GPU has it, else fp16 on CUDA, else fp32")
    hp.add_argument("--resume", nargs="?", const="last", metavar="CHECKPOINT",
                    help="continue from the latest checkpoint in OUT/checkpoints, or from CHECKPOINT")
    hp.add_argument("--workers", dest="num_workers", type=int,
                    help="data-loader processes (default 4 on CUDA, 0 on CPU)")
    hp.add_argument("--logging-steps", type=int, default=50)
    hp.add_argument("--save-total-limit", type=int, default=2, help="checkpoints kept")
    hp.add_argument("--no-checkpoints", dest="keep_checkpoints", action="store_false",
                    help="delete OUT/checkpoints after a successful run")
    hp.add_argument("--overwrite", action="store_true", help="replace a model or checkpoints already in OUT")
    hp.add_argument("--caption-eval-samples", type=int, default=100,
                    help="test photos captioned after training for the model card (0 = none)")
    hp.add_argument("--push-to-hub", metavar="REPO", help="upload the result to this hub repo")
    hp.add_argument("--demo", action="store_true", help="mark the model as a demo (synthetic data)")
    hp.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


SETTING_ARGS = ("data", "out", "encoder", "decoder", "base_model", "tokenizer", "processor", "epochs", "batch_size",
                "eval_batch_size", "learning_rate", "warmup", "weight_decay", "grad_accum", "max_caption_tokens",
                "max_samples", "validation", "test", "seed", "precision", "resume", "num_workers", "logging_steps",
                "save_total_limit", "keep_checkpoints", "overwrite", "caption_eval_samples", "push_to_hub", "demo",
                "progress")


def settings_from_args(args, **extra):
    """TrainSettings from parsed arguments; a bad value becomes a one-line CliError."""
    from igcap.train import TrainError, TrainSettings

    values = {name: getattr(args, name) for name in SETTING_ARGS if hasattr(args, name)}
    try:
        return TrainSettings(**{**values, **extra})
    except TrainError as err:
        raise CliError(str(err)) from None


def run_training(action):
    """Run ``action()`` and turn the pipeline's expected failures into one-line errors."""
    from igcap.data import DataError
    from igcap.train import TrainError

    try:
        return action()
    except (TrainError, DataError) as err:
        raise CliError(str(err)) from None
    except OSError as err:
        if err.errno is not None and err.filename:  # the file system (an output folder under a file, a full disk)
            where = err.filename
            problem = file_problem(where, err, folder=isinstance(err, (NotADirectoryError, FileExistsError)))
            raise CliError(f"{where}: {problem}") from None
        # from_pretrained: offline, no such repo, missing files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CliError(f"could not load the base model: {first}\n  offline? pass local folders with "
                       "--encoder/--decoder (vit-gpt2) or --base-model (nlpconnect)") from None


def run(args) -> int:
    from igcap.train import train

    settings = settings_from_args(args, base=args.base, strategy=args.strategy, key=args.key, label=args.label,
                                  description=args.description)
    with _threads_for(settings):
        result = run_training(lambda: train(settings))
    _print_result(result)
    return 0


def _threads_for(settings):
    """One thread for the tiny base on a CPU: its steps are too small to share between threads."""
    import contextlib

    from igcap.demo import torch_threads
    from igcap.train import TINY_BASE

    return torch_threads(1) if settings.base == TINY_BASE and not settings.base_model else contextlib.nullcontext()


def _print_result(result) -> None:
    from igcap.train import is_main_process

    if not is_main_process():
        return
    loss = result.metrics.get("validation_loss")
    before = result.metrics.get("validation_loss_before")
    change = f"{before:.4f} → {loss:.4f}" if before is not None and loss is not None else f"{loss}"
    print(f"{result.out}: validation loss {change}; {result.trainable:,}/{result.total:,} parameters trained")
