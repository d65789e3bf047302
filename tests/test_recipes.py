"""The recipes end to end on the procedural demo data (tiny settings)."""

import errno
import importlib.util
import json
import math
import os
import pathlib
import socket

import numpy as np
import pytest

RECIPES = pathlib.Path(__file__).resolve().parents[1] / "recipes"


def load_recipe(name):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return tmp_path_factory.mktemp("demo")


@pytest.fixture
def demo(demo_root, monkeypatch):
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(demo_root))


def test_the_readme_main_command_parses():
    # The README's first command is a user's first look: an option renamed in
    # the recipe must not leave it broken.
    readme = (RECIPES.parent / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "recipes/dcgan_idc.py" in line
                   and "pip install -e ." in line)
    argv = command.split("recipes/dcgan_idc.py", 1)[1].split()
    args = load_recipe("dcgan_idc").parse_args(argv)
    assert args.ema_half_life and args.data_dir is None  # the demo data, sampled from the EMA


@pytest.mark.slow
def test_dcgan_recipe_writes_samples_metrics_and_resumes(tmp_path, demo):
    recipe = load_recipe("dcgan_idc")
    out = tmp_path / "run"
    argv = ["--epochs", "2", "--batch-size", "16", "--base-filters", "8",
            "--eval-epochs", "1", "--eval-width", "0.25", "--kid-every", "1", "--out", str(out)]
    metrics = recipe.main(argv)
    generative = metrics["generative_validation"]
    assert generative["provenance"]["reference_split"] == "validation"
    assert generative["provenance"]["n_fake"] == generative["provenance"]["n_real"]
    assert math.isnan(generative["kid_std"])  # every subset holds all samples: no spread
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("kid" in record for record in logged)  # scored every epoch

    assert metrics["epochs"] == 2 and metrics["variant"] == "v3"
    assert sorted(metrics["data"]["patients"]) == ["test", "train", "validation"]
    for setting in ("real", "synthetic", "augmented"):
        assert 0.0 <= metrics["downstream_test"][f"{setting}_auroc"] <= 1.0
    assert metrics["train_images_per_second"] > 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["base_filters"] == 8 and config["versions"]["keras"].startswith("3.")
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == [
        "samples-epoch-0001.png", "samples-epoch-0002.png"]
    assert any((out / "tensorboard").rglob("*tfevents*"))
    assert (out / "dcgan.keras").is_file() and (out / "losses.png").is_file()

    # The same command again continues the finished run instead of retraining.
    again = recipe.main(argv)
    assert again["epochs"] == 2
    # Other options in the same folder are refused.
    with pytest.raises(ValueError, match="other options"):
        recipe.main([*argv[:-2], "--seed", "3", "--out", str(out)])


@pytest.mark.slow
def test_semi_cgan_recipe_table_with_baselines(tmp_path, demo):
    recipe = load_recipe("semi_cgan_idc")
    out = tmp_path / "run"
    results = recipe.main([
        "--epochs", "1", "--width", "0.125", "--baseline-epochs", "1", "--batch-size", "32",
        "--labelled-fraction", "0.5", "--eval-every", "1", "--out", str(out),
    ])
    assert sorted(results) == ["cruz_roa_cnn", "semi_cgan_w0.125", "small_cnn"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"].startswith("random patient split")  # --split auto on demo patients
    assert metrics["data"]["labelled_fraction"] == 0.5
    patches = metrics["data"]["patches"]
    assert abs(metrics["data"]["labelled_training_patches"] - patches["train"] / 2) <= 2
    for result in metrics["test_metrics"].values():
        assert result["threshold_source"] == "argmax" and result["threshold"] == 0.5  # the default
        assert result["n"] == patches["test"]
    assert metrics["reference"] == "semi_cgan_w0.125"
    assert set(metrics["delong_vs_reference"]) == {"cruz_roa_cnn", "small_cnn"}
    assert metrics["versions"]["keras"].startswith("3.") and metrics["options"]["width"] == 0.125
    assert metrics["data"]["splits"][0]["patients"]["test"] == metrics["data"]["patients"]["test"]
    table = (out / "table.md").read_text()
    assert "Balanced accuracy" in table and "semi_cgan_w0.125" in table
    assert (out / "roc_test.png").is_file() and (out / "confusion_small_cnn.png").is_file()
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert 0.0 <= logged[-1]["eval_validation_auroc"] <= 1.0
    assert logged[-1]["lr_g_optimizer"] == pytest.approx(2e-4)  # the decay callback's log
    assert 0 < logged[-1]["train_seconds"] <= logged[-1]["seconds"]


@pytest.mark.slow
def test_semi_cgan_recipe_refuses_to_resume_a_run_whose_preset_changed(tmp_path, demo):
    recipe = load_recipe("semi_cgan_idc")
    out = tmp_path / "run"
    argv = ["--epochs", "1", "--width", "0.125", "--baselines", "", "--batch-size", "32",
            "--eval-every", "0", "--preset", "idc_cv", "--out", str(out)]
    recipe.main(argv)
    path = out / "config.json"
    config = json.loads(path.read_text())
    recorded = config["options"]["cgan_config"]
    assert recorded["generator_loss"] == "feature_matching" and recorded["width"] == 0.125
    # As if an older release, without an option added since, made the run:
    # the option counts as its paper default, so the finished run reopens.
    del recorded["discriminator_dropout"]
    path.write_text(json.dumps(config))
    recipe.main(argv)
    # As if an older release, whose preset idc_cv had other values, made the run.
    config = json.loads(path.read_text())
    recorded = config["options"]["cgan_config"]
    recorded["labelled_class_loss_weight"] = 1.0
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="other options .*cgan_config"):
        recipe.main(argv)
    # A lacking key whose value now differs from the paper's is a change too.
    recorded["labelled_class_loss_weight"] = 10.0
    del recorded["generator_loss"]
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="other options .*cgan_config"):
        recipe.main(argv)


@pytest.mark.slow
def test_semi_cgan_recipe_scores_the_trained_discriminator_average(tmp_path, demo):
    # With an EMA of D, `classifier()` holds the average as of the call: the
    # saved per-patch scores must be those of the trained model's average.
    import keras

    from gan_zoo.data.image_folder import ImageRecord
    from gan_zoo.training.classify import predict_scores

    recipe = load_recipe("semi_cgan_idc")
    out = tmp_path / "run"
    recipe.main(["--epochs", "1", "--width", "0.125", "--baselines", "", "--batch-size", "32",
                 "--eval-every", "0", "--set", "discriminator_ema_half_life_steps=1",
                 "--out", str(out)])
    saved = np.load(out / "scores.npz")
    assert sorted(saved.files) == sorted(
        f"{key}.{split}" for key in ("labels", "patients", "paths", "semi_cgan_w0.125")
        for split in ("test", "validation"))
    records = [ImageRecord(path, int(label))
               for path, label in zip(saved["paths.test"], saved["labels.test"])]
    trained = keras.models.load_model(out / "semi_cgan.keras").classifier()
    rescored = predict_scores(trained, records, size_policy=recipe.POLICY)
    np.testing.assert_allclose(saved["semi_cgan_w0.125.test"], rescored, atol=1e-5)


def test_semi_cgan_recipe_refuses_a_split_without_test_patients(tmp_path, demo):
    recipe = load_recipe("semi_cgan_idc")
    from gan_zoo.errors import UsageError

    with pytest.raises(UsageError, match="listed patients is present .*; use --split random"):
        recipe.main(["--split", "cruz_roa", "--epochs", "1", "--out", str(tmp_path / "run")])


def test_semi_cgan_table_1_trains_each_width_in_its_folder_beside_the_papers_values(tmp_path, demo,
                                                                                 monkeypatch, capsys):
    from gan_zoo.training.semi_cgan_study import cgan_name

    recipe = load_recipe("semi_cgan_idc")
    trained = []

    def scored_by_label(config, records, split, run, comparison, **options):
        """Hand-made scores in place of a cGAN's: its width decides how well they follow the labels."""
        trained.append((config["width"], run.directory.name))
        rng = np.random.default_rng(int(config["width"]))
        comparison.add(cgan_name(config["width"]), {
            part: np.clip(comparison.labels[part] * 0.5 + rng.uniform(0, 0.6 / config["width"], len(split[part])),
                          0, 1) for part in ("validation", "test")})

    monkeypatch.setattr(recipe, "train_cgan", scored_by_label)
    out = tmp_path / "run"
    results = recipe.main(["--table-1", "--baselines", "", "--out", str(out)])
    assert trained == [(1.0, "semi_cgan_w1"), (2.0, "semi_cgan_w2"), (4.0, "semi_cgan_w4")]
    assert list(results) == ["semi_cgan_w1", "semi_cgan_w2", "semi_cgan_w4"]
    table = (out / "table_1_beside_paper.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| balanced_accuracy"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    measured = [f"{100 * results[name]['balanced_accuracy']:.2f}" for name in results]
    assert cells[1:] == [measured[0], "81.15", measured[1], "83.19", measured[2], "83.54"]  # paper's values beside
    assert "Beside Johnson 2020's Table 1" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        recipe.parse_args(["--table-1", "--width", "2"])
    assert recipe.parse_args(["--table-1", "1,2"]).widths == (1.0, 2.0)  # a CPU budget: omega 4 left out


def test_semi_cgan_johnsons_patch_split_is_an_option_that_says_it_leaks(demo, capsys):
    from gan_zoo.data import idc
    from gan_zoo.data.demo import demo_dir

    recipe = load_recipe("semi_cgan_idc")
    dataset = idc.scan_idc(demo_dir("histology"))
    (split,) = recipe.make_splits(dataset, recipe.parse_args(["--split", "johnson"]))
    assert split.leaks_patients and "IMAGE-LEVEL" in capsys.readouterr().out
    assert abs(len(split["test"]) - 0.2 * len(dataset.patches)) <= 2
    assert set(split.patients("train")) & set(split.patients("test"))
    (by_patient,) = recipe.make_splits(dataset, recipe.parse_args(["--split", "random"]))
    assert not by_patient.leaks_patients


@pytest.mark.slow
def test_semi_cgan_recipe_cross_validates_by_patient_and_resumes_by_fold(tmp_path, demo):
    from PIL import Image

    recipe = load_recipe("semi_cgan_idc")
    out = tmp_path / "run"
    argv = ["--split", "kfold", "--folds", "3", "--validation-share", "0.25", "--epochs", "1",
            "--width", "0.125", "--baselines", "small_cnn", "--baseline-epochs", "1",
            "--batch-size", "16", "--eval-every", "0", "--out", str(out)]
    summary = recipe.main(argv)
    assert sorted(summary) == ["semi_cgan_w0.125", "small_cnn"]
    metrics = json.loads((out / "metrics.json").read_text())
    folds = metrics["folds"]
    assert len(folds) == 3
    # Every patient is a test patient exactly once; no fold trains or
    # chooses thresholds on its test patients.
    tested = [p for fold in folds for p in fold["patients"]["test"]]
    assert len(tested) == len(set(tested))
    everyone = set(folds[0]["patients"]["train"]) | set(folds[0]["patients"]["validation"])
    assert set(tested) == everyone | set(folds[0]["patients"]["test"])
    for fold in folds:
        assert not set(fold["patients"]["test"]) & (
            set(fold["patients"]["train"]) | set(fold["patients"]["validation"]))
    aurocs = [fold["results"]["small_cnn"]["auroc"] for fold in folds]
    assert summary["small_cnn"]["auroc"]["folds"] == pytest.approx(aurocs)
    assert summary["small_cnn"]["auroc"]["mean"] == pytest.approx(np.mean(aurocs))
    paired = metrics["paired_vs_reference"]["semi_cgan_w0.125 - small_cnn"]
    cgan = [fold["results"]["semi_cgan_w0.125"]["auroc"] for fold in folds]
    assert paired["differences"] == pytest.approx(np.subtract(cgan, aurocs).tolist())
    assert len(paired["delong_p_per_fold"]) == 3
    assert "+/-" in (out / "table.md").read_text()
    # Grids a person can inspect: a 50x50 patch shown at 150 px, one row per class.
    grid = Image.open(sorted((out / "fold0" / "samples").glob("*.png"))[-1])
    assert grid.height >= 2 * 150

    # A fold interrupted after training is scored again from its backups; the
    # finished folds are read back; the summary is the same.
    (out / "units" / "fold1.json").unlink()
    again = recipe.main(argv)
    assert again["small_cnn"]["auroc"]["folds"] == pytest.approx(aurocs)


@pytest.mark.slow
def test_semi_cgan_tuning_folds_never_read_the_test_patients(tmp_path, demo):
    recipe = load_recipe("semi_cgan_idc")
    common = ["--split", "kfold", "--folds", "3", "--validation-share", "0.25",
              "--baselines", "small_cnn", "--baseline-epochs", "1", "--skip-gan"]
    tuned = tmp_path / "tune"
    recipe.main(common + ["--tune", "--only-folds", "1", "--out", str(tuned)])
    plain = tmp_path / "plain"
    recipe.main(common + ["--only-folds", "1", "--out", str(plain)])
    tune_metrics = json.loads((tuned / "metrics.json").read_text())
    plain_metrics = json.loads((plain / "metrics.json").read_text())
    assert tune_metrics["tuning"] and not plain_metrics["tuning"]
    assert tune_metrics["folds_run"] == ["fold1"]
    (tuning,), (evaluation,) = tune_metrics["folds"], plain_metrics["folds"]
    assert not (tuned / "fold0").exists() and not (plain / "fold2").exists()
    # Tuning scores fold1's validation patients, learns on the rest of its
    # training patients, and never sees its test patients.
    seen = {p for patients in tuning["patients"].values() for p in patients}
    assert not seen & set(evaluation["patients"]["test"])
    assert set(tuning["patients"]["test"]) == set(evaluation["patients"]["validation"])
    assert seen == set(evaluation["patients"]["train"]) | set(evaluation["patients"]["validation"])


@pytest.mark.parametrize("argv, fragment", [
    (["--tune"], "--tune and --only-folds need --split kfold"),
    (["--split", "kfold", "--only-folds", "5"], "fold indices run from 0 to 4"),
    (["--split", "kfold", "--only-folds", "a"], "expected fold indices like 0,2"),
])
def test_semi_cgan_fold_options_are_checked(capsys, tmp_path, argv, fragment):
    status, err = run_command_line(capsys, "semi_cgan_idc", argv + ["--out", str(tmp_path / "run")])
    assert status == 2 and fragment in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------- bad input, bad luck
# Each of these ends before any data is loaded or any model is built.


@pytest.mark.parametrize("name, argv, fragment", [
    ("dcgan_idc", ["--epochs", "0"], "argument --epochs: 0 is not a positive integer"),
    ("dcgan_idc", ["--epochs", "-1"], "argument --epochs: -1 is not a positive integer"),
    ("dcgan_idc", ["--batch-size", "0"], "argument --batch-size"),
    ("dcgan_idc", ["--seed", "-1"], "argument --seed: -1 is not a seed"),
    ("dcgan_idc", ["--split-seed", "-1"], "argument --split-seed"),
    ("dcgan_idc", ["--base-filters", "0"], "argument --base-filters"),
    ("dcgan_idc", ["--image-size", "0"], "argument --image-size"),
    ("dcgan_idc", ["--eval-every", "-1"], "argument --eval-every: -1 is negative"),
    ("dcgan_idc", ["--eval-epochs", "0"], "argument --eval-epochs"),
    ("dcgan_idc", ["--eval-width", "0"], "argument --eval-width: 0 is not a positive number"),
    ("dcgan_idc", ["--eval-width", "nan"], "argument --eval-width"),
    ("dcgan_idc", ["--augment", "colour"], "argument --augment: augmentation policy must be"),
    ("semi_cgan_idc", ["--epochs", "0"], "argument --epochs"),
    ("semi_cgan_idc", ["--width", "0"], "argument --width: 0 is not a positive number"),
    ("semi_cgan_idc", ["--width", "-1"], "argument --width"),
    ("semi_cgan_idc", ["--labelled-fraction", "0"], "argument --labelled-fraction: 0 is not in (0, 1]"),
    ("semi_cgan_idc", ["--labelled-fraction", "1.5"], "argument --labelled-fraction"),
    ("semi_cgan_idc", ["--baseline-epochs", "0"], "argument --baseline-epochs"),
    ("semi_cgan_idc", ["--eval-every", "-5"], "argument --eval-every"),
])
def test_recipe_numbers_are_checked_while_parsing(capsys, name, argv, fragment):
    # Bad numbers (e.g. --epochs 0) are refused while parsing, before any training.
    with pytest.raises(SystemExit) as caught:
        load_recipe(name).parse_args(argv)
    assert caught.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("size, effect", [
    (64, "at 64x64 39% of every image would be black padding"),
    (32, "at 32x32 59% of every patch would be cropped away"),
])
def test_dcgan_recipe_trains_idc_patches_at_their_size(capsys, size, effect):
    # Other sizes are refused: the IDC size policy pads or crops, never stretches.
    with pytest.raises(SystemExit):
        load_recipe("dcgan_idc").parse_args(["--image-size", str(size)])
    err = capsys.readouterr().err
    assert f"--image-size {size}: IDC patches are 50x50" in err and effect in err
    assert load_recipe("dcgan_idc").parse_args(["--image-size", "50"]).image_size == 50


def run_command_line(capsys, name, argv):
    status = load_recipe(name).main.command_line(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


@pytest.mark.parametrize("argv, message", [
    (["--preset", "nope"], "--preset: Unknown preset 'nope' for model 'semi_cgan'; its presets: idc_cv"),
    (["--set", "generator_loss=fm"],
     "--set: generator_loss must be one of 'bce', 'feature_matching'; got 'fm'."),
    (["--set", "class_weights=[1,3]"], "--set class_weights: the recipe sets it; use --class-weights."),
    (["--set", "width=2"], "--set width: the recipe sets it; use --width."),
])
def test_semi_cgan_recipe_checks_cgan_options_before_writing_anything(capsys, tmp_path, argv, message):
    out = tmp_path / "run"
    status, err = run_command_line(capsys, "semi_cgan_idc", argv + ["--out", str(out)])
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert message in err
    assert not out.exists()


def test_recipe_command_line_stops_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_ZOO_DEMO_DIR", str(tmp_path / "demo"))
    argv = ["--epochs", "0", "--out", str(tmp_path / "run")]
    status, err = run_command_line(capsys, "dcgan_idc", argv)
    assert status == 2 and "argument --epochs" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "demo").exists()


@pytest.mark.parametrize("name", ["dcgan_idc", "semi_cgan_idc"])
def test_recipe_out_inside_data_dir_is_refused(capsys, tmp_path, name):
    # Inside the data, the run's files would break every later scan of the dataset.
    data = tmp_path / "idc"
    data.mkdir()
    status, err = run_command_line(
        capsys, name, ["--data-dir", str(data), "--out", str(data / "run"), "--epochs", "1"])
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"python recipes/{name}.py: error: --out {data / 'run'} is inside --data-dir")
    assert not any(data.iterdir())


def test_recipe_on_a_folder_in_use_is_refused(capsys, tmp_path):
    # A lock file held by a running process refuses the folder.
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(json.dumps(
        {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}))
    status, err = run_command_line(capsys, "dcgan_idc", ["--out", str(out), "--epochs", "1"])
    assert status == 2 and len(err.splitlines()) == 1
    assert f"{out} is in use by another run (process {os.getppid()}" in err


def test_recipe_read_only_out_is_one_line(capsys, tmp_path, monkeypatch):
    # mkdir fails as on a read-only mount (chmod does not stop root).
    out = tmp_path / "readonly" / "run"
    real_mkdir = os.mkdir

    def read_only_mkdir(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "readonly")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only_mkdir)
    status, err = run_command_line(capsys, "semi_cgan_idc", ["--out", str(out), "--epochs", "1"])
    assert status == 2 and len(err.splitlines()) == 1
    assert f"Cannot write the run folder {out}: Read-only file system" in err


def test_recipe_full_disk_is_one_line_and_releases_the_folder(capsys, tmp_path, monkeypatch, demo):
    # A full disk after the run started (here: while reading the data).
    from gan_zoo.data.idc import scan as idc_scan

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "cache/file")

    monkeypatch.setattr(idc_scan, "scan_idc", full_disk)
    out = tmp_path / "run"
    status, err = run_command_line(capsys, "dcgan_idc", ["--out", str(out), "--epochs", "1"])
    assert status == 1
    assert err == (
        "python recipes/dcgan_idc.py: error: No space left on device: cache/file. Rerun the "
        "same command "
        f"to resume in {out} from the last finished epoch.\n"
    )
    assert (out / "config.json").is_file() and not (out / "run.lock").exists()


def test_recipe_rerun_after_an_early_failure_is_not_other_options(capsys, tmp_path, monkeypatch, demo):
    # A run that failed before its first checkpoint protects nothing.
    from gan_zoo.data.idc import scan as idc_scan

    def broken(*args, **kwargs):
        raise RuntimeError("failed before the first checkpoint")

    monkeypatch.setattr(idc_scan, "scan_idc", broken)
    out = tmp_path / "run"
    recipe = load_recipe("dcgan_idc")
    with pytest.raises(RuntimeError):
        recipe.main(["--out", str(out), "--batch-size", "7"])
    with pytest.raises(RuntimeError):  # the corrected command gets past start_run
        recipe.main(["--out", str(out), "--batch-size", "8"])
    assert json.loads((out / "config.json").read_text())["options"]["batch_size"] == 8
