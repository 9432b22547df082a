"""The GPU row's machinery (igcap.bench_gpu), run on the CPU with tiny checkpoints: the figures a lent GPU
machine would report, in the right precision, and clear refusals. Timings are printed, never asserted."""

import json

import pytest

from igcap import bench_gpu
from igcap.cli import main
from igcap.registry import DEFAULT_KEYS


@pytest.fixture(scope="module")
def quick_row(tmp_path_factory):
    options = bench_gpu.GpuRowOptions(device="cpu", dtypes=("bfloat16", "float32"), photos=3, batch_size=2, tokens=3,
                                      repeats=2, quick=True, cache_dir=tmp_path_factory.mktemp("ckpt"),
                                      train_batch_size=2, train_steps=1)
    said = []
    return bench_gpu.run_gpu_row(options, progress=said.append), said


def test_each_precision_loads_the_four_models_in_it_and_captions_both_scenarios(quick_row):
    result, said = quick_row
    assert [row["dtype"] for row in result["rows"]] == ["bfloat16", "float32"]
    for row in result["rows"]:
        assert row["weights_dtype"] == row["dtype"]  # the models ran in the precision the row names
        assert row["lean_decoding"]
        assert len(row["captions"]) == len(DEFAULT_KEYS)  # one photo × four models
        assert row["tokens_one_photo"] == len(DEFAULT_KEYS) * 3
        assert row["tokens_many_photos"] == 3 * len(DEFAULT_KEYS) * 3  # three photos in batches of two
        assert len(row["one_photo_runs"]) == len(row["many_photos_runs"]) == 2
        assert row["peak_memory_mib"] is None  # the accelerator's memory: none on the CPU
    assert result["accelerator"] == {"device": "cpu"}
    assert len(said) == 4  # two precisions, two training strategies: a person sees where it is


def test_training_throughput_of_both_strategies_is_reported_and_the_table_names_everything(quick_row):
    result, _ = quick_row
    assert [row["strategy"] for row in result["train"]] == ["last-block", "all"]
    assert all(row["samples_per_second"] > 0 for row in result["train"])
    table = bench_gpu.format_gpu_row(result)
    print(table)
    assert "bfloat16" in table and "float32" in table and "training, last-block" in table
    json.dumps(result)  # JSON-ready


@pytest.mark.parametrize("kwargs", [{"dtypes": ("float64",)}, {"dtypes": ()}, {"photos": 0}, {"repeats": 0},
                                    {"train_steps": -1}])
def test_options_refuse_impossible_values(kwargs):
    with pytest.raises(ValueError):
        bench_gpu.GpuRowOptions(**kwargs)


def test_cli_without_a_cuda_device_says_so_without_a_traceback(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "--gpu"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--device cpu" in err and "Traceback" not in err


def test_cli_quick_gpu_row_on_the_cpu_writes_its_json(tmp_path, capsys):
    out = tmp_path / "row.json"
    assert main(["bench", "--gpu", "--device", "cpu", "--quick", "--photos", "2", "--cache", str(tmp_path / "ckpt"),
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["dtype"] for row in result["rows"]] == list(bench_gpu.GPU_DTYPES)
    assert result["photos"] == 2 and "igcap GPU row" in capsys.readouterr().out
