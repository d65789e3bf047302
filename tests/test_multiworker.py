"""Two processes under MultiWorkerMirroredStrategy on localhost equal one process."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(command, tmp_path, log_name, timeout=240):
    """Runs `command` as worker 0 and 1 of a loopback cluster; fails the test unless both exit 0."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes, logs = [], [tmp_path / f"{log_name}{index}.log" for index in range(2)]
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "CUDA_VISIBLE_DEVICES": ""}
        with open(logs[index], "w") as log:
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        codes = [p.wait(timeout=timeout) for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        pytest.fail(f"the workers did not finish in {timeout} s:\n" + logs[0].read_text()[-3000:])
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)


@pytest.mark.slow
def test_two_workers_equal_one_process_and_only_the_chief_writes(tmp_path):
    import tensorflow as tf

    from multiworker_worker import train
    from toy_adversarial import state_of

    reference = state_of(train(tmp_path / "single", tf.distribute.get_strategy()))

    out = tmp_path / "multi"
    out.mkdir()
    run_two_workers([sys.executable, str(HERE / "multiworker_worker.py"), str(out)], tmp_path, "worker")

    got = dict(np.load(out / "state.npz"))
    assert sorted(got) == sorted(reference)
    for name, value in reference.items():
        np.testing.assert_allclose(got[name], value, atol=1e-6, rtol=0, err_msg=name)
    # Only the chief wrote into the run folder; worker 1's temporary copies
    # of backups and logs are gone.
    assert sorted(p.name for p in out.iterdir()) == ["backup", "metrics.jsonl", "state.npz", "tensorboard"]
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]  # one line per epoch, not one per worker
    assert json.loads((out / "backup" / "state.json").read_text())["completed_epochs"] == 2


TRAIN = ["train", "dcgan", "--set", "variant=v3", "--set", "image_size=50", "--set", "base_filters=4",
         "--epochs", "1", "--batch-size", "16"]


@pytest.mark.slow
def test_two_gan_zoo_train_processes_equal_one_process_with_two_replicas(tmp_path, mirrored, monkeypatch):
    """The command users run: the strategy exists before TensorFlow's context does
    (it failed with "Collective ops must be configured at program startup").

    Each replica draws its own latent vectors, so the reference is the same
    command in one process over two replicas (two logical CPUs), not one device.
    """
    import contextlib
    import io

    import gan_zoo
    from gan_zoo import cli
    from gan_zoo.training import distribute

    monkeypatch.setattr(distribute, "get_strategy", lambda name="auto": mirrored)
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main([*TRAIN, "--strategy", "mirrored", "--out", str(tmp_path / "single")]) == 0

    command = [sys.executable, "-c", "import sys; from gan_zoo.cli import main; sys.exit(main())"]
    run_two_workers([*command, *TRAIN, "--strategy", "multiworker", "--out", str(tmp_path / "multi")],
                    tmp_path, "cli")
    trained = gan_zoo.load_model(tmp_path / "multi" / "dcgan.keras")
    assert int(trained.step_counter.numpy()) == 30  # 480 demo patches, global batch 16, one epoch
    reference = gan_zoo.load_model(tmp_path / "single" / "dcgan.keras")
    for a, b in zip(reference.weights, trained.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0, err_msg=a.path)
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "multi" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1]  # written by the chief only


RECIPE = ["--epochs", "1", "--batch-size", "16", "--base-filters", "4", "--eval-epochs", "1",
          "--eval-width", "0.25", "--eval-batch-size", "16"]


@pytest.mark.slow
def test_two_recipe_processes_equal_one_process_with_two_replicas(tmp_path, mirrored, monkeypatch):
    """A recipe as users run it on two machines: `python recipes/dcgan_idc.py
    --strategy multiworker` in two processes ends with the GAN of the same
    command in one process over two replicas; only the chief writes."""
    import contextlib
    import io

    import gan_zoo

    demo = tmp_path / "demo"
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(demo))  # made once, by the in-process run
    recipe = load_recipe("dcgan_idc")
    monkeypatch.setattr(recipe, "get_strategy", lambda name="auto": mirrored)
    with contextlib.redirect_stdout(io.StringIO()):
        recipe.main([*RECIPE, "--strategy", "mirrored", "--out", str(tmp_path / "single")])

    script = str(HERE.parent / "recipes" / "dcgan_idc.py")
    multi = tmp_path / "multi"
    run_two_workers([sys.executable, script, *RECIPE, "--strategy", "multiworker", "--out", str(multi)],
                    tmp_path, "recipe", timeout=420)
    trained = gan_zoo.load_model(multi / "dcgan.keras")
    reference = gan_zoo.load_model(tmp_path / "single" / "dcgan.keras")
    for a, b in zip(reference.weights, trained.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0, err_msg=a.path)
    assert json.loads((multi / "metrics.json").read_text())["epochs"] == 1
    assert not [p.name for p in multi.iterdir() if "worker" in p.name]  # no worker's temporary files left


def load_recipe(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, HERE.parent / "recipes" / f"{name}.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe


def test_a_recipe_creates_the_multi_worker_strategy_when_it_parses(monkeypatch):

    from gan_zoo.training import distribute

    created = []
    monkeypatch.setattr(distribute, "_MULTI_WORKER", None)
    monkeypatch.setattr(distribute.tf.distribute, "MultiWorkerMirroredStrategy", lambda: created.append(1) or "mw")
    recipe = load_recipe("dcgan_idc")
    recipe.parse_args(["--strategy", "multiworker"])
    assert created == [1]  # at parse time, before the recipe reads data or seeds TensorFlow
    assert distribute.get_strategy("multiworker") == "mw" and created == [1]  # the same one later
