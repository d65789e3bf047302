"""Run folders (`gan_zoo.experiments.start_run`): where, who, and what they protect.

No training here: a run folder is set up, and its checkpoint is faked by
writing `backup/state.json`, which is all `start_run` reads of it.
"""

import argparse
import errno
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from gan_zoo.errors import EXIT_FAILED, exit_status
from gan_zoo.experiments import command_line
from gan_zoo.experiments.run_folder import LOCK_NAME, RunFolderError, start_run


def options(out, **changes):
    values = dict(out=out, data_dir=None, seed=0, precision="float32", epochs=3, batch_size=8)
    values.update(changes)
    return argparse.Namespace(**values)


def fake_checkpoint(out, completed_epochs, folder="backup"):
    (out / folder).mkdir(parents=True, exist_ok=True)
    state = {"completed_epochs": completed_epochs,
             "weights": f"epoch-{completed_epochs:05d}.weights.h5"}
    (out / folder / "state.json").write_text(json.dumps(state))


def write_lock(out, pid, host=None):
    out.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01T00:00:00"}
    (out / LOCK_NAME).write_text(json.dumps(holder))


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(pathlib.Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def runs():
    """Runs a test starts; closed (their locks released) at its end."""
    opened = []
    yield opened
    for run in opened:
        run.close()


def read_only(monkeypatch, folder):
    """Makes writes under `folder` fail as on a read-only mount (root ignores chmod)."""
    folder = str(folder)
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(path):
        if os.path.abspath(path).startswith(folder):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    def guarded_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


# ------------------------------------------------ the run folder is not in the data


def test_out_inside_data_dir_is_refused(tmp_path):
    data = tmp_path / "data"
    (data / "benign").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data)
    for out in (data, data / "run", data / "a" / "b", tmp_path / "link" / "run"):
        with pytest.raises(RunFolderError, match="is inside --data-dir") as caught:
            start_run("dcgan", options(out, data_dir=str(data)))
        assert "\n" not in str(caught.value)
    assert not list(data.rglob("config.json")) and not list(data.rglob(LOCK_NAME))


def test_out_beside_data_dir_is_accepted(tmp_path, runs):
    data = tmp_path / "data"
    data.mkdir()
    runs.append(start_run("dcgan", options(tmp_path / "data-runs", data_dir=str(data))))
    assert (tmp_path / "data-runs" / "config.json").is_file()


# ---------------------------------------------------------------------- the lock


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, runs):
    out = tmp_path / "run"
    runs.append(start_run("dcgan", options(out)))
    holder = json.loads((out / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert holder["started"]
    with pytest.raises(RunFolderError, match="is in use by another run") as caught:
        start_run("dcgan", options(out))
    assert f"process {os.getpid()} on this host" in str(caught.value)
    assert "\n" not in str(caught.value)
    runs.pop().close()
    assert not (out / LOCK_NAME).exists()
    runs.append(start_run("dcgan", options(out)))  # free again


def test_a_live_process_keeps_its_lock(tmp_path):
    out = tmp_path / "run"
    write_lock(out, os.getppid())  # alive, and not this process
    before = snapshot(out)
    with pytest.raises(RunFolderError, match=f"process {os.getppid()} on this host"):
        start_run("dcgan", options(out))
    assert snapshot(out) == before


def test_a_lock_from_another_host_is_not_taken_over(tmp_path):
    out = tmp_path / "run"
    write_lock(out, dead_pid(), host="elsewhere.example")
    with pytest.raises(RunFolderError, match="on elsewhere.example.*delete"):
        start_run("dcgan", options(out))


def test_an_unreadable_lock_is_not_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text("")
    with pytest.raises(RunFolderError, match="unreadable lock"):
        start_run("dcgan", options(out))


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, runs, capsys):
    out = tmp_path / "run"
    pid = dead_pid()
    write_lock(out, pid)
    runs.append(start_run("dcgan", options(out)))
    err = capsys.readouterr().err
    assert f"left by process {pid}, which no longer runs on this host" in err
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not list(out.glob(f"{LOCK_NAME}.stale-*"))


def test_only_the_chief_of_a_multi_worker_run_takes_the_lock(tmp_path, runs, monkeypatch):
    out = tmp_path / "run"
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 0}}))
    runs.append(start_run("dcgan", options(out)))
    assert (out / LOCK_NAME).exists()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    runs.append(start_run("dcgan", options(out)))  # the same run's second worker


def test_recipe_main_releases_the_lock_when_it_fails(tmp_path):
    out = tmp_path / "run"

    @command_line.recipe_main
    def main(argv=None):
        start_run("fake", options(out))
        raise RuntimeError("the recipe broke")

    with pytest.raises(RuntimeError):
        main([])
    assert not (out / LOCK_NAME).exists()


# --------------------------------------------------- what a run folder protects


def test_a_run_without_checkpoint_does_not_protect_its_options(tmp_path, runs, capsys):
    out = tmp_path / "run"
    start_run("dcgan", options(out, batch_size=0)).close()  # then failed at once
    runs.append(start_run("dcgan", options(out, batch_size=8)))
    assert json.loads((out / "config.json").read_text())["options"]["batch_size"] == 8
    assert "saved no checkpoint; starting a new run there" in capsys.readouterr().out


@pytest.mark.parametrize("backup", ["backup", "backup-small_cnn", "fold0/backup", "dcgan_v1_class0/backup"])
def test_a_run_with_a_checkpoint_protects_its_options(tmp_path, backup):
    out = tmp_path / "run"
    start_run("dcgan", options(out, batch_size=4)).close()
    fake_checkpoint(out, 1, folder=backup)
    config = (out / "config.json").read_bytes()
    with pytest.raises(RunFolderError, match="other options .*'batch_size': \\(4, 8\\)"):
        start_run("dcgan", options(out, batch_size=8))
    assert (out / "config.json").read_bytes() == config
    assert not (out / LOCK_NAME).exists()


def test_finished_units_protect_the_options_and_the_epochs(tmp_path, runs):
    # A unit's result was computed with the recorded options, epochs included:
    # reading it back under others would mix two runs in one report.
    out = tmp_path / "run"
    start_run("study", options(out, batch_size=4, epochs=3)).close()
    (out / "units").mkdir()
    (out / "units" / "fold0.json").write_text("{}")
    with pytest.raises(RunFolderError, match="finished units of work \\(fold0\\) .*'epochs': \\(3, 5\\)"):
        start_run("study", options(out, batch_size=4, epochs=5))
    with pytest.raises(RunFolderError, match="'batch_size': \\(4, 8\\)"):
        start_run("study", options(out, batch_size=8, epochs=3))
    runs.append(start_run("study", options(out, batch_size=4, epochs=3)))  # the same command resumes


def test_without_units_a_larger_epochs_extends_the_run(tmp_path, runs):
    out = tmp_path / "run"
    start_run("dcgan", options(out, epochs=3)).close()
    fake_checkpoint(out, 3)
    runs.append(start_run("dcgan", options(out, epochs=5)))
    assert json.loads((out / "config.json").read_text())["options"]["epochs"] == 5


def test_a_foreign_config_json_is_not_overwritten(tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "config.json").write_text("not json")
    with pytest.raises(RunFolderError, match="not a readable run config"):
        start_run("dcgan", options(out))
    assert (out / "config.json").read_text() == "not json"


# -------------------------------------------------------------- the resume line


def test_reopening_prints_the_epoch_it_resumes_from(tmp_path, capsys):
    out = tmp_path / "run"
    start_run("dcgan", options(out, epochs=5)).close()
    assert "Resum" not in capsys.readouterr().out  # a fresh start says nothing of it
    fake_checkpoint(out, 2)
    start_run("dcgan", options(out, epochs=5)).close()
    assert capsys.readouterr().out.splitlines() == [
        f"Resuming the run in {out} from epoch 3 of 5 (2 done)."]
    fake_checkpoint(out, 5)
    start_run("dcgan", options(out, epochs=5)).close()
    assert capsys.readouterr().out.splitlines() == [
        f"Reopening the finished run in {out} (5 epochs done): nothing to train."]


# ------------------------------------------------- read-only folder, full disk


def test_a_read_only_out_is_one_line_and_leaves_the_run_intact(tmp_path, monkeypatch):
    out = tmp_path / "run"
    start_run("dcgan", options(out)).close()
    fake_checkpoint(out, 1)
    before = snapshot(out)
    read_only(monkeypatch, tmp_path)
    for folder in (out, tmp_path / "new" / "run"):
        with pytest.raises(RunFolderError, match="Cannot write the run folder .*Read-only") as caught:
            start_run("dcgan", options(folder))
        assert "\n" not in str(caught.value)
    monkeypatch.undo()
    assert snapshot(out) == before


def test_a_full_disk_keeps_the_previous_config(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    start_run("dcgan", options(out)).close()
    fake_checkpoint(out, 1)
    config = (out / "config.json").read_bytes()
    real_write_text = pathlib.Path.write_text

    def full_disk(path, *args, **kwargs):
        if path.name.endswith(".tmp"):
            real_write_text(path, "{\"trunc")  # what a full disk leaves behind
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write_text(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    status = exit_status(start_run, "dcgan", options(out), prog="recipe.py")
    monkeypatch.undo()
    assert status == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("recipe.py: error: No space left on device: ")
    assert len(err.splitlines()) == 1
    assert (out / "config.json").read_bytes() == config
    assert sorted(p.name for p in out.iterdir()) == ["backup", "config.json"]


def test_write_errors_are_found_inside_wrapping_exceptions(capsys):
    def fails():
        try:
            raise OSError("Unable to synchronously write data (errno = 28, error message = "
                          "'No space left on device')")
        except OSError as error:
            raise RuntimeError("h5py failed") from error

    assert exit_status(fails, on_write_error="Rerun to resume.") == EXIT_FAILED
    err = capsys.readouterr().err
    assert err == "gan-zoo: error: No space left on device. Rerun to resume.\n"

    def bug():
        raise FileNotFoundError(errno.ENOENT, "No such file", "metrics.jsonl")

    with pytest.raises(FileNotFoundError):  # not a disk problem: keeps its traceback
        exit_status(bug)


def test_a_run_from_before_an_option_existed_resumes_with_its_default(tmp_path):
    from gan_zoo.experiments import recipe_parser, start_run

    def parse(argv):
        parser = recipe_parser("demo", "", epochs=2, batch_size=4)
        parser.add_argument("--new-option", default="raise")
        return parser.parse_args(argv)

    out = tmp_path / "run"
    run = start_run("demo", parse(["--out", str(out)]))
    run.close()
    config = json.loads((out / "config.json").read_text())
    del config["options"]["new_option"]  # as written before the option existed
    (out / "config.json").write_text(json.dumps(config))
    (out / "backup").mkdir()
    (out / "backup" / "state.json").write_text(json.dumps({"completed_epochs": 1, "weights": "x"}))
    start_run("demo", parse(["--out", str(out)])).close()  # the default: the same run
    with pytest.raises(ValueError, match="other options"):
        start_run("demo", parse(["--out", str(out), "--new-option", "skip"]))


def test_a_lost_worker_is_one_line_with_the_way_to_resume(capsys):
    import tensorflow as tf

    def killed_peer():
        raise tf.errors.UnavailableError(None, None, "Socket closed\nAdditional GRPC error information: ...")

    status = exit_status(killed_peer, prog="gan-zoo", on_write_error="Rerun the same command to resume in run/x.")
    assert status == EXIT_FAILED
    assert capsys.readouterr().err == (
        "gan-zoo: error: a worker of the cluster was lost (UnavailableError: Socket closed). "
        "On every worker: rerun the same command to resume in run/x.\n")

    def other_error():
        raise tf.errors.InternalError(None, None, "a kernel failed")

    with pytest.raises(tf.errors.InternalError):  # not a lost peer: a bug keeps its traceback
        exit_status(other_error)
