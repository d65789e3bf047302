"""benchmarks/gpu_check.sh: the --tiny run on this CPU, and its helper's records."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
PRECISIONS = ("float32", "mixed_bfloat16")


@pytest.fixture(scope="module")
def helper():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_check(tmp_path, *options):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *options], env=env,
                          capture_output=True, text=True, timeout=600)
    return done, out


@pytest.mark.slow
def test_tiny_check_measures_every_row_and_trains_semi_cgan(tmp_path):
    done, out = run_check(tmp_path, "--tiny")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads((out / "gpu_check.json").read_text())
    gpus = document["options"]["gpus"]  # 0 on a CPU machine: it says so and runs there
    assert document["options"]["strategy"] == ("mirrored" if gpus > 1 else "default")
    assert gpus or "no GPU" in " ".join(document["devices"])
    models = document["options"]["models"]
    assert models
    rows = document["rows"]
    # One row per model, precision and XLA setting: measured, or the reason why not.
    assert {(r["model"], r["precision"], r["jit_compile"]) for r in rows} == {
        (m, p, j) for m in models for p in PRECISIONS for j in (False, True)}
    for row in rows:
        assert row.get("images_per_s", 0) > 0 or row.get("error"), row
    assert all(row.get("images_per_s", 0) > 0 for row in rows if not row["jit_compile"])
    train = document["semi_cgan"]
    assert train["status"] == "finished" and train["epochs_trained"] == 1
    metrics = json.loads((out / "semi_cgan" / "metrics.json").read_text())
    assert metrics
    assert (out / "gpu_check.log").stat().st_size > 0
    assert not list(tmp_path.glob("gpu_check.*")), "the work folder is removed"


@pytest.mark.parametrize("options", [["--budget", "x"], ["--jit", "maybe"], ["--nope"],
                                     ["--data-dir", "/no/such/folder"]])
def test_bad_options_stop_before_anything_runs(tmp_path, options):
    done, out = run_check(tmp_path, *options)
    assert done.returncode == 2
    assert "gpu_check.sh:" in done.stderr
    assert not out.exists()


def test_without_tensorflow_the_check_says_so(tmp_path):
    python = tmp_path / "python"  # a Python that cannot import TensorFlow
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -S -I \"$@\"\n")
    python.chmod(0o755)
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(SCRIPT), "--python", str(python), "--tiny"],
                          env={**os.environ, "OUT": str(out), "TMPDIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    document = json.loads((out / "gpu_check.json").read_text())
    assert document["options"]["error"].startswith("TensorFlow did not start")
    assert document["rows"] == []


def test_rows_record_why_a_model_has_no_numbers(helper, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    helper.start(work, out, {"models": ["dcgan", "cigan", "small_cnn"], "jit": "both",
                             "precisions": list(PRECISIONS)})
    # dcgan: its float32 row measured, its bfloat16 row failed, then the time limit stopped it.
    run = {"results": [{"model": "dcgan", "precision": "float32", "jit_compile": False,
                        "images_per_s": 12.5, "ms_per_step": 80.0, "batch_size": 64}],
           "failures": [{"model": "dcgan", "precision": "mixed_bfloat16", "jit_compile": False,
                         "stage": "training", "error": "ResourceExhaustedError: OOM"}]}
    (work / "throughput-dcgan.json").write_text(json.dumps({"machine": {"gpus": []}, "runs": [run]}))
    helper.model_done(work, out, "dcgan", 124, 60, 60)
    (work / "throughput-cigan.log").write_text("loading\nValueError: no such weights\n")
    helper.model_done(work, out, "cigan", 1, 5, 60)
    helper.model_done(work, out, "small_cnn", -1, 8, 0)
    rows = {(r["model"], r["precision"], r["jit_compile"]): r
            for r in json.loads((out / "gpu_check.json").read_text())["rows"]}
    assert len(rows) == 12
    assert rows["dcgan", "float32", False]["images_per_s"] == 12.5
    assert "OOM" in rows["dcgan", "mixed_bfloat16", False]["error"]
    assert "time limit (60 s)" in rows["dcgan", "float32", True]["error"]
    assert "no such weights" in rows["cigan", "mixed_bfloat16", True]["error"]
    assert rows["small_cnn", "float32", False]["error"].startswith("not started")


def test_completed_epochs_trims_an_epoch_logged_after_the_last_backup(helper, tmp_path):
    fold = tmp_path / "run" / "fold0"
    (fold / "backup").mkdir(parents=True)
    (fold / "backup" / "state.json").write_text(json.dumps({"completed_epochs": 2}))
    log = fold / "metrics.jsonl"
    log.write_text("".join(json.dumps({"epoch": e, "seconds": 1.0}) + "\n" for e in (1, 2, 3)))
    assert helper.completed_epochs(tmp_path / "run") == 2
    assert len(log.read_text().splitlines()) == 3
    assert helper.completed_epochs(tmp_path / "run", trim=True) == 2
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2]
    assert helper.completed_epochs(tmp_path / "nothing") == 0


def test_throughput_keep_going_records_failures_and_keeps_finished_rows(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("throughput", ROOT / "benchmarks" / "throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    monkeypatch.setattr(throughput, "measure_matmul_peak", lambda dtype, *_: {
        "dtype": dtype, "size": 8, "repeats": 3, "best_gflops": 100.0, "median_gflops": 100.0})
    monkeypatch.setattr(throughput, "count_flops", lambda *_: (
        4, {"used": "analytic", "analytic": {"flops_per_step": 1e9}}))
    timed = []

    def time_training(name, config, task, precision, jit, *_):
        timed.append((precision, jit))
        if jit:
            raise RuntimeError("XLA said no")
        return {"replicas": 1, "first_step_s": 0.1, "warmup_steps": 2, "seconds": 0.5, "images_per_s": 16.0,
                "ms_per_step": 250.0, "ms_per_step_median": 250.0, "ms_per_step_min": 250.0,
                "last_logs": {}, "logs_finite": True}

    monkeypatch.setattr(throughput, "time_training", time_training)
    path = tmp_path / "results.json"
    argv = ["--models", "dcgan", "--precision", "float32", "--precision", "mixed_bfloat16",
            "--jit", "both", "--json", str(path)]
    throughput.main([*argv, "--keep-going"])
    # Both precisions without XLA first, then with XLA.
    assert timed == [("float32", False), ("mixed_bfloat16", False), ("float32", True), ("mixed_bfloat16", True)]
    (run,) = json.loads(path.read_text())["runs"]
    assert [(r["precision"], r["jit_compile"]) for r in run["results"]] == timed[:2]
    assert [(f["precision"], f["jit_compile"], f["stage"]) for f in run["failures"]] == [
        ("float32", True, "training"), ("mixed_bfloat16", True, "training")]
    assert run["failures"][0]["error"] == "RuntimeError: XLA said no"
    # Without --keep-going the failure stops the run; the rows before it are already written.
    with pytest.raises(RuntimeError, match="XLA said no"):
        throughput.main(argv)
    (run,) = json.loads(path.read_text())["runs"]
    assert len(run["results"]) == 2 and run["failures"] == []
