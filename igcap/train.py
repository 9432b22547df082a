"""Fine-tuning a ViT-GPT2 captioner on captioned photos, the way the four published variants were made.

Named steps: ``base_sources`` (where the base comes from) → ``build_model`` (load, set GPT-2's token ids,
freeze by strategy) → ``make_trainer`` (Hugging Face Trainer, so ``accelerate launch``/``torchrun`` give
multi-GPU runs unchanged) → ``save_published`` (weights, config, generation config, tokenizer, image
processor, model card, igcap marker). ``train`` runs them in order; ``train_all`` makes the four variants.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from igcap import architecture, shapes
from igcap.data import (UNREADABLE_WHILE_TRAINING, CaptionCollator, CaptionDataset, load_splits, read_failures,
                        split_settings)
from igcap.evaluation import evaluate_folder
from igcap.modelcard import model_card
from igcap.registry import BASES, DEFAULT_BASE, DEFAULT_MODELS, MARKER_FILE

log = logging.getLogger(__name__)

STRATEGIES = ("last-block", "all")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
CHECKPOINTS = "checkpoints"  # sub-folder of the output that holds Trainer checkpoints
UNREADABLE_LOG = "unreadable-photos.txt"  # in CHECKPOINTS: photos that failed to decode during the run
RUN_SETTINGS = "run-settings.json"  # in CHECKPOINTS: what a --resume of the run must keep (RUN_FIXED)
# What a run's checkpoints were made with and --resume cannot change: the data and the split (another split
# leaks held-out photos into training), the model and what trains, and what the validation loss that picks
# the best checkpoint is measured on. More epochs, another learning rate or precision are fine.
RUN_FIXED = ("data", "base", "strategy", "encoder", "decoder", "base_model", "tokenizer", "processor", "seed",
             "validation", "test", "max_samples", "max_caption_tokens", "batch_size", "eval_batch_size", "grad_accum")
TINY_BASE = "tiny"  # a random tiny captioner with the demo tokenizer: trains offline in seconds (demo data)
TINY_SOURCE = "igcap:tiny"


class TrainError(ValueError):
    """A training request that cannot run; the message says what to change."""


@dataclass(frozen=True)
class TrainSettings:
    data: Path  # a Kaggle-layout folder or any folder/CSV of (image path, caption)
    out: Path  # where the model goes, in the published form (checkpoints in out/checkpoints)
    base: str = "vit-gpt2"  # a key of igcap.registry.BASES, or "tiny" (random tiny model, for demo data)
    strategy: str = "last-block"  # "last-block": GPT-2's last block + final norm + head; "all": everything
    encoder: str | None = None  # override the base's encoder (hub id or folder), for the vit-gpt2 base
    decoder: str | None = None  # override the base's decoder, for the vit-gpt2 base
    base_model: str | None = None  # start from this VisionEncoderDecoderModel instead (nlpconnect-style)
    tokenizer: str | None = None  # default: the decoder's / base model's
    processor: str | None = None  # default: the encoder's / base model's
    epochs: float = 3.0
    batch_size: int = 8  # per device
    eval_batch_size: int | None = None  # default: batch_size
    learning_rate: float = 5e-5
    warmup: float = 0.0  # linear warm-up: steps (>= 1) or a fraction of all steps (< 1)
    weight_decay: float = 0.0
    grad_accum: int = 1  # gradient accumulation steps (effective batch = batch_size × this × devices)
    max_caption_tokens: int = 64  # labels are cut to this many tokens, EOS included
    max_samples: int | None = None  # use at most this many rows (before the split), for quick runs
    validation: float = 0.1  # fraction held out for the validation loss
    test: float = 0.1  # fraction held out for caption metrics
    seed: int = 42  # the split, the initialisation of new weights and the data order
    precision: str = "auto"  # auto: bf16 on GPUs that have it, else fp16 on CUDA, else fp32
    resume: str | None = None  # "last" (latest checkpoint in out/checkpoints) or a checkpoint folder
    num_workers: int | None = None  # data-loader processes; default 4 on CUDA, 0 on CPU
    logging_steps: int = 50
    save_total_limit: int = 2  # checkpoints kept (the best by validation loss is always kept)
    keep_checkpoints: bool = True  # False deletes out/checkpoints after a successful run
    overwrite: bool = False  # replace a model or checkpoints already in ``out`` (else refused, nothing lost)
    caption_eval_samples: int = 100  # test photos captioned after training for the model card (0 = none)
    push_to_hub: str | None = None  # a hub repo id to upload the result to
    key: str | None = None  # the registry key written to the marker (default: the output folder's name)
    label: str | None = None
    description: str = ""
    demo: bool = False  # trained on synthetic data: the app labels it as a demo
    progress: bool = True  # progress bars

    def __post_init__(self):
        for problem in _problems(self):
            raise TrainError(problem)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.out) / CHECKPOINTS

    @property
    def unreadable_log(self) -> Path:
        """Where the run's datasets record photos that no longer decode (igcap.data.CaptionDataset)."""
        return self.checkpoint_dir / UNREADABLE_LOG


def _problems(s: TrainSettings):
    if s.base not in (*BASES, TINY_BASE) and not s.base_model:
        yield f"base must be one of {', '.join(BASES)}, {TINY_BASE} (or give base_model), not {s.base!r}"
    if s.strategy not in STRATEGIES:
        yield f"strategy must be one of {', '.join(STRATEGIES)}, not {s.strategy!r}"
    if s.precision not in PRECISIONS:
        yield f"precision must be one of {', '.join(PRECISIONS)}, not {s.precision!r}"
    if s.epochs <= 0 or s.batch_size < 1 or s.grad_accum < 1 or (s.eval_batch_size is not None
                                                                  and s.eval_batch_size < 1):
        yield "epochs must be above 0, and batch size, eval batch size and gradient accumulation at least 1"
    if not 0 < s.learning_rate < 1:
        yield f"learning rate must be between 0 and 1, not {s.learning_rate}"
    if s.warmup < 0 or s.weight_decay < 0:
        yield "warm-up and weight decay cannot be negative"
    if s.max_caption_tokens < 2:
        yield "max caption tokens must be at least 2 (one token and EOS)"
    if s.max_samples is not None and s.max_samples < 3:
        yield "max samples must be at least 3 (train, validation and test need one each)"
    if not (0 <= s.validation < 1 and 0 <= s.test < 1 and s.validation + s.test < 1):
        yield "validation and test fractions must be in [0, 1) and leave room for training"
    if s.logging_steps < 1:
        yield f"logging steps must be at least 1, not {s.logging_steps}"
    if s.num_workers is not None and s.num_workers < 0:
        yield f"workers must be 0 (load data in the training process) or more, not {s.num_workers}"
    if s.caption_eval_samples < 0:
        yield f"caption eval samples must be 0 (none) or more, not {s.caption_eval_samples}"
    if s.save_total_limit < 1:
        yield f"save total limit must be at least 1 (the checkpoints kept), not {s.save_total_limit}"


# ---------------------------------------------------------------- the model

@dataclass(frozen=True)
class BaseSources:
    """Where each part of the starting model comes from (hub ids or folders)."""

    tokenizer: str
    processor: str
    model: str | None = None  # a ready VisionEncoderDecoderModel, or
    encoder: str | None = None  # an image encoder and
    decoder: str | None = None  # a GPT-2 language model, joined with fresh cross-attention
    # the base's own tokenizer and processor, for a folder or repo without those files (the published
    # repos may lack them, as the loader knows: igcap.loading falls back the same way)
    fallback_tokenizer: str | None = None
    fallback_processor: str | None = None


def base_sources(settings: TrainSettings) -> BaseSources:
    """The base's parts with the settings' overrides; an overridden part also brings its tokenizer/processor."""
    s, base = settings, BASES.get(settings.base)
    if s.base == TINY_BASE and not s.base_model:
        return BaseSources(tokenizer=TINY_SOURCE, processor=TINY_SOURCE, model=TINY_SOURCE)
    if s.base_model or (base and base.model and not (s.encoder or s.decoder)):
        model = s.base_model or base.model
        own = s.base_model is not None
        fallback = base or DEFAULT_BASE
        return BaseSources(tokenizer=s.tokenizer or (model if own else base.tokenizer),
                           processor=s.processor or (model if own else base.processor), model=model,
                           fallback_tokenizer=None if s.tokenizer else fallback.tokenizer,
                           fallback_processor=None if s.processor else fallback.processor)
    return BaseSources(tokenizer=s.tokenizer or s.decoder or base.tokenizer,
                       processor=s.processor or s.encoder or base.processor,
                       encoder=s.encoder or base.encoder, decoder=s.decoder or base.decoder)


@dataclass
class Built:
    model: object  # VisionEncoderDecoderModel, trainable parameters set by strategy
    tokenizer: object
    processor: object
    trainable: int
    total: int
    notes: tuple[str, ...] = ()  # e.g. the base's tokenizer used for a folder without one


def build_model(sources: BaseSources, strategy: str, seed: int = 0) -> Built:
    """Load the base, set GPT-2's token ids, and freeze what the strategy keeps fixed."""
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    if sources.model == TINY_SOURCE:
        tokenizer, processor = shapes.make_demo_tokenizer(), shapes.make_demo_processor()
        model = shapes.make_tiny_captioner(tokenizer, seed=seed)
        return _finish(model, tokenizer, processor, strategy)
    notes = []
    tokenizer = _first_that_loads(AutoTokenizer.from_pretrained, sources.tokenizer, sources.fallback_tokenizer,
                                  "tokenizer", notes)
    processor = _first_that_loads(AutoImageProcessor.from_pretrained, sources.processor, sources.fallback_processor,
                                  "image processor", notes)
    if sources.model:
        model = VisionEncoderDecoderModel.from_pretrained(sources.model)
    else:
        model = VisionEncoderDecoderModel.from_encoder_decoder_pretrained(sources.encoder, sources.decoder)
    if model.config.decoder.vocab_size != len(tokenizer):
        raise TrainError(f"the tokenizer from {sources.tokenizer} has {len(tokenizer)} tokens but the decoder "
                         f"expects {model.config.decoder.vocab_size}; give the decoder's own tokenizer")
    return replace(_finish(model, tokenizer, processor, strategy), notes=tuple(notes))


def _first_that_loads(load, source: str, fallback: str | None, what: str, notes: list[str]):
    """``load(source)``, else ``load(fallback)`` with a note saying so (igcap.loading.first_that_loads, as the
    app's loader falls back), else a TrainError naming what each gave."""
    from igcap.loading import NothingLoaded, first_that_loads

    sources = [(source, None)] + ([(fallback, None)] if fallback and fallback != source else [])
    try:
        found, i = first_that_loads(load, sources, what)
    except NothingLoaded as err:
        hint = f"; give --{what.split()[-1]}" if len(sources) == 1 else ""
        raise TrainError(f"could not load the {what} ({err}){hint}") from None
    if i:
        notes.append(f"{source} has no {what} of its own: using {fallback}'s")
    return found


def _finish(model, tokenizer, processor, strategy: str) -> Built:
    set_token_ids(model, tokenizer)
    apply_strategy(model, strategy)
    trainable, total = count_parameters(model)
    return Built(model, tokenizer, processor, trainable, total)


def set_token_ids(model, tokenizer):
    """GPT-2's token-id rule (igcap.architecture.set_token_ids) with the tokenizer's end-of-text token; the
    configs are saved with the model. The tokenizer pads with it too."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise TrainError("the tokenizer has no end-of-text token; a GPT-2 tokenizer is expected")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return architecture.set_token_ids(model, eos)


def apply_strategy(model, strategy: str) -> None:
    """``all``: every parameter trains. ``last-block``: only GPT-2's last block (its cross-attention
    included), the final layer norm and the LM head. The head is tied to the token embeddings, so those
    train too; on the full-size model that is 48,050,688 of 239,195,904 parameters."""
    if strategy not in STRATEGIES:
        raise TrainError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    model.requires_grad_(strategy == "all")
    if strategy == "last-block":
        decoder = model.decoder
        if not hasattr(decoder, "transformer") or not hasattr(decoder.transformer, "h"):
            raise TrainError(f"last-block expects a GPT-2 decoder, not {type(decoder).__name__}")
        for part in (decoder.transformer.h[-1], decoder.transformer.ln_f, decoder.lm_head):
            part.requires_grad_(True)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total); a tensor shared by two modules (the tied head) counts once."""
    params = list(model.parameters())  # parameters() yields each shared tensor once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# ---------------------------------------------------------------- the run

@dataclass
class TrainResult:
    out: Path
    trainable: int
    total: int
    splits: dict[str, int]
    skipped: dict[str, int]
    metrics: dict = field(default_factory=dict)  # validation loss before/after, history, caption metrics
    split: dict = field(default_factory=dict)  # what decided the split (igcap.data.split_settings)


def train(settings: TrainSettings, report=print) -> TrainResult:
    """Fine-tune one variant end to end and save it in the published form (see the module docstring)."""
    from transformers import set_seed

    report = report if is_main_process() else (lambda *_: None)  # one copy of each line under torchrun
    check_output_folder(settings)
    checkpoint = resume_point(settings)  # before any work, so a bad --resume fails at once
    if checkpoint:
        check_resumable(settings, checkpoint, report)
    if is_main_process():
        if not settings.resume:
            settings.unreadable_log.unlink(missing_ok=True)  # a resumed run adds to its earlier part's record
        if not settings.resume or not (settings.checkpoint_dir / RUN_SETTINGS).is_file():
            write_run_settings(settings)
    splits, table = load_splits(settings.data, settings.seed, settings.validation, settings.test,
                                settings.max_samples)
    report(table.summary())
    report(f"split (seed {settings.seed}): {splits.sizes()}")
    set_seed(settings.seed)  # new weights (cross-attention of a fresh vit-gpt2 join) start the same every run
    built = build_model(base_sources(settings), settings.strategy, settings.seed)
    for note in built.notes:
        report(note)
    report(f"{settings.strategy}: {built.trainable:,} trainable of {built.total:,} parameters")
    trainer = make_trainer(settings, built, splits, report)
    metrics = {}
    if splits.validation and not settings.resume:
        metrics["validation_loss_before"] = trainer.evaluate()["eval_loss"]
    trainer.train(resume_from_checkpoint=checkpoint)
    # Each epoch's own evaluation, read before the final one: that one runs on the best checkpoint, reloaded,
    # at the last epoch's step, and replaced the last epoch's loss with the best one's (hiding overfitting).
    evaluations = {e.get("step"): _epoch_line(e) for e in trainer.state.log_history if "eval_loss" in e}
    metrics["history"] = list(evaluations.values())
    if splits.validation:
        metrics["validation_loss"] = trainer.evaluate(metric_key_prefix=BEST)[f"{BEST}_loss"]
        best = _checkpoint_step(trainer.state.best_model_checkpoint)
        metrics["best_epoch"] = evaluations[best]["epoch"] if best in evaluations else None
    skipped = dict(table.skipped)
    unreadable = sorted(read_failures(settings.unreadable_log))
    if unreadable:
        skipped[UNREADABLE_WHILE_TRAINING] = len(unreadable)
        report(f"{len(unreadable)} photo{'s' if len(unreadable) != 1 else ''} could not be read while training "
               f"(changed since the dataset was read?); the next readable photo stood in each time: "
               f"{', '.join(unreadable[:3])}{' …' if len(unreadable) > 3 else ''}")
    result = TrainResult(Path(settings.out), built.trainable, built.total, splits.sizes(), skipped, metrics,
                         split_settings(settings.seed, settings.validation, settings.test, settings.max_samples))
    trainer.save_model(str(settings.out))  # on every process: FSDP/DeepSpeed gather the weights together
    if trainer.is_world_process_zero():
        save_published(built, settings, result, splits.test, report)
    return result


def check_output_folder(settings: TrainSettings) -> None:
    """Never train over a saved model or someone's checkpoints by accident."""
    out = Path(settings.out)
    taken = (out / "config.json").is_file() or any(settings.checkpoint_dir.glob("checkpoint-*"))
    if not taken or settings.resume:
        return
    if not settings.overwrite:
        raise TrainError(f"{out} already holds a model or checkpoints; choose a new --out, add --resume to "
                         "continue training, or --overwrite to replace it")
    if is_main_process():
        shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)  # stale checkpoints would mix with new ones


def is_main_process() -> bool:
    """False in the extra processes of a multi-GPU run (torchrun / accelerate launch set RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def resume_point(settings: TrainSettings) -> str | None:
    """The checkpoint folder to resume from, or None for a fresh start."""
    from transformers.trainer_utils import get_last_checkpoint

    if not settings.resume:
        return None
    if settings.resume != "last":
        if not (Path(settings.resume) / "trainer_state.json").is_file():
            raise TrainError(f"{settings.resume} is not a training checkpoint (no trainer_state.json)")
        return str(settings.resume)
    last = get_last_checkpoint(str(settings.checkpoint_dir)) if settings.checkpoint_dir.is_dir() else None
    if last is None:
        raise TrainError(f"nothing to resume: no checkpoint in {settings.checkpoint_dir}")
    return last


def run_settings(settings: TrainSettings) -> dict:
    """The settings a run's checkpoints depend on (RUN_FIXED), as JSON values: the data folder resolved,
    the evaluation batch size as used."""
    values = {name: getattr(settings, name) for name in RUN_FIXED}
    values["data"] = str(Path(settings.data).expanduser().resolve())
    values["eval_batch_size"] = settings.eval_batch_size or settings.batch_size
    return values


def write_run_settings(settings: TrainSettings) -> Path:
    """Keep run_settings beside the checkpoints at the start of a run, for check_resumable."""
    path = settings.checkpoint_dir / RUN_SETTINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_settings(settings), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def check_resumable(settings: TrainSettings, checkpoint: str, report=print) -> None:
    """Refuse to continue ``checkpoint`` with settings other than its run's (a TrainError naming each
    difference). A checkpoint from before runs kept their settings is continued with a note."""
    record = Path(checkpoint).parent / RUN_SETTINGS
    try:
        kept = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        report(f"note: {record} does not exist (a run from before igcap kept its settings), so igcap cannot "
               "check that --seed, --validation, --test, --max-samples, --data, --base and --strategy are the "
               "ones the checkpoint was trained with; give the same ones, or the held-out photos change")
        return
    except (OSError, ValueError) as err:
        raise TrainError(f"cannot read {record} ({err}): the settings of the run to resume are unknown") from None
    now = run_settings(settings)
    differ = [f"--{name.replace('_', '-')} {now[name]} (the run's: {kept[name]})" for name in RUN_FIXED
              if name in kept and kept[name] != now[name]]
    if differ:
        raise TrainError(f"--resume continues a run with the settings it started with, and these differ: "
                         f"{'; '.join(differ)}. Give the run's values, or start a new run (another --out, or "
                         f"--overwrite without --resume)")


def make_trainer(settings: TrainSettings, built: Built, splits, report=print):
    """A Hugging Face Trainer: evaluation and a checkpoint every epoch, the best by validation loss kept."""
    import torch
    from transformers import TrainingArguments

    has_eval = bool(splits.validation)
    fp16, bf16 = mixed_precision(settings.precision)
    args = TrainingArguments(
        output_dir=str(settings.checkpoint_dir), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size or settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup, weight_decay=settings.weight_decay, seed=settings.seed,
        fp16=fp16, bf16=bf16, eval_strategy="epoch" if has_eval else "no", save_strategy="epoch",
        save_total_limit=settings.save_total_limit, load_best_model_at_end=has_eval,
        metric_for_best_model="loss" if has_eval else None, greater_is_better=False if has_eval else None,
        logging_steps=settings.logging_steps, logging_first_step=True, report_to="none",
        remove_unused_columns=False,  # the collator needs the image paths and captions
        dataloader_num_workers=_workers(settings), dataloader_pin_memory=torch.cuda.is_available(),
        # Several processes without a GPU: accelerate runs them data-parallel (gloo) only when told "CPU".
        use_cpu=int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available(),
        disable_tqdm=not settings.progress)
    # VisionEncoderDecoderModel.forward takes **kwargs but averages its loss itself: without this the Trainer
    # would skip dividing by gradient accumulation steps and multiply the loss by the number of GPUs.
    built.model.accepts_loss_kwargs = False
    failures = settings.unreadable_log
    return caption_trainer_class()(model=built.model, args=args, processing_class=built.tokenizer,
                   data_collator=CaptionCollator(built.tokenizer, built.processor, settings.max_caption_tokens),
                   train_dataset=CaptionDataset(splits.train, failures=failures),
                   eval_dataset=CaptionDataset(splits.validation, failures=failures) if has_eval else None,
                   callbacks=[evaluation_log(report)])


@functools.cache
def caption_trainer_class():
    """Trainer whose checkpoint loading goes through from_pretrained.

    transformers 5.24's Trainer loads checkpoints (``--resume``, best model at the end) with a plain
    ``load_state_dict``, but ViT's saved names differ from its module names in memory
    ("encoder.encoder.layer.0.attention.attention.query" vs "encoder.layers.0.attention.q_proj"), so the
    encoder's weights were silently left as they were. from_pretrained applies the renaming.
    """
    from transformers import Trainer

    class CaptionTrainer(Trainer):
        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            if self.is_fsdp_enabled or self.is_deepspeed_enabled:
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            load_weights_from(self.accelerator.unwrap_model(model or self.model), resume_from_checkpoint)

        def _load_best_model(self):
            if self.is_fsdp_enabled or self.is_deepspeed_enabled:
                return super()._load_best_model()
            log.info("loading the best model, %s", self.state.best_model_checkpoint)
            load_weights_from(self.accelerator.unwrap_model(self.model), self.state.best_model_checkpoint)

    return CaptionTrainer


def load_weights_from(model, folder: str) -> None:
    """Copy a saved model's weights into ``model`` in place (same architecture; every tensor must match)."""
    import torch

    saved = type(model).from_pretrained(folder, dtype=next(model.parameters()).dtype)
    with torch.no_grad():
        model.load_state_dict(saved.state_dict(), strict=True)


def mixed_precision(choice: str) -> tuple[bool, bool]:
    """(fp16, bf16) for the Trainer; half precision only where the device supports it."""
    import torch

    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if choice == "auto":
        return (cuda and not bf16_ok, bf16_ok)
    if choice == "fp16" and not cuda:
        raise TrainError("fp16 training needs a CUDA GPU; use --precision fp32 (or auto)")
    if choice == "bf16" and not bf16_ok:
        raise TrainError("bf16 training needs a GPU that supports it (Ampere or newer); use fp16 or fp32")
    return (choice == "fp16", choice == "bf16")


def _workers(settings: TrainSettings) -> int:
    import torch

    if settings.num_workers is not None:
        return settings.num_workers
    return min(4, os.cpu_count() or 1) if torch.cuda.is_available() else 0


BEST = "best"  # the metric prefix of the final evaluation, of the kept (best) checkpoint


def _checkpoint_step(folder: str | None) -> int | None:
    name = Path(folder).name if folder else ""
    return int(name.removeprefix("checkpoint-")) if name.removeprefix("checkpoint-").isdigit() else None


def _epoch_line(entry: dict) -> dict:
    return {"epoch": round(entry.get("epoch", 0), 2), "step": entry.get("step"), "validation_loss": entry["eval_loss"]}


def evaluation_log(report):
    from transformers import TrainerCallback

    class EvaluationLogCallback(TrainerCallback):
        """One line per evaluation, so a long run shows how it is going without a dashboard."""

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if not state.is_world_process_zero or not metrics:
                return
            if "eval_loss" in metrics:
                report(f"epoch {state.epoch or 0:.2f} (step {state.global_step}): "
                       f"validation loss {metrics['eval_loss']:.4f}")
            elif f"{BEST}_loss" in metrics:
                report(f"kept the best checkpoint ({Path(state.best_model_checkpoint or '?').name}): "
                       f"validation loss {metrics[f'{BEST}_loss']:.4f}")

    return EvaluationLogCallback()


# ---------------------------------------------------------------- saving

def save_published(built: Built, settings: TrainSettings, result: TrainResult, test_records, report=print) -> Path:
    """Beside the weights, config, generation config and tokenizer (Trainer.save_model): the image
    processor, the igcap marker, test metrics and the model card."""
    out = Path(settings.out)
    built.tokenizer.save_pretrained(out)
    built.processor.save_pretrained(out)
    write_marker(out, settings)
    if settings.caption_eval_samples and test_records:
        report(f"captioning {min(len(test_records), settings.caption_eval_samples)} test photos for the model card")
        result.metrics["test"] = evaluate_folder(out, test_records[: settings.caption_eval_samples],
                                                 settings.max_caption_tokens).to_dict()
    write_model_card(out, settings, result)
    (out / "training-metrics.json").write_text(json.dumps(_jsonable(result), indent=2, ensure_ascii=False))
    if not settings.keep_checkpoints:
        shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)
    if settings.push_to_hub:
        push_to_hub(out, settings.push_to_hub, report)
    report(f"saved to {out}")
    return out


def write_marker(out: Path, settings: TrainSettings) -> Path:
    """igcap-model.json: what the registry needs to list this folder as a model."""
    key = settings.key or Path(settings.out).name
    meta = {"key": key, "label": settings.label or key, "base": settings.base, "strategy": settings.strategy,
            "demo": settings.demo, "description": settings.description or f"{settings.base} fine-tuned, "
            f"strategy {settings.strategy}, on {Path(settings.data).name}."}
    path = Path(out) / MARKER_FILE
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_model_card(out: Path, settings: TrainSettings, result: TrainResult) -> Path:
    """README.md in the form the hub shows: data, strategy, hyper-parameters, metrics, how to load it."""
    path = Path(out) / "README.md"
    path.write_text(model_card(settings, result, base_sources(settings), hyper_parameters(settings)),
                    encoding="utf-8")
    return path


def push_to_hub(out: Path, repo_id: str, report=print) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id, ignore_patterns=[f"{CHECKPOINTS}/*"])
    report(f"uploaded to https://huggingface.co/{repo_id}")


def _jsonable(result: TrainResult) -> dict:
    data = asdict(result)
    data["out"] = str(result.out)
    return data


def hyper_parameters(settings: TrainSettings) -> dict:
    keys = ("epochs", "batch_size", "grad_accum", "learning_rate", "warmup", "weight_decay", "max_caption_tokens",
            "max_samples", "seed", "precision")
    return {k: getattr(settings, k) for k in keys}


# ---------------------------------------------------------------- four variants

def variant_settings(template: TrainSettings, out_root: Path) -> list[TrainSettings]:
    """The four published variants (both bases × both strategies) with the template's hyper-parameters.

    A source given for one base goes to that base's variants only: ``encoder``/``decoder`` to the base joined
    from an encoder and a decoder (vit-gpt2), ``base_model`` to the base that is a captioner already
    (nlpconnect). Copied to all four, they made the nlpconnect variants fresh ViT + GPT-2 joins, or started the
    vit-gpt2 ones from the nlpconnect captioner, under their own names."""
    out = []
    for spec in DEFAULT_MODELS:
        base = BASES[spec.base]
        parts = dict(encoder=template.encoder if base.encoder else None,
                     decoder=template.decoder if base.decoder else None,
                     base_model=template.base_model if base.model else None)
        out.append(replace(template, base=spec.base, strategy=spec.strategy, out=Path(out_root) / spec.key,
                           key=spec.key, label=spec.label, description=spec.description, **parts))
    return out


def train_all(template: TrainSettings, out_root: Path, report=print) -> dict[str, TrainResult]:
    """Train the four variants one after another into ``out_root/<key>``; the results of those trained now.

    Run again after a variant failed, it continues: a variant whose folder holds a finished model is skipped
    (``overwrite`` trains it again), and under ``resume`` a variant with checkpoints continues from its
    latest one while a variant without any starts fresh."""
    if template.resume not in (None, "last"):
        raise TrainError("train-all --resume continues each variant from its own latest checkpoint; to continue "
                         "from one checkpoint, use train --resume CHECKPOINT for its variant")
    results = {}
    for settings in variant_settings(template, out_root):
        if is_finished(settings.out) and not settings.overwrite:
            report(f"=== {settings.key}: already trained in {settings.out}, skipped (--overwrite trains it again; "
                   f"train --resume --out {settings.out} continues it)")
            continue
        if settings.resume and not any(settings.checkpoint_dir.glob("checkpoint-*")):
            settings = replace(settings, resume=None)  # nothing of it to continue: this one starts now
        report(f"=== {settings.key}: base {settings.base}, strategy {settings.strategy}"
               f"{', continuing from its latest checkpoint' if settings.resume else ''}")
        results[settings.key] = train(settings, report)
    return results


def is_finished(out: Path) -> bool:
    """Whether ``out`` holds a model whose training finished: save_published writes training-metrics.json
    last, after the weights and the model card."""
    return (Path(out) / "config.json").is_file() and (Path(out) / "training-metrics.json").is_file()
