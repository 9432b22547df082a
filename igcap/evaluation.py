"""Evaluating a caption model on held-out photos: validation loss plus the text metrics of igcap.metrics.

Captions are generated through the same engine the app uses (igcap.loading + igcap.captioner), so the
numbers describe what a user will see; weights are kept in full precision (no int8) to measure the model.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from igcap.captioner import PixelCache, caption_with
from igcap.data import LABEL_IGNORE, CaptionCollator, CaptionDataset
from igcap.decoding import DecodingSettings
from igcap.images import WORKING_SIDE, PhotoError, load_photo_file
from igcap.loading import LoadOptions, load_captioner
from igcap.metrics import caption_metrics
from igcap.registry import MARKER_FILE, ModelSpec, load_registry, spec_from_marker

log = logging.getLogger(__name__)
PHOTOS_PER_CHUNK = 64  # photos decoded and preprocessed at once, so a large test set never sits in memory


@dataclass
class EvalReport:
    model: str
    photos: int
    metrics: dict  # igcap.metrics.caption_metrics, plus validation_loss when computed
    examples: list[dict] = field(default_factory=list)  # a few {"reference", "caption"} pairs
    unreadable: int = 0  # photos skipped because they could not be decoded

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A readable two-column table of the metrics."""
        names = {"validation_loss": "validation loss", "bleu": "BLEU", "rouge_l": "ROUGE-L",
                 "distinct_1": "distinct-1", "distinct_2": "distinct-2", "repetition_rate": "repetition rate",
                 "mean_words": "mean length (words)", "eos_share": "ended with EOS", "captions": "captions"}
        rows = [(names.get(k, k), _fmt(v)) for k, v in self.metrics.items()]
        width = max(len(n) for n, _ in rows)
        lines = [f"{self.model} on {self.photos} photos"] + [f"  {n:<{width}}  {v}" for n, v in rows]
        return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def spec_for(model: str, registry: dict[str, ModelSpec] | None = None) -> ModelSpec:
    """A registry key, or a model folder (described by its marker if it has one)."""
    path = Path(model).expanduser()
    if path.is_dir():
        spec = spec_from_marker(path) if (path / MARKER_FILE).is_file() else None
        return spec or ModelSpec(key=path.name, label=path.name, source=str(path.resolve()))
    if registry is None:
        registry = load_registry()
    if model not in registry:
        raise KeyError(f"no model {model!r}: give a model folder or one of {', '.join(registry)}")
    return registry[model]


def default_decoding(max_tokens: int = 64):
    """Greedy and unconstrained: the metrics should show the model's own habits (repeats included)."""
    return DecodingSettings(strategy="greedy", no_repeat_ngram_size=0, max_new_tokens=max_tokens,
                            drop_fragment=False)


def evaluate_spec(spec: ModelSpec, records, decoding=None, device: str = "auto", with_loss: bool = True,
                  batch_size: int = 16, max_tokens: int = 64) -> EvalReport:
    """Caption ``records`` (CaptionRecords) with one model and score the captions against theirs."""
    loaded = load_captioner(spec, LoadOptions(device=device, quantize=False, share_weights=False))
    photos, results, unreadable = _captions(loaded, records, decoding or default_decoding(max_tokens), batch_size)
    references = [r.caption for r in photos]
    metrics = {}
    if with_loss and photos:
        metrics["validation_loss"] = validation_loss(loaded, photos, max_tokens, batch_size)
    texts = [r.text for r in results]
    metrics.update(caption_metrics(texts, references, [r.ended_with_eos for r in results],
                                   raw=[r.raw_text for r in results]))
    examples = [{"reference": ref, "caption": text} for ref, text in list(zip(references, texts))[:5]]
    return EvalReport(spec.key, len(photos), metrics, examples, unreadable)


def caption_records(spec: ModelSpec, records, decoding=None, device: str = "cpu", quantize: bool = False,
                    batch_size: int = 16) -> list[tuple[str, str]]:
    """(reference, generated caption) for each readable photo, through the app's loading and captioning."""
    loaded = load_captioner(spec, LoadOptions(device=device, quantize=quantize, share_weights=False))
    photos, results, _ = _captions(loaded, records, decoding or default_decoding(), batch_size)
    return [(record.caption, r.text) for record, r in zip(photos, results)]


def evaluate_folder(folder: Path, records, max_tokens: int = 64) -> EvalReport:
    return evaluate_spec(spec_for(str(folder)), records, max_tokens=max_tokens)


def _captions(loaded, records, decoding, batch_size: int):
    """(the records whose photos decode, a CaptionResult for each, how many did not), through the app's
    captioning path: photos decoded as the app does (at most 1080 px), PHOTOS_PER_CHUNK at a time. (All of
    them were decoded first, at full size: 150 photos of 1080 × 1080 held 501 MiB.)"""
    photos, results, unreadable = [], [], 0
    for start in range(0, len(records), PHOTOS_PER_CHUNK):
        chunk = []
        for record in records[start:start + PHOTOS_PER_CHUNK]:
            try:
                chunk.append((record, load_photo_file(record.image, max_side=WORKING_SIDE).image))
            except PhotoError as err:
                unreadable += 1
                log.warning("skipping %s: %s", record.image, err.message)
        if chunk:
            results += caption_with(loaded, PixelCache([image for _, image in chunk]), decoding, batch_size)
            photos += [record for record, _ in chunk]
        del chunk
    return photos, results, unreadable


def validation_loss(loaded, records, max_tokens: int = 64, batch_size: int = 16) -> float:
    """Mean cross-entropy per caption token (EOS included), over all the records' tokens: the same whatever
    the batch size. (The Trainer's eval_loss, in the model card, averages each batch's mean token loss
    weighted by the batch's rows, which differs from this in about the third decimal.)"""
    import torch

    loaded = loaded.transformers()  # the loss is transformers' forward with labels
    collate = CaptionCollator(loaded.tokenizer, loaded.processor, max_tokens)
    dataset = CaptionDataset(records)
    total, tokens = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        items = [item for i in range(start, min(start + batch_size, len(dataset)))
                 if (item := dataset.readable(i)) is not None]  # a photo that does not decode is left out
        if not items:
            continue
        batch = collate(items)
        labels = batch["labels"].to(loaded.device)
        pixels = batch["pixel_values"].to(loaded.device, loaded.input_dtype)
        with torch.inference_mode():
            loss = loaded.model(pixel_values=pixels, labels=labels).loss.float().item()
        count = int((labels != LABEL_IGNORE).sum())
        total, tokens = total + loss * count, tokens + count
    return total / tokens if tokens else float("nan")
