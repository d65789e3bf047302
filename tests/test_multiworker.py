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


def test_two_workers_equal_one_process_and_only_the_chief_writes(tmp_path):
    import tensorflow as tf

    from multiworker_worker import train
    from toy_adversarial import state_of

    reference = state_of(train(tmp_path / "single", tf.distribute.get_strategy()))

    out = tmp_path / "multi"
    out.mkdir()
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "CUDA_VISIBLE_DEVICES": ""}
        log = open(tmp_path / f"worker{index}.log", "w")
        processes.append(subprocess.Popen(
            [sys.executable, str(HERE / "multiworker_worker.py"), str(out)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        ))
    try:
        codes = [p.wait(timeout=240) for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        pytest.fail("the workers did not finish in 240 s:\n" + (tmp_path / "worker0.log").read_text()[-3000:])
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n".join(log[-3000:] for log in logs)

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
