"""Smoke test of benchmarks/throughput.py on a tiny DCGAN."""

import importlib.util
import json
import math
import pathlib

import keras
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_positive_throughput_and_peak(throughput, tmp_path):
    path = tmp_path / "results.json"
    policy = keras.mixed_precision.global_policy().name
    throughput.main([
        "--models", "dcgan",
        "--set", "image_size=16", "--set", "base_filters=4", "--set", "latent_dim=8",
        "--steps", "2", "--warmup", "1", "--batch-size", "4",
        "--matmul-size", "256", "--matmul-seconds", "0.1",
        "--json", str(path),
    ])
    document = json.loads(path.read_text())
    assert document["machine"]["tensorflow"]
    (run,) = document["runs"]
    assert run["peak"]["float32"]["best_gflops"] > 0
    (row,) = run["results"]
    assert row["model"] == "dcgan" and row["batch_size"] == 4
    assert row["images_per_s"] > 0 and row["ms_per_step"] > 0
    assert row["logs_finite"]
    # The profiler's conv/matmul FLOPs agree with the layer-shape count.
    assert row["flops"]["used"] == "profiler"
    counted = row["flops"]["profiler"]["matmul_flops_per_step"]
    analytic = row["flops"]["analytic"]["flops_per_step"]
    assert math.isclose(counted, analytic, rel_tol=0.02)
    assert row["flops_per_step"] >= counted
    assert keras.mixed_precision.global_policy().name == policy


def test_sweep_and_set_parse_python_literals(throughput):
    args = throughput.parse_args(
        ["--set", "variant=v3", "--set", "seed=None", "--sweep", "image_size=50,64",
         "--jit", "both"]
    )
    assert args.overrides == [("variant", "v3"), ("seed", None)]
    assert args.sweep == [("image_size", [50, 64])]
    assert args.jit == "both"
    assert throughput.parse_args(["--jit"]).jit == "on"
    assert throughput.parse_args(["--jit", "--no-jit"]).jit == "off"
