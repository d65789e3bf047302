"""The `gan-zoo` command line: in-process `main([...])` calls on tiny models."""

import contextlib
import io
import json
import pathlib
import shutil
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


@pytest.mark.parametrize("command", [[], ["list"], ["train"], ["sample"], ["export"]])
def test_help(capsys, command):
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gan-zoo {' '.join(command)}".rstrip())


def test_every_option_has_a_help_text():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    assert set(commands.choices) == {"list", "train", "sample", "export"}
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


def test_only_the_models_own_validation_errors_become_user_errors():
    # A constructor's explicit check is a user error ...
    with pytest.raises(cli.UsageError, match="variant must be one of"):
        loading.build("dcgan", loading.resolve_config("dcgan", {"variant": "v9"}))
    # ... one raised inside Keras is not: it keeps its traceback.
    config = loading.resolve_config("dcgan", {"image_size": 16, "latent_dim": 8, "base_filters": 0})
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


def test_train_rerun_resumes_and_refuses_other_options(trained, capsys):
    assert cli.main(train_argv(trained["data"], trained["out"])) == 0
    lines = (trained["out"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # the finished run was restored, not trained again
    assert_user_error(
        capsys, [*train_argv(trained["data"], trained["out"]), "--seed", "5"], "other options"
    )
    # More epochs extend the run from where it stopped.
    assert cli.main(train_argv(trained["data"], trained["out"], epochs=2)) == 0
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
