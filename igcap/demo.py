"""The four demo models, trained offline in minutes on a CPU from synthetic shapes (igcap.shapes).

They mirror the four published variants at toy scale: two tiny "bases" (an encoder + decoder pair, and a
ready-made captioner, like ``vit-gpt2`` and ``nlpconnect``), each pretrained briefly on plain descriptions
of the shapes, then fine-tuned on the Instagram-style captions with both strategies.

The synthetic data and the tiny models' pieces live in igcap.shapes; their names are importable from here too.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from igcap.data import load_splits
from igcap.evaluation import caption_records, spec_for
from igcap.registry import DEFAULT_MODELS
from igcap.shapes import (BACKGROUNDS, EMOJI, HASHTAGS, IMAGE_SIDE, PHRASE, SHAPE_COLOURS, SHAPES, TEMPLATES,  # noqa: F401
                          DemoData, Shot, TinyConfig, demo_caption_corpus, draw_shot, make_demo_processor,
                          make_demo_tokenizer, make_tiny_captioner, named_phrase, names_same_shape, photo_bytes_of,
                          random_shot, save_random_base, split_into_parts, write_demo_data)
from igcap.threads import torch_threads  # noqa: F401  (its old home)
from igcap.train import TrainSettings, train

DEMO_KEYS = tuple(spec.key for spec in DEFAULT_MODELS)  # one demo model per published one


def held_out_records(data: Path, seed: int = 42):
    """The test split of a demo dataset (igcap.data's split with training's default seed): photos no
    model trained on it has seen."""
    return load_splits(data, seed)[0].test


def shape_accuracy(model: Path | str, records, quantize: bool = False) -> float:
    """Share of photos whose generated caption names the right colour and shape (greedy, via the engine)."""
    pairs = caption_records(spec_for(str(model)), records, quantize=quantize)
    return sum(names_same_shape(text, ref) for ref, text in pairs) / len(pairs) if pairs else 0.0


@dataclass(frozen=True)
class DemoPlan:
    """How much training the demo models get; the defaults took 82 s on 2 shared CPU cores."""

    photos: int = 600  # synthetic photos written when no data folder is given
    pretrain_epochs: float = 20  # plain descriptions, every parameter, from random weights
    finetune_epochs: float = 8  # Instagram-style captions, per variant
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 42  # data, split, initialisation; 42 is training's default, so held_out_records matches
    config: TinyConfig = TinyConfig()


def build_demo_models(folder: Path, data: Path | None = None, plan: DemoPlan = DemoPlan(),
                      report=print) -> dict[str, Path]:
    """Train the four demo variants into ``folder/<key>`` (each with an igcap-model.json marker).

    Writes synthetic data to ``folder/_data`` unless ``data`` is given, pretrains the two tiny bases under
    ``folder/_bases`` and fine-tunes both strategies on each. Returns {key: model folder}.
    """
    folder = Path(folder)
    if data is None:
        data = folder / "_data"
        if not data.exists():
            write_demo_data(data, n=plan.photos, seed=plan.seed)
    bases = _pretrain_bases(folder / "_bases", plan, report)
    out = {}
    for spec in DEFAULT_MODELS:
        key, base, strategy = spec.key, spec.base, spec.strategy
        settings = TrainSettings(
            data=Path(data), out=folder / key, base=base, strategy=strategy, **bases[base],
            epochs=plan.finetune_epochs, batch_size=plan.batch_size, learning_rate=plan.learning_rate,
            seed=plan.seed, key=key, label=_demo_label(base, strategy), demo=True, keep_checkpoints=False,
            overwrite=True,
            description=f"Tiny {base}-style model, {strategy} fine-tuned on synthetic shapes (not real photos).",
            caption_eval_samples=40, progress=False)
        report(f"training demo model {key}")
        out[key] = train(settings, report=report).out
    return out


def _demo_label(base: str, strategy: str) -> str:
    return f"{'ViT-GPT2' if base == 'vit-gpt2' else 'nlpconnect'} · {strategy}"


def _pretrain_bases(folder: Path, plan: DemoPlan, report) -> dict[str, dict[str, str]]:
    """The two tiny bases, as source overrides for TrainSettings; reused if already there."""
    sources = {}
    for i, name in enumerate(("nlpconnect", "vit-gpt2")):
        model_dir = folder / name
        if not (model_dir / "config.json").is_file():
            random_dir = save_random_base(folder / f"{name}-random", plan.config, seed=plan.seed + i)
            descriptions = folder / "descriptions"
            if not descriptions.exists():
                write_demo_data(descriptions, n=plan.photos, seed=plan.seed + 1, style="description")
            report(f"pretraining the tiny {name} base on plain descriptions")
            train(TrainSettings(
                data=descriptions, out=model_dir, base="nlpconnect", strategy="all", base_model=str(random_dir),
                epochs=plan.pretrain_epochs, batch_size=plan.batch_size, learning_rate=plan.learning_rate,
                seed=plan.seed + i, key=f"tiny-{name}-base", demo=True, keep_checkpoints=False, overwrite=True,
                caption_eval_samples=0, progress=False,
                description="Tiny base pretrained on plain descriptions of synthetic shapes."), report=report)
            shutil.rmtree(random_dir, ignore_errors=True)
        if name == "nlpconnect":
            sources[name] = {"base_model": str(model_dir)}
        else:
            parts = folder / "vit-gpt2-parts"
            if not (parts / "decoder" / "config.json").is_file():
                split_into_parts(model_dir, parts / "encoder", parts / "decoder")
            sources[name] = {"encoder": str(parts / "encoder"), "decoder": str(parts / "decoder")}
    return sources

