"""Fine-tuning: freezing by strategy, token ids, settings, and the whole pipeline on synthetic shapes.

One tiny model is trained once for the module (through the CLI) and shared by the end-to-end tests.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from igcap import demo
from igcap.cli import main
from igcap.registry import MARKER_FILE
from igcap.train import (TrainError, TrainSettings, apply_strategy, base_sources, caption_trainer_class,
                         count_parameters, load_weights_from, mixed_precision, resume_point, set_token_ids, train)
from tests import builders

FULL_SIZE_TOTAL = 239_195_904
FULL_SIZE_LAST_BLOCK = 48_050_688
EPOCHS = 18  # enough for the tiny model to name colour and shape on held-out photos


# ---------------------------------------------------------------- freezing

@pytest.fixture(scope="module")
def full_size_model():
    """ViT-base/16 + GPT-2 small with cross-attention, random weights (~6 s, ~1 GB)."""
    from igcap.architecture import random_captioner

    return random_captioner()


@pytest.mark.slow
@pytest.mark.parametrize("strategy, trainable", [("last-block", FULL_SIZE_LAST_BLOCK), ("all", FULL_SIZE_TOTAL)])
def test_full_size_trainable_counts(full_size_model, strategy, trainable):
    apply_strategy(full_size_model, strategy)
    assert count_parameters(full_size_model) == (trainable, FULL_SIZE_TOTAL)


def test_last_block_trains_the_last_block_norm_and_tied_head_only(tokenizer):
    model = builders.make_tiny_model(tokenizer, layers=3)
    apply_strategy(model, "last-block")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("decoder.transformer.h.2.", "decoder.transformer.ln_f.",
                                           "decoder.transformer.wte.", "decoder.lm_head.")) for n in trainable)
    assert any("crossattention" in n for n in trainable)  # the last block's cross-attention learns too
    head = model.decoder.lm_head.weight
    assert head.requires_grad and head is model.decoder.transformer.wte.weight  # tied: the embeddings train too
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not model.decoder.transformer.h[0].attn.c_attn.weight.requires_grad
    apply_strategy(model, "all")  # the original never unfroze: "all" must really mean all
    assert all(p.requires_grad for p in model.parameters())


def test_token_ids_come_from_the_tokenizer(tokenizer):
    model = builders.make_tiny_model(tokenizer)
    model.config.pad_token_id = model.generation_config.pad_token_id = None
    set_token_ids(model, tokenizer)
    eos = tokenizer.eos_token_id
    for config in (model.config, model.generation_config):
        assert (config.decoder_start_token_id, config.pad_token_id, config.eos_token_id) == (eos, eos, eos)
    assert model.generation_config.bos_token_id == eos


# ---------------------------------------------------------------- settings

@pytest.mark.parametrize("change, message", [
    ({"strategy": "some"}, "strategy"), ({"base": "nope"}, "base"), ({"precision": "fp8"}, "precision"),
    ({"epochs": 0}, "epochs"), ({"learning_rate": 5}, "learning rate"), ({"max_caption_tokens": 1}, "caption"),
    ({"validation": 0.5, "test": 0.5}, "fractions"),
    ({"logging_steps": 0}, "logging steps"),  # a traceback from the Trainer
    ({"num_workers": -1}, "workers"),  # a traceback from the data loader
    ({"caption_eval_samples": -5}, "caption eval samples"),  # meant "all test photos but the last 5"
    ({"eval_batch_size": 0}, "batch size"),  # 0 quietly meant the training batch size
    ({"save_total_limit": 0}, "save total limit"),  # 0 quietly meant "keep every checkpoint"
])
def test_settings_refuse_impossible_values(tmp_path, change, message):
    with pytest.raises(TrainError, match=message):
        TrainSettings(data=tmp_path, out=tmp_path / "out", **change)


def test_base_sources_default_to_the_hub_and_follow_overrides(tmp_path):
    hub = base_sources(TrainSettings(data=tmp_path, out=tmp_path))
    assert (hub.encoder, hub.decoder, hub.tokenizer) == ("google/vit-base-patch16-224-in21k", "gpt2", "gpt2")
    local = base_sources(TrainSettings(data=tmp_path, out=tmp_path, encoder="/m/enc", decoder="/m/dec"))
    assert (local.encoder, local.decoder, local.tokenizer, local.processor) == ("/m/enc", "/m/dec", "/m/dec", "/m/enc")
    nlp = base_sources(TrainSettings(data=tmp_path, out=tmp_path, base="nlpconnect", base_model="/m/nlp"))
    assert (nlp.model, nlp.tokenizer, nlp.processor) == ("/m/nlp", "/m/nlp", "/m/nlp")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_half_precision_is_refused_without_a_gpu():
    assert mixed_precision("auto") == (False, False)
    with pytest.raises(TrainError, match="CUDA"):
        mixed_precision("fp16")


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(TrainError, match="nothing to resume"):
        resume_point(TrainSettings(data=tmp_path, out=tmp_path / "out", resume="last"))


def test_a_saved_model_is_never_trained_over_by_accident(tmp_path):
    from igcap.train import check_output_folder

    out = tmp_path / "out"
    (out / "checkpoints" / "checkpoint-10").mkdir(parents=True)
    (out / "config.json").write_text("{}")
    with pytest.raises(TrainError, match="already holds"):
        check_output_folder(TrainSettings(data=tmp_path, out=out))
    check_output_folder(TrainSettings(data=tmp_path, out=out, overwrite=True))
    assert (out / "config.json").is_file() and not (out / "checkpoints").exists()


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--base", "tiny"]) == 2
    assert "no dataset at" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--epochs", "0"]) == 2
    assert "epochs" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end on synthetic shapes

@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    demo.write_demo_data(root, n=500, seed=0)
    return root


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """A tiny model trained from random weights by ``python -m igcap train`` (about 30 s on one thread)."""
    out = tmp_path_factory.mktemp("trained") / "shapes-model"
    argv = ["train", "--data", str(shapes), "--out", str(out), "--base", "tiny", "--strategy", "all",
            "--epochs", str(EPOCHS), "--learning-rate", "3e-3", "--batch-size", "16", "--seed", "42",
            "--save-total-limit", "1", "--caption-eval-samples", "8", "--demo", "--no-progress",
            "--logging-steps", "1000", "--key", "shapes"]
    assert main(argv) == 0
    return out


@pytest.mark.slow
def test_training_lowers_the_validation_loss(trained):
    metrics = json.loads((trained / "training-metrics.json").read_text())["metrics"]
    assert metrics["validation_loss"] < 0.25 * metrics["validation_loss_before"]
    epochs = [h["epoch"] for h in metrics["history"]]
    assert epochs == sorted(epochs) and epochs[-1] == EPOCHS


@pytest.mark.slow
def test_trained_model_names_colour_and_shape_of_held_out_photos(trained, shapes):
    held_out = demo.held_out_records(shapes, seed=42)  # training's split: never seen in training
    assert len(held_out) >= 40
    assert demo.shape_accuracy(trained, held_out) >= 0.9


@pytest.mark.slow
def test_saved_folder_has_the_published_form(trained):
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "preprocessor_config.json", "README.md", MARKER_FILE):
        assert (trained / name).is_file(), name
    eos = json.loads((trained / "tokenizer_config.json").read_text()).get("eos_token")
    assert eos == "<|endoftext|>"
    generation = json.loads((trained / "generation_config.json").read_text())
    config = json.loads((trained / "config.json").read_text())
    assert generation["decoder_start_token_id"] == generation["pad_token_id"] == generation["eos_token_id"]
    assert config["decoder_start_token_id"] == config["pad_token_id"] == generation["eos_token_id"]
    marker = json.loads((trained / MARKER_FILE).read_text())
    assert marker | {"description": ""} == {"key": "shapes", "label": "shapes", "base": "tiny", "strategy": "all",
                                            "demo": True, "description": ""}
    card = (trained / "README.md").read_text()
    assert "Demo model" in card and "279,552 trainable" in card and "validation loss after training" in card


@pytest.mark.slow
def test_saved_folder_loads_and_captions_through_the_engine(trained, shapes, tmp_path):
    """The app's own path: the registry finds it as a demo model, the cache loads it (int8 on CPU), and the
    captioner writes captions that end by themselves."""
    from igcap.captioner import Captioner
    from igcap.config import Settings
    from igcap.images import load_photo_file
    from igcap.loading import LoadOptions, ModelCache
    from igcap.registry import load_registry

    shutil.copytree(trained, tmp_path / "shapes", ignore=shutil.ignore_patterns("checkpoints"))
    registry = load_registry(Settings(data_dir=tmp_path, demo_models_dir=tmp_path))
    spec = registry["demo-shapes"]
    assert spec.demo and "synthetic shapes" in spec.label
    photos = [load_photo_file(r.image).image for r in demo.held_out_records(shapes, seed=42)[:4]]
    cache = ModelCache({spec.key: spec}, LoadOptions(device="cpu"))
    (run,) = Captioner(cache).caption(photos, [spec.key])
    assert run.ok and len(run.results) == 4
    assert all(demo.named_phrase(r.text) and r.ended_with_eos for r in run.results)


@pytest.mark.slow
def test_evaluate_command_prints_every_metric(trained, shapes, capsys):
    argv = ["evaluate", "--model", str(trained), "--data", str(shapes), "--limit", "16", "--json", "--device", "cpu"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] == 16
    assert set(report["metrics"]) >= {"validation_loss", "bleu", "rouge_l", "distinct_1", "distinct_2",
                                      "repetition_rate", "mean_words", "eos_share"}
    assert report["metrics"]["eos_share"] > 0.9 and report["metrics"]["bleu"] > 5


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(trained, shapes, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(trained, out)
    (checkpoint,) = (out / "checkpoints").glob("checkpoint-*")
    step = int(checkpoint.name.split("-")[1])
    settings = TrainSettings(data=shapes, out=out, base="tiny", strategy="all", epochs=EPOCHS + 1,
                             learning_rate=3e-3, batch_size=16, seed=42, resume="last", caption_eval_samples=0,
                             progress=False, logging_steps=1000)
    lines = []
    with demo.torch_threads(1):
        result = train(settings, report=lines.append)
    assert "validation_loss_before" not in result.metrics
    evaluations = {line.split(":")[0] for line in lines if "validation loss" in line and line.startswith("epoch")}
    assert evaluations == {f"epoch {EPOCHS + 1}.00 (step {step + step // EPOCHS})"}  # only the new epoch ran
    assert sum(line.startswith("kept the best checkpoint") for line in lines) == 1
    assert [h["step"] for h in result.metrics["history"]][-2:] == [step, step + step // EPOCHS]
    assert result.metrics["validation_loss"] < 0.25 * json.loads(
        (trained / "training-metrics.json").read_text())["metrics"]["validation_loss_before"]


@pytest.mark.slow
def test_checkpoint_loading_restores_every_weight(trained):
    """Trainer's own checkpoint loading (plain load_state_dict) misses the ViT encoder's renamed weights in
    transformers 5.24; ours must restore all of them."""
    from transformers import VisionEncoderDecoderModel

    (checkpoint,) = (trained / "checkpoints").glob("checkpoint-*")
    fresh = demo.make_tiny_captioner(demo.make_demo_tokenizer(), seed=123)
    load_weights_from(fresh, str(checkpoint))
    saved = VisionEncoderDecoderModel.from_pretrained(checkpoint).state_dict()
    assert all(torch.equal(tensor, saved[name]) for name, tensor in fresh.state_dict().items())
    assert issubclass(caption_trainer_class(), __import__("transformers").Trainer)


@pytest.mark.parametrize("argv, message", [
    (["--logging-steps", "0"], "logging steps"), (["--workers", "-1"], "workers"),
    (["--caption-eval-samples", "-5"], "caption eval samples"),
])
def test_train_options_out_of_range_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--base", "tiny", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--precision", "bf16", "--device", "cpu"], "measures fp32 on a CPU"),  # it measured fp32 without a word
    (["--precision", "fp16", "--device", "cpu"], "measures fp32 on a CPU"),
    pytest.param(["--device", "cuda"], "has no cuda device", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="checks the refusal without a GPU")),  # was an AssertionError traceback
])
def test_train_bench_refuses_what_the_device_cannot_do(capsys, argv, message):
    assert main(["train-bench", "--strategy", "last-block", "--steps", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_throughput_benchmark_times_training_steps(tokenizer):
    from igcap.train_bench import measure

    model = builders.make_tiny_model(tokenizer)
    before = model.decoder.lm_head.weight.detach().clone()
    with demo.torch_threads(1):
        result = measure("last-block", batch_size=2, steps=2, warmup=1, caption_tokens=8, device="cpu", model=model)
    assert result.samples_per_second > 0 and result.precision == "fp32" and "samples/s" in result.line()
    assert not torch.equal(before, model.decoder.lm_head.weight)  # the steps really trained


# ---------------------------------------------------------------- the published bases, offline

def test_default_nlpconnect_base_loads_from_the_hub_cache(hub_cache, tmp_path):
    """The real hub id through the real hub code path (a tiny model sits in the offline cache under it)."""
    from igcap.train import build_model

    built = build_model(base_sources(TrainSettings(data=tmp_path, out=tmp_path, base="nlpconnect")), "last-block")
    assert 0 < built.trainable < built.total
    assert built.model.config.decoder_start_token_id == built.tokenizer.eos_token_id


@pytest.mark.slow
def test_train_all_gives_each_base_only_its_own_sources(tmp_path):
    """--encoder/--decoder were copied into all four variants (the nlpconnect ones became fresh ViT + GPT-2
    joins) and --base-model into all four (the vit-gpt2 ones started from the nlpconnect captioner)."""
    from igcap.train import variant_settings

    template = TrainSettings(data=tmp_path, out=tmp_path / "o", encoder="/m/enc", decoder="/m/dec",
                             base_model="/m/nlp")
    sources = {s.key: base_sources(s) for s in variant_settings(template, tmp_path / "models")}
    for key in ("vit-gpt2-last-block", "vit-gpt2-all"):
        assert (sources[key].encoder, sources[key].decoder, sources[key].model) == ("/m/enc", "/m/dec", None)
    for key in ("nlpconnect-last-block", "nlpconnect-all"):
        assert (sources[key].model, sources[key].encoder, sources[key].decoder) == ("/m/nlp", None, None)
    plain = {s.key: base_sources(s) for s in variant_settings(TrainSettings(data=tmp_path, out=tmp_path), tmp_path)}
    assert plain["nlpconnect-all"].model == "nlpconnect/vit-gpt2-image-captioning"
    assert plain["vit-gpt2-all"].encoder == "google/vit-base-patch16-224-in21k"


def test_train_all_makes_the_four_variants_the_registry_picks_up(hub_cache, shapes, tmp_path):
    from igcap.config import Settings
    from igcap.registry import DEFAULT_KEYS, load_registry

    parts = tmp_path / "parts"
    demo.split_into_parts(builders.save_tiny_model(tmp_path / "tiny", seed=4), parts / "encoder", parts / "decoder")
    out = tmp_path / "models"
    argv = ["train-all", "--data", str(shapes), "--out", str(out), "--encoder", str(parts / "encoder"),
            "--decoder", str(parts / "decoder"), "--epochs", "1", "--max-samples", "24", "--batch-size", "8",
            "--caption-eval-samples", "2", "--no-checkpoints", "--no-progress"]
    with demo.torch_threads(1):
        assert main(argv) == 0
    for key in DEFAULT_KEYS:
        marker = json.loads((out / key / MARKER_FILE).read_text())
        assert marker["key"] == key and f"{marker['base']}-{marker['strategy']}" == key and not marker["demo"]
    registry = load_registry(Settings(data_dir=tmp_path, models_dir=out))
    assert all(registry[key].source == str(out / key) for key in DEFAULT_KEYS)
    counts = {key: json.loads((out / key / "training-metrics.json").read_text())["trainable"] for key in DEFAULT_KEYS}
    assert counts["vit-gpt2-last-block"] < counts["vit-gpt2-all"]
    assert counts["nlpconnect-last-block"] < counts["nlpconnect-all"]


def test_evaluate_accepts_a_registry_key_and_explains_unknown_ones(hub_cache, shapes, capsys):
    argv = ["evaluate", "--model", "nlpconnect-all", "--data", str(shapes), "--limit", "3", "--no-loss", "--json",
            "--device", "cpu", "--max-caption-tokens", "8"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "nlpconnect-all" and report["photos"] == 3 and "validation_loss" not in report["metrics"]
    assert main(["evaluate", "--model", "no-such-model", "--data", str(shapes)]) == 2
    assert "no model 'no-such-model'" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_trains_data_parallel_unchanged(shapes, tmp_path):
    """The same command under torchrun: two processes split each epoch (gloo on a CPU, NCCL on GPUs)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "igcap", "train",
           "--data", str(shapes), "--out", str(out), "--base", "tiny", "--strategy", "all", "--epochs", "1",
           "--max-samples", "80", "--batch-size", "8", "--caption-eval-samples", "0", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    history = json.loads((out / "training-metrics.json").read_text())["metrics"]["history"]
    assert history[-1]["step"] == 64 // (8 * 2)  # 64 training rows, batch 8 on each of 2 processes
    assert done.stdout.count("epoch 0.00 (step 0): validation loss") == 1  # one process reports


@pytest.mark.slow
def test_the_last_epochs_loss_is_its_own_not_the_best_checkpoints(tmp_path, monkeypatch):
    """The final evaluation (the best checkpoint, reloaded) was logged at the last epoch's step and replaced
    that epoch's loss in the history and the model card: a worse last epoch (overfitting) looked like the best."""
    import torch
    from transformers import TrainerCallback

    import importlib

    from igcap.threads import torch_threads

    training = importlib.import_module("igcap.train")  # igcap.train is also the package's train() function

    class SpoilTheLastEpoch(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if state.epoch >= args.num_train_epochs - 1e-6:
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(torch.randn_like(p) * 0.5)

    real = training.make_trainer

    def make_trainer(*args, **kwargs):
        trainer = real(*args, **kwargs)
        trainer.add_callback(SpoilTheLastEpoch())
        return trainer

    monkeypatch.setattr(training, "make_trainer", make_trainer)
    data = tmp_path / "data"
    demo.write_demo_data(data, n=80, seed=0)
    lines = []
    settings = TrainSettings(data=data, out=tmp_path / "m", base="tiny", strategy="all", epochs=3, batch_size=16,
                             learning_rate=0.01, seed=42, caption_eval_samples=0, progress=False, logging_steps=1000)
    with torch_threads(1):
        result = training.train(settings, report=lines.append)
    history = {h["epoch"]: h["validation_loss"] for h in result.metrics["history"]}
    assert history[3.0] > 2 * history[2.0]  # the spoilt epoch, as it was
    assert result.metrics["validation_loss"] == pytest.approx(history[2.0]) and result.metrics["best_epoch"] == 2.0
    card = (tmp_path / "m" / "README.md").read_text()
    assert f"3: {history[3.0]:.4f}" in card and "the best epoch's checkpoint, epoch 2" in card
    assert sum("epoch 3.00" in line for line in lines) == 1 and any("kept the best checkpoint" in l for l in lines)


def test_continuing_from_a_captioner_without_tokenizer_files_uses_the_bases(hub_cache, tmp_path, capsys):
    """The published repos may lack tokenizer and processor files; the loader falls back to the base's, and
    `train --base-model` ended in a traceback ("Couldn't instantiate the backend tokenizer")."""
    bare = builders.save_tiny_model(tmp_path / "bare", seed=1, tokenizer=False, processor=False)
    assert not any(p.name.startswith(("tokenizer", "vocab", "preprocessor")) for p in bare.iterdir())
    demo.write_demo_data(tmp_path / "data", n=20, seed=0)
    argv = ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--base", "vit-gpt2",
            "--base-model", str(bare), "--strategy", "last-block", "--epochs", "1", "--caption-eval-samples", "0",
            "--no-progress", "--no-checkpoints"]
    with demo.torch_threads(1):
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert "has no tokenizer of its own: using gpt2's" in out and "has no image processor of its own" in out
    assert (tmp_path / "out" / "tokenizer.json").is_file() or (tmp_path / "out" / "tokenizer_config.json").is_file()


@pytest.mark.slow
def test_evaluate_says_when_its_held_out_photos_are_not_the_trainings(trained, shapes, tmp_path, capsys):
    """The split changed (by photo, by hash): a model trained before it, or evaluated with another seed, is
    scored on photos its training may have seen; evaluate says so (it scored them without a word)."""
    base = ["evaluate", "--data", str(shapes), "--limit", "2", "--no-loss", "--json", "--max-caption-tokens", "8"]
    record = json.loads((trained / "training-metrics.json").read_text())
    assert record["split"] == {"version": 2, "seed": 42, "validation": 0.1, "test": 0.1, "max_samples": None}
    with demo.torch_threads(1):
        assert main([*base, "--model", str(trained)]) == 0
        assert "note:" not in capsys.readouterr().err
        assert main([*base, "--model", str(trained), "--seed", "7"]) == 0
        assert "trained with seed 42" in capsys.readouterr().err
        older = tmp_path / "older"
        shutil.copytree(trained, older, ignore=shutil.ignore_patterns("checkpoints"))
        del record["split"]
        (older / "training-metrics.json").write_text(json.dumps(record))
        assert main([*base, "--model", str(older)]) == 0
        assert "an earlier split (rows shuffled, not photos)" in capsys.readouterr().err


def test_a_photo_that_cannot_be_read_while_training_neither_stops_the_run_nor_goes_unreported(tmp_path, monkeypatch):
    """With batch size 1 a photo that failed to decode left an empty batch: DataError, even in the evaluation
    before training, and no checkpoint. Photos dropped while training were counted but never reported."""
    import importlib

    from igcap.data import UNREADABLE_WHILE_TRAINING

    training = importlib.import_module("igcap.train")
    real = training.load_splits

    def load_then_spoil(*args, **kwargs):
        splits, table = real(*args, **kwargs)
        assert len(splits.validation) > 1
        for record in (splits.validation[0], splits.train[0]):  # changed on disk after the dataset was read
            Path(record.image).write_bytes(b"\xff\xd8\xff\xe0 not a photo any more")
        return splits, table

    monkeypatch.setattr(training, "load_splits", load_then_spoil)
    demo.write_demo_data(tmp_path / "data", n=16, seed=0)
    lines = []
    settings = TrainSettings(data=tmp_path / "data", out=tmp_path / "m", base="tiny", strategy="all", epochs=1,
                             batch_size=1, validation=0.3, seed=42, caption_eval_samples=0, progress=False,
                             logging_steps=1000)
    with demo.torch_threads(1):
        result = training.train(settings, report=lines.append)
    assert result.skipped[UNREADABLE_WHILE_TRAINING] == 2
    assert any("2 photos could not be read while training" in line for line in lines)
    saved = json.loads((tmp_path / "m" / "training-metrics.json").read_text())
    assert saved["skipped"][UNREADABLE_WHILE_TRAINING] == 2
    assert f"2 {UNREADABLE_WHILE_TRAINING}" in (tmp_path / "m" / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("change, named", [
    (["--seed", "7"], "--seed 7 (the run's: 42)"),  # a new split: held-out photos would leak into training
    (["--validation", "0.2"], "--validation 0.2 (the run's: 0.1)"),  # "best" over another validation set
    (["--max-samples", "100"], "--max-samples 100 (the run's: None)"),
    (["--strategy", "last-block"], "--strategy last-block (the run's: all)"),  # was a raw ValueError traceback
    (["--batch-size", "8"], "--batch-size 8 (the run's: 16)"),
])
def test_resume_refuses_settings_that_differ_from_the_run_it_continues(trained, shapes, tmp_path, capsys, change,
                                                                       named):
    """--resume recomputed the split from the new settings (held-out photos leaked into training, "best"
    compared losses on different validation sets) and training-metrics.json recorded the new seed."""
    out = tmp_path / "resumed"
    shutil.copytree(trained, out)
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    argv = ["train", "--data", str(shapes), "--out", str(out), "--base", "tiny", "--strategy", "all",
            "--epochs", str(EPOCHS + 1), "--learning-rate", "3e-3", "--batch-size", "16", "--seed", "42",
            "--resume", "--no-progress"]
    assert main([*argv, *change]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before  # nothing trained or written


def test_resume_checks_the_runs_record_and_says_when_there_is_none(tmp_path):
    from igcap.train import check_resumable, write_run_settings

    (tmp_path / "data").mkdir()
    settings = TrainSettings(data=tmp_path / "data", out=tmp_path / "out", base="tiny", seed=3)
    write_run_settings(settings)
    checkpoint = settings.checkpoint_dir / "checkpoint-10"
    lines = []
    resumed = TrainSettings(data=tmp_path / "data" / ".." / "data", out=tmp_path / "out", base="tiny", seed=3,
                            epochs=5, learning_rate=1e-4, resume="last")
    check_resumable(resumed, str(checkpoint), lines.append)  # more epochs, another learning rate: fine
    assert lines == []
    moved = TrainSettings(data=tmp_path / "other", out=tmp_path / "out", base="tiny", seed=3, resume="last")
    with pytest.raises(TrainError, match="--data"):
        check_resumable(moved, str(checkpoint), lines.append)
    elsewhere = tmp_path / "old" / "checkpoints" / "checkpoint-5"  # from before runs kept their settings
    check_resumable(resumed, str(elsewhere), lines.append)
    assert len(lines) == 1 and "cannot check" in lines[0]


def test_train_all_continues_after_a_variant_fails_and_leaves_finished_ones_alone(tmp_path, monkeypatch):
    """A rerun stopped at the first variant ("already holds a model"); with --resume it retrained the finished
    ones' cards and metrics (dropping validation_loss_before) and stopped at the first variant without a
    checkpoint ("nothing to resume")."""
    import importlib
    from dataclasses import replace

    from igcap.registry import DEFAULT_KEYS
    from igcap.train import TrainResult, check_output_folder, train_all

    training = importlib.import_module("igcap.train")
    calls, failing = [], {"nlpconnect-last-block"}

    def fake_train(settings, report=print):  # the real preamble, then a model folder instead of training
        check_output_folder(settings)
        checkpoint = resume_point(settings)
        calls.append((settings.key, checkpoint and Path(checkpoint).name))
        (settings.checkpoint_dir / "checkpoint-3").mkdir(parents=True, exist_ok=True)
        if settings.key in failing:
            raise TrainError("CUDA out of memory")
        (settings.out / "config.json").write_text("{}")
        (settings.out / "training-metrics.json").write_text(json.dumps({"trained": settings.key}))
        return TrainResult(settings.out, 1, 2, {}, {})

    monkeypatch.setattr(training, "train", fake_train)
    template, out = TrainSettings(data=tmp_path, out=tmp_path), tmp_path / "models"
    with pytest.raises(TrainError, match="out of memory"):
        train_all(template, out, report=lambda *_: None)
    assert [key for key, _ in calls] == list(DEFAULT_KEYS[:3])
    calls.clear()
    lines = []
    with pytest.raises(TrainError, match="--resume"):  # the failed variant's checkpoints are not trained over
        train_all(template, out, report=lines.append)
    assert [key for key, _ in calls] == []
    assert sum("already trained" in line for line in lines) == 2
    failing.clear()
    finished = (out / DEFAULT_KEYS[0] / "training-metrics.json").stat().st_mtime_ns
    results = train_all(replace(template, resume="last"), out, report=lines.append)
    assert calls == [("nlpconnect-last-block", "checkpoint-3"), ("nlpconnect-all", None)]  # resumed, then fresh
    assert list(results) == ["nlpconnect-last-block", "nlpconnect-all"]
    assert (out / DEFAULT_KEYS[0] / "training-metrics.json").stat().st_mtime_ns == finished  # left alone
    calls.clear()
    train_all(replace(template, overwrite=True), out, report=lines.append)
    assert [key for key, _ in calls] == list(DEFAULT_KEYS)
    with pytest.raises(TrainError, match="one checkpoint"):
        train_all(replace(template, resume=str(out / "vit-gpt2-all" / "checkpoints" / "checkpoint-3")), out)
