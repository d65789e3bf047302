"""The `gan-zoo` command line: in-process `main([...])` calls on tiny models."""

import contextlib
import errno
import io
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_zoo import cli
from gan_zoo.cli import loading

TINY = ["--set", "image_size=16", "--set", "base_filters=4", "--set", "latent_dim=8"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    # No demo data in the user's cache, and no default runs/ folder in the repo.
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.chdir(tmp_path)


def write_image_folder(root, classes=("benign", "malignant"), per_class=8, size=16):
    rng = np.random.default_rng(0)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def train_argv(data_dir, out, epochs=1):
    return [
        "train", "dcgan", "--data-dir", str(data_dir), *TINY, "--conditional",
        "--epochs", str(epochs), "--batch-size", "8", "--out", str(out),
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny conditional DCGAN run shared by the train/sample/export tests."""
    root = tmp_path_factory.mktemp("cli")
    data_dir = write_image_folder(root / "data")
    out = root / "run"
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setenv("GAN_ZOO_DEMO_DIR", str(root / "demo"))
        code = cli.main(train_argv(data_dir, out))
    return {"code": code, "stdout": stdout.getvalue(), "data": data_dir, "out": out,
            "checkpoint": out / "dcgan.keras"}


# ------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text, value",
    [("v3", "v3"), ("50", 50), ("1e-4", 1e-4), ("(0, 1)", (0, 1)), ("'x y'", "x y"),
     ("false", False), ("True", True), ("none", None), ("", "")],
)
def test_set_values_are_literals_or_strings(text, value):
    assert cli.parse_value(text) == value


def test_set_needs_key_equals_value():
    assert cli.parse_overrides(["variant=v3", "image_size=50"]) == {
        "variant": "v3", "image_size": 50,
    }
    with pytest.raises(cli.UsageError, match="KEY=VALUE"):
        cli.parse_overrides(["image_size"])


def test_help_does_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from gan_zoo import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['train', '--help'])\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- list, help


def test_list_shows_registered_models(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dcgan" in out and "generator" in out and "DESCRIPTION" in out


def test_list_filters_by_task(capsys):
    assert cli.main(["list", "--task", "classifier"]) == 0
    out = capsys.readouterr().out
    assert "dcgan" not in out and "classifier" in out


def test_list_verbose_shows_citation_and_config(capsys):
    import gan_zoo

    assert cli.main(["list", "--verbose"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # undo line wrapping
    assert " ".join(gan_zoo.get_spec("dcgan").citation.split()) in out
    assert "image_size=64" in out
    assert "preset idc_cv (--preset idc_cv): generator_loss='feature_matching'" in out


@pytest.mark.parametrize("command", [[], ["list"], ["train"], ["sample"], ["export"]])
def test_help(capsys, command):
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gan-zoo {' '.join(command)}".rstrip())


def test_every_option_has_a_help_text():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    assert set(commands.choices) == {"list", "train", "sample", "score", "export", "synthesize", "publish",
                                     "rethreshold"}
    for name, subparser in commands.choices.items():
        for action in subparser._actions:
            assert action.help, f"gan-zoo {name} {action.option_strings or action.dest}"


def test_console_script_help():
    script = pathlib.Path(sys.executable).with_name("gan-zoo")
    if script.is_file():
        command = [str(script)]
    elif shutil.which("gan-zoo"):
        command = [shutil.which("gan-zoo")]
    else:
        command = [sys.executable, "-m", "gan_zoo.cli"]
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for name in ("list", "train", "sample", "export"):
        assert name in result.stdout


# -------------------------------------------------------------- user errors


def assert_user_error(capsys, argv, *fragments):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("gan-zoo: error: ")
    for fragment in fragments:
        assert fragment in err


def test_unknown_model(capsys):
    assert_user_error(capsys, ["train", "dcgn"], "Unknown model 'dcgn'", "'dcgan'")
    assert_user_error(capsys, ["export", "--model", "dcgn", "out"], "Unknown model 'dcgn'")


def test_bad_set(capsys, tmp_path):
    assert_user_error(capsys, ["train", "dcgan", "--set", "image_size"], "KEY=VALUE")
    assert_user_error(
        capsys, ["train", "dcgan", "--set", "colour=red", "--data-dir", str(tmp_path)],
        "Unknown option(s) ['colour']", "image_size=64",
    )
    data = write_image_folder(tmp_path / "data")
    assert_user_error(
        capsys, ["train", "dcgan", *TINY, "--set", "variant=v9", "--data-dir", str(data)],
        "variant must be one of",
    )
    assert not (tmp_path / "runs").exists(), "no run folder for a rejected config"


def test_unknown_preset_is_one_line_before_reading_data(capsys, tmp_path):
    assert_user_error(
        capsys, ["train", "semi_cgan", "--preset", "idc_vc", "--data-dir", str(tmp_path / "none")],
        "Unknown preset 'idc_vc' for model 'semi_cgan'; its presets: idc_cv",
    )
    assert_user_error(capsys, ["train", "dcgan", "--preset", "idc_cv"], "its presets: none")


def test_only_the_models_own_validation_errors_become_user_errors(monkeypatch):
    # A constructor's explicit check is a user error ...
    with pytest.raises(cli.UsageError, match="variant must be one of"):
        loading.build("dcgan", loading.resolve_config("dcgan", {"variant": "v9"}))
    config = loading.resolve_config("dcgan", {"image_size": 16, "latent_dim": 8, "base_filters": 0})
    with pytest.raises(cli.UsageError, match="base_filters must be an integer >= 1; got 0"):
        loading.build("dcgan", config)
    # ... one raised inside Keras is not: it keeps its traceback.
    import keras

    import gan_zoo.models.dcgan

    monkeypatch.setattr(gan_zoo.models.dcgan, "build_discriminator", lambda *a, **k: keras.layers.Dense(0))
    config = loading.resolve_config("dcgan", {"image_size": 16, "latent_dim": 8, "base_filters": 4})
    with pytest.raises(ValueError, match="units"):
        loading.build("dcgan", config)


def test_build_lets_other_exceptions_through(monkeypatch):
    def broken(name, **config):
        raise TypeError("a bug")

    monkeypatch.setattr(loading.gan_zoo, "load", broken)
    with pytest.raises(TypeError, match="a bug"):
        loading.build("dcgan", {})


def test_num_classes_must_match_the_data(capsys, tmp_path):
    data = write_image_folder(tmp_path / "data")
    assert_user_error(
        capsys, ["train", "dcgan", *TINY, "--set", "num_classes=3", "--data-dir", str(data)],
        "num_classes=3", "has 2 classes",
    )
    assert_user_error(
        capsys,
        ["train", "dcgan", *TINY, "--set", "num_classes=3", "--conditional",
         "--data-dir", str(data)],
        "--conditional gives num_classes=2",
    )


def test_classifier_cannot_be_trained_as_a_gan(capsys):
    assert_user_error(capsys, ["train", "small_cnn"], "is a classifier")


def test_empty_or_missing_data_folder(capsys, tmp_path):
    assert_user_error(
        capsys, ["train", "dcgan", "--data-dir", str(tmp_path), *TINY], "No images found"
    )
    missing = tmp_path / "missing"
    assert_user_error(
        capsys, ["train", "dcgan", "--data-dir", str(missing), "--layout", "idc"], str(missing)
    )


def test_too_few_images_for_a_batch(capsys, tmp_path):
    data = write_image_folder(tmp_path / "data", per_class=2)
    assert_user_error(
        capsys, ["train", "dcgan", "--data-dir", str(data), *TINY, "--epochs", "1"],
        "fewer than --batch-size 64",
    )


def test_missing_checkpoint(capsys, tmp_path):
    missing = tmp_path / "nothing.keras"
    assert_user_error(
        capsys, ["sample", str(missing), "--out", str(tmp_path / "s.png")], "does not exist"
    )
    assert_user_error(capsys, ["export", str(missing), str(tmp_path / "sm")], "does not exist")


def test_export_needs_one_source(capsys, tmp_path):
    assert_user_error(capsys, ["export", str(tmp_path / "sm")], "either CHECKPOINT.keras")


# ------------------------------------------------------- train, sample, export


@pytest.mark.slow
def test_train_writes_the_run_folder(trained):
    assert trained["code"] == 0, trained["stdout"]
    out = trained["out"]
    config = json.loads((out / "config.json").read_text())["options"]
    assert config["model_config"]["image_size"] == 16
    assert config["model_config"]["num_classes"] == 2  # --conditional, two class folders
    assert config["epochs"] == 1 and config["batch_size"] == 8
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]
    assert list((out / "samples").glob("*.png"))
    assert trained["checkpoint"].is_file()
    assert str(trained["checkpoint"]) in trained["stdout"]


@pytest.mark.slow
def test_train_rerun_resumes_and_refuses_other_options(trained, capsys):
    out = trained["out"]
    assert cli.main(train_argv(trained["data"], out)) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # the finished run was restored, not trained again
    # A reopened run says where it continues.
    assert f"Reopening the finished run in {out} (1 epoch done)" in capsys.readouterr().out
    assert_user_error(
        capsys, [*train_argv(trained["data"], trained["out"]), "--seed", "5"], "other options"
    )
    # More epochs extend the run from where it stopped.
    assert cli.main(train_argv(trained["data"], trained["out"], epochs=2)) == 0
    assert f"Resuming the run in {out} from epoch 2 of 2 (1 done)." in capsys.readouterr().out
    lines = (trained["out"] / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_sample_grid(trained, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    argv = ["sample", str(trained["checkpoint"]), "--n", "4", "--rows", "2",
            "--out", str(grid), "--npy"]
    assert cli.main(argv) == 0
    assert Image.open(grid).size == (33, 33)  # 2 x 2 images of 16 px, 1 px gap
    images = np.load(tmp_path / "grid.npy")
    assert images.shape == (4, 16, 16, 3) and images.min() >= 0 and images.max() <= 1
    assert np.load(tmp_path / "grid-labels.npy").tolist() == [0, 0, 1, 1]


def test_sample_folder_with_labels(trained, tmp_path, capsys):
    folder = tmp_path / "images"
    argv = ["sample", str(trained["checkpoint"]), "--n", "3", "--labels", "1",
            "--out", str(folder)]
    assert cli.main(argv) == 0
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"sample-000{i}-class1.png" for i in range(3)]
    assert Image.open(folder / files[0]).size == (16, 16)
    assert_user_error(
        capsys, argv[:4] + ["--labels", "5", "--out", str(folder)], "outside 0..1"
    )


def test_export_checkpoint(trained, tmp_path, capsys):
    import keras
    import tensorflow as tf

    out = tmp_path / "sm"
    assert cli.main(["export", str(trained["checkpoint"]), str(out)]) == 0
    assert "generate(z: float32[None, 8], labels: int32[None])" in capsys.readouterr().out
    generate = tf.saved_model.load(str(out)).signatures["generate"]
    gan = keras.models.load_model(trained["checkpoint"], compile=False)
    z = gan.latent(2, seed=3)
    images = generate(z=z, labels=tf.constant([0, 1]))["images"].numpy()
    assert images.shape == (2, 16, 16, 3)
    np.testing.assert_allclose(images, gan.generate(z=z, labels=[0, 1]), atol=1e-6)
    # A second export into the same folder needs --overwrite.
    assert_user_error(capsys, ["export", str(trained["checkpoint"]), str(out)], "--overwrite")


def test_export_from_registry_with_weights(trained, tmp_path, capsys):
    out = tmp_path / "sm"
    argv = ["export", "--model", "dcgan", *TINY, "--set", "num_classes=2",
            "--weights", str(trained["checkpoint"]), str(out)]
    assert cli.main(argv) == 0
    assert (out / "saved_model.pb").is_file()
    assert_user_error(
        capsys, ["export", str(trained["checkpoint"]), *TINY, str(tmp_path / "x")],
        "--set and --weights apply only with --model",
    )


def test_export_checkpoint_with_options_between_the_paths(trained, tmp_path, capsys):
    # argparse alone would give the checkpoint to OUT_DIR and reject the last path.
    out = tmp_path / "sm"
    assert cli.main(["export", str(trained["checkpoint"]), "--overwrite", str(out)]) == 0
    assert (out / "saved_model.pb").is_file()


# ---------------------------------------------------------- bad input, bad luck


def write_idc_folder(root, patients=("10253", "10254"), per_label=2, size=50):
    """A tiny folder in the Kaggle IDC layout <patient>/<0|1>/<patient>_idx5_x_y_class.png."""
    rng = np.random.default_rng(0)
    for patient in patients:
        for label in (0, 1):
            folder = root / patient / str(label)
            folder.mkdir(parents=True)
            for i in range(per_label):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                name = f"{patient}_idx5_x{50 * i}_y0_class{label}.png"
                Image.fromarray(pixels).save(folder / name)
    return root


def assert_one_line_error(capsys, argv, status, *fragments):
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("gan-zoo: error: ")
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_an_idc_folder_read_as_image_folder_is_refused(capsys, tmp_path):
    # Read as --layout folder, its classes would be the patients.
    data = write_idc_folder(tmp_path / "idc")
    assert_one_line_error(
        capsys, ["train", "dcgan", "--data-dir", str(data), *TINY, "--conditional"], 2,
        "is in the IDC layout", "e.g. 10253/0/", "pass --layout idc",
    )
    archive = tmp_path / "IDC_regular_ps50_idx5.zip"
    archive.write_bytes(b"PK")
    assert_one_line_error(
        capsys, ["train", "dcgan", "--data-dir", str(archive)], 2, "zip archive",
        "pass --layout idc",
    )
    assert not (tmp_path / "runs").exists()


def test_idc_patches_are_not_trained_at_another_size(capsys, tmp_path):
    # 50x50 patches trained at 64 would be 39% black padding.
    data = write_idc_folder(tmp_path / "idc")
    argv = ["train", "dcgan", "--data-dir", str(data), "--layout", "idc", "--epochs", "1"]
    assert_one_line_error(
        capsys, [*argv, "--set", "image_size=64"], 2,
        "--set image_size=64", "39% of every image would be black padding", "use 50",
    )
    assert_one_line_error(
        capsys, [*argv, "--set", "image_size=32"], 2, "59% of every patch would be cropped away",
    )


def test_out_inside_data_dir_is_refused_before_any_work(capsys, tmp_path):
    # Inside the data, config.json and backups would become part of the dataset.
    data = write_image_folder(tmp_path / "data")
    for out in (data, data / "run"):
        assert_one_line_error(
            capsys, ["train", "dcgan", "--data-dir", str(data), *TINY, "--out", str(out)], 2,
            f"--out {out} is inside --data-dir {data}",
        )
    assert not list(data.rglob("config.json")) and not (data / "run").exists()


def test_a_folder_in_use_by_another_run_is_refused(capsys, tmp_path):
    # A lock file holds the pid of the run using the folder.
    data = write_image_folder(tmp_path / "data")
    out = tmp_path / "run"
    out.mkdir()
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}
    (out / "run.lock").write_text(json.dumps(holder))
    assert_one_line_error(
        capsys, train_argv(data, out), 2,
        f"{out} is in use by another run (process {os.getppid()} on this host",
    )
    assert sorted(p.name for p in out.iterdir()) == ["run.lock"]


@pytest.mark.parametrize("argv, fragment", [
    (["train", "dcgan", "--seed", "-1"], "argument --seed: -1 is not a seed"),
    (["train", "dcgan", "--seed", str(2**32)], "is not a seed in 0..4294967295"),
    (["train", "dcgan", "--epochs", "0"], "argument --epochs: 0 is not a positive integer"),
    (["train", "dcgan", "--epochs", "-1"], "argument --epochs: -1 is not a positive integer"),
    (["train", "dcgan", "--batch-size", "0"], "argument --batch-size"),
    (["sample", "x.keras", "--out", "s.png", "--seed", "-1"], "argument --seed"),
])
def test_numbers_are_checked_while_parsing(capsys, argv, fragment):
    # Bad numbers are refused before any data or model is loaded.
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_a_read_only_out_is_one_line(capsys, tmp_path, monkeypatch):
    # mkdir fails as on a read-only mount (chmod does not stop root).
    data = write_image_folder(tmp_path / "data")
    out = tmp_path / "readonly" / "run"
    real_mkdir = os.mkdir

    def read_only_mkdir(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "readonly")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only_mkdir)
    assert_one_line_error(
        capsys, train_argv(data, out), 2,
        f"Cannot write the run folder {out}: Read-only file system",
    )


def test_a_full_disk_while_training_is_one_line(capsys, tmp_path, monkeypatch):
    # A full disk: the backup is written atomically, so the rerun resumes.
    import gan_zoo.training.loop

    data = write_image_folder(tmp_path / "data")
    out = tmp_path / "run"
    weights = out / "backup" / "epoch-00001.weights.h5"

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(weights))

    monkeypatch.setattr(gan_zoo.training.loop, "train_gan", full_disk)
    assert_one_line_error(
        capsys, train_argv(data, out), 1,
        f"No space left on device: {weights}. The last finished epoch is backed up in "
        f"{out / 'backup'}; free space and rerun the same command to resume.",
    )
    assert not (out / "run.lock").exists()


# Data errors: messages that say what is wrong and what to do.


@pytest.mark.parametrize("patient", ["10253 b", "pätient"])
def test_idc_patient_names_say_what_the_pattern_allows(capsys, tmp_path, patient):
    data = write_idc_folder(tmp_path / "idc", patients=(patient,))
    assert cli.main(["train", "dcgan", "--data-dir", str(data), "--layout", "idc"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"letters and digits|alphanumeric|A-Za-z", err), err


def test_a_dangling_link_in_an_idc_label_folder_is_called_one(capsys, tmp_path):
    data = write_idc_folder(tmp_path / "idc")
    link = data / "10253" / "0" / "10253_idx5_x500_y0_class0.png"
    link.symlink_to(tmp_path / "gone.png")
    assert cli.main(["train", "dcgan", "--data-dir", str(data), "--layout", "idc"]) == 2
    err = capsys.readouterr().err
    assert "a folder inside a label folder" not in err
    assert re.search(r"dangling|broken", err) and "link" in err, err


def test_an_idc_data_dir_one_level_too_deep_suggests_the_parent(capsys, tmp_path):
    data = write_idc_folder(tmp_path / "idc", per_label=10)
    too_deep = data / "10253"
    err = assert_one_line_error(
        capsys, ["train", "dcgan", "--data-dir", str(too_deep), "--layout", "idc"], 2,
    )
    assert f"--data-dir {data}" in err, err
