"""The model card (README.md) written next to every trained model, in the form the Hugging Face hub shows."""

from __future__ import annotations

import shlex
from pathlib import Path

from igcap.config import env_key, key_of_variable


def model_card(settings, result, sources, hyper_parameters: dict) -> str:
    """Markdown with hub metadata: what the model is, its data, strategy, hyper-parameters and metrics.

    ``settings`` and ``result`` are igcap.train's TrainSettings and TrainResult, ``sources`` its
    BaseSources (where the base came from), ``hyper_parameters`` the table's rows.
    """
    key = settings.key or Path(settings.out).name
    variable = env_key(key)  # the registry keys the model it adds by the variable's name, not by `key`
    start = sources.model or f"{sources.encoder} + {sources.decoder}"
    demo = ("\n> **Demo model**: trained on synthetic coloured shapes, not on real photos. It shows that the "
            "pipeline works; its captions only make sense for pictures of shapes.\n" if settings.demo else "")
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped.items())) or "none"
    return "\n".join([
        "---", "library_name: transformers", "pipeline_tag: image-to-text",
        "tags: [image-captioning, vision-encoder-decoder, instagram, igcap]", "---", "",
        f"# {settings.label or key}", demo,
        settings.description or f"A ViT-GPT2 caption model fine-tuned by igcap ({settings.strategy}).", "",
        "## Training",
        f"- Base: `{settings.base}` starting from `{start}`",
        f"- Strategy: `{settings.strategy}` — {result.trainable:,} trainable of {result.total:,} parameters",
        f"- Data: `{Path(settings.data).name}` — split {result.splits} (seed {settings.seed}); skipped rows: {skipped}",
        "- Labels: caption tokens + end-of-text, padding ignored by the loss (-100); pad = eos = decoder start",
        "", "| hyper-parameter | value |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in hyper_parameters.items()],
        "", "## Metrics", _metrics_table(result.metrics), "",
        "## Use", "```bash",
        f"{variable}={shlex.quote(str(Path(settings.out).resolve()))} python -m igcap caption photo.jpg "
        f"--models {shlex.quote(key_of_variable(variable))}", "```",
        "or with transformers: `VisionEncoderDecoderModel.from_pretrained(folder)` with the tokenizer and image "
        "processor saved beside it.", ""])


def _metrics_table(metrics: dict) -> str:
    best = metrics.get("best_epoch")
    kept = f" (the best epoch's checkpoint, epoch {best:g})" if isinstance(best, (int, float)) else ""
    rows = [("validation loss before training", metrics.get("validation_loss_before")),
            (f"validation loss after training{kept}", metrics.get("validation_loss"))]
    test = (metrics.get("test") or {}).get("metrics", {})
    rows += [(f"test {name}", test.get(name)) for name in
             ("bleu", "rouge_l", "distinct_1", "distinct_2", "repetition_rate", "mean_words", "eos_share")]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in rows if isinstance(value, (int, float))]
    lines += ["", "Validation losses are the Trainer's (each batch's mean token loss, averaged over batches); "
              "`igcap evaluate` reports the mean over all tokens, which may differ in the third decimal."]
    history = metrics.get("history") or []
    if history:
        lines += ["", "Validation loss by epoch: " + ", ".join(f"{h['epoch']:g}: {h['validation_loss']:.4f}"
                                                          for h in history)]
    return "\n".join(lines)

