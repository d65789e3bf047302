"""recipes/gan_augmentation_idc.py end to end on tiny demo data, and its steps."""

import importlib.util
import json
import math
import pathlib
import shutil

import numpy as np
import pytest

from gan_zoo.data import idc
from gan_zoo.data.demo import make_demo_histology
from gan_zoo.experiments import Run, Units
from gan_zoo.training import augmentation_study as study
from test_recipe_resume import InterruptAtEpochEnd, comparable

RECIPE = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "gan_augmentation_idc.py"
ROWS = ["Real", "Real (2 epochs)", "CycleGAN", "CycleGAN + Real", "DCGAN v1", "DCGAN v1 + Real"]


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("gan_augmentation_idc", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Demo IDC data (patients 90001-90010) and a test folder sharing patient 90010 with it."""
    root = tmp_path_factory.mktemp("gan_augmentation")
    data = make_demo_histology(root / "idc", patients=10, patches_per_patient=16)
    other = make_demo_histology(root / "other", patients=12, patches_per_patient=12, seed=5)
    for index in range(1, 10):  # keep 90010 (also in --data-dir), 90011 and 90012
        shutil.rmtree(other / str(90000 + index))
    return data, other


def tiny_options(data, out, *extra):
    return ["--data-dir", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "16",
            "--dcgan-variants", "v1", "--cluster-variants", "v1", "--dcgan-epochs", "1", "--dcgan-filters", "4",
            "--dcgan-batch", "16", "--cyclegan-epochs", "1", "--cyclegan-filters", "2", "--cyclegan-batch", "16",
            "--clusters", "2", "--domain-epochs", "1", "--backbone-weights", "none", *extra]


def test_bad_options_fail_before_any_training(tmp_path, recipe):
    with pytest.raises(SystemExit):
        recipe.main(["--dcgan-variants", "v9", "--out", str(tmp_path / "a")])
    with pytest.raises(Exception, match="missing"):
        recipe.main(["--test-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "b")])
    assert not (tmp_path / "b").exists()  # found before the run folder was made


def test_the_random_split_is_the_idc_random_split(folders, recipe):
    dataset = idc.scan_idc(folders[0])
    for seed in (0, 3):
        split = recipe.make_split(dataset, None, recipe.parse_args(["--split-seed", str(seed), "--batch-size", "8"]))
        expected = idc.idc_split(dataset, "random", seed=seed)
        for part in ("train", "validation", "test"):
            assert split.patients(part) == sorted(expected[part])
            assert [r.path for r in split[part]] == [r.path for r in dataset.records(expected[part])]


def test_a_test_dir_is_the_test_set_and_its_patients_leave_training(folders, recipe):
    data, other = folders
    split = recipe.make_split(idc.scan_idc(data), idc.scan_idc(other),
                              recipe.parse_args(["--test-dir", str(other), "--batch-size", "8",
                                                 "--train-patches", "40"]))
    assert split.patients("test") == ["90010", "90011", "90012"]
    assert "90010" not in split.patients("train") + split.patients("validation")
    assert split.summary()["patients_removed_from_training"] == 1
    assert len(split["train"]) == 40 and sum(r.label for r in split["train"]) == 20
    assert set(split.patients("train")) | set(split.patients("validation")) <= {str(90001 + i) for i in range(9)}


def test_subsample_keeps_classes_balanced():
    from gan_zoo.data.image_folder import ImageRecord

    records = [ImageRecord(f"{i}.png", label=int(i % 4 == 0)) for i in range(100)]  # 25 positives
    chosen = study.subsample(records, 40, seed=0)
    assert len(chosen) == 40 and sum(r.label for r in chosen) == 20
    assert len(study.subsample(records, 70, seed=0)) == 70  # 25 positives + 45 negatives
    assert sum(r.label for r in study.subsample(records, 70, seed=0)) == 25


def test_cluster_choice_skips_clusters_too_small_for_a_gan():
    chosen = {study.choose_cluster([61, 797, 340, 2], 64, seed) for seed in range(20)}
    assert chosen == {1, 2}
    assert study.choose_cluster([3, 9, 5], 64, 0) == 1  # none big enough: the largest


def test_the_control_row_trains_as_many_steps_as_the_real_plus_cyclegan_rows():
    real = (np.zeros((100, 2, 2, 3), np.float32), np.zeros(100, np.int32))
    sets = {"CycleGAN": np.zeros(90), "DCGAN v3": np.zeros(100)}
    rows = study.classifier_rows(real, sets, ["v3"], epochs=3)
    assert list(rows) == ["Real", "Real (6 epochs)", "CycleGAN", "CycleGAN + Real", "DCGAN v3", "DCGAN v3 + Real"]
    assert [name for name, row in rows.items() if row.control] == ["Real (6 epochs)"]
    assert rows["CycleGAN"].real is None and rows["CycleGAN + Real"].real is real


def test_a_finished_unit_gives_back_its_arrays_without_computing_again(tmp_path):
    units, calls = Units(Run(tmp_path, {})), []

    def compute():
        calls.append(1)
        return {"epochs": 2}, {"test": np.array([0.25, 0.75])}

    for _ in range(2):
        result, arrays = study.unit_with_arrays(units, "classifier/Real (2 epochs)", compute)
        assert result["epochs"] == 2 and arrays["test"].tolist() == [0.25, 0.75]
    assert len(calls) == 1


@pytest.fixture(scope="module")
def whole_run(folders, recipe, tmp_path_factory):
    data, other = folders
    out = tmp_path_factory.mktemp("whole") / "run"
    results = recipe.main(tiny_options(data, out, "--test-dir", str(other), "--min-ssd", "1.0"))
    return out, results


@pytest.mark.slow
def test_recipe_writes_table_figures_and_scores(whole_run):
    out, results = whole_run
    assert list(results) == ROWS
    for name, result in results.items():
        for key in ("precision", "recall", "accuracy", "balanced_accuracy", "auroc"):
            assert 0.0 <= result[key] <= 1.0 or np.isnan(result[key]), (name, key)
        assert result["threshold_source"] == "argmax" and result["threshold"] == 0.5  # the default
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classifier"]["weights_used"] == "random" and metrics["classifier"]["protocol"] == "full"
    patients = metrics["data"]["patients"]
    assert patients["test"] == ["90010", "90011", "90012"]  # the --test-dir folder's
    assert not set(patients["test"]) & (set(patients["train"]) | set(patients["validation"]))
    assert metrics["data"]["split"]["patients_removed_from_training"] == 1
    assert metrics["reference"] == "Real" and set(metrics["delong_vs_reference"]) == set(ROWS[1:])
    # The control has the steps of the "+ Real" runs (twice the epochs: few translations dropped).
    assert metrics["classifier"]["runs"]["Real (2 epochs)"]["epochs"] == 2
    assert set(metrics["delong_vs_real_same_steps"]) == {"baseline", "CycleGAN + Real", "DCGAN v1 + Real"}
    # CycleGAN translations: every training patch, its label flipped.
    train_counts = metrics["data"]["class_counts"]["train"]
    cyclegan = metrics["synthetic_sets"]["CycleGAN"]
    assert cyclegan["translated"] == sum(train_counts) and cyclegan["flip_labels"]
    assert cyclegan["size"] == cyclegan["translated"] - cyclegan["dropped_too_close"]
    assert metrics["synthetic_sets"]["DCGAN v1"]["class_counts"] == train_counts
    assert {"DCGAN v1 class 0", "DCGAN v1 class 1", "CycleGAN class 0", "CycleGAN class 1"} <= set(
        metrics["generator_scores"])
    for s in metrics["generator_scores"].values():  # FID only from more samples than dimensions
        enough = min(s["n_real"], s["n_fake"]) > s["feature_dimensions"]
        assert s["fid"] >= 0 if enough else math.isnan(s["fid"])
    assert len(metrics["domain_classifier"]["weights_sha256"]) == 64
    assert sum(metrics["clusters"]["sizes"]) == train_counts[1]
    assert set(metrics["seconds"]) >= {"generators", "generator_scores", "backbone", "clusters",
                                       *(f"classifier/{row}" for row in ROWS)}

    table = (out / "table.md").read_text()
    assert "RANDOM" in table and "Precision (%)" in table and "DeLong p" in table and "--test-dir" in table
    scores = np.load(out / "scores.npz")
    assert scores["Real.test"].shape == scores["labels.test"].shape == (36,)
    for figure in ("fig3_cyclegan_pairs.png", "fig5_dcgan_v1_per_class.png", "roc_test.png", "pr_test.png",
                   "confusion_Real.png",
                   "cyclegan.keras", "dcgan_v1_class1.keras", "domain_classifier.keras", "clusters/cluster_0.png"):
        assert (out / figure).is_file(), figure
    assert list(out.glob("fig5_cluster*_dcgan_v1.png"))


@pytest.mark.slow
def test_an_interrupted_study_resumes_its_rows_to_the_same_metrics(folders, recipe, whole_run, tmp_path, monkeypatch):
    data, other = folders
    argv = tiny_options(data, tmp_path / "resumed", "--test-dir", str(other), "--min-ssd", "1.0")
    # The same run up to its first classifier row: the whole run's folder without the later rows'
    # results (its generators, clusters and domain classifier are then read back, not trained again).
    shutil.copytree(whole_run[0], tmp_path / "resumed")
    for unit in (tmp_path / "resumed" / "units").glob("classifier__*"):
        if not unit.name.startswith("classifier__Real."):
            unit.unlink()
    (tmp_path / "resumed" / "metrics.json").unlink()
    fit_on_mix, calls = study.fit_on_mix, []

    def counted(*args, **kwargs):
        calls.append(kwargs["epochs"])
        return fit_on_mix(*args, **kwargs)

    # The control row is the first with two epochs: Ctrl-C at its end, after "Real" finished.
    monkeypatch.setattr(study, "fit_on_mix", lambda *a, **k: fit_on_mix(
        *a, **k, callbacks=[InterruptAtEpochEnd(1)]))
    with pytest.raises(KeyboardInterrupt):
        recipe.main(argv)
    units = tmp_path / "resumed" / "units"
    assert (units / "classifier__Real.json").is_file() and (units / "classifier__Real.npz").is_file()
    assert not (units / "classifier__Real (2 epochs).json").exists()
    assert not (tmp_path / "resumed" / "metrics.json").exists()

    monkeypatch.setattr(study, "fit_on_mix", counted)
    recipe.main(argv)
    # Neither the domain classifier nor the finished row trained again.
    assert len(calls) == len(ROWS) - 1 and calls[0] == 2
    whole = json.loads((whole_run[0] / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert comparable(resumed) == comparable(whole)


def test_the_cyclegan_rate_schedule_option_reaches_the_model(recipe, tmp_path):
    import tensorflow as tf

    from gan_zoo.experiments import Run

    args = recipe.parse_args(["--cyclegan-decay", "reference", "--cyclegan-filters", "4"])
    trainer = study.GanTrainer(Run(tmp_path, {}), lambda name: Run(tmp_path / name, {}),
                               tf.distribute.get_strategy(),
                               **{option: getattr(args, option) for option in study.GAN_OPTIONS})
    assert trainer.cyclegan_decay == "reference"
    assert recipe.parse_args([]).cyclegan_decay == "run"


def test_the_dcgan_sets_hold_the_real_counts_or_the_asked_count_per_class(tmp_path, monkeypatch):
    import tensorflow as tf

    from gan_zoo.experiments import Run
    from gan_zoo.training.augmentation import SyntheticSet

    class Generator:
        def generate(self, n, seed=0, batch_size=256):
            return np.zeros((n, 50, 50, 3), np.float32)

    trainer = study.GanTrainer(Run(tmp_path, {}), lambda name: Run(tmp_path / name, {}),
                               tf.distribute.get_strategy(), seed=0, jit=False, dcgan_filters=4, dcgan_epochs=1,
                               dcgan_batch=8, cyclegan_filters=4, cyclegan_epochs=1, cyclegan_batch=1)
    monkeypatch.setattr(trainer, "per_class_dcgans", lambda variant, records: ({0: Generator(), 1: Generator()}, {}))
    monkeypatch.setattr(trainer, "cyclegan", lambda records, arrays: (None, {}))
    from gan_zoo.training import augmentation_generators

    monkeypatch.setattr(augmentation_generators, "translate_labelled", lambda *a, **k: SyntheticSet(
        images=np.zeros((0, 50, 50, 3), np.float32), labels=np.zeros(0, np.int32),
        description={"dropped_too_close": 0}))
    arrays = (np.zeros((7, 50, 50, 3), np.float32), np.array([0, 0, 0, 0, 0, 1, 1]))
    sets, _ = trainer.synthetic_sets([], arrays, ["v3"], None)
    assert sets["DCGAN v3"].class_counts() == [5, 2]  # by default as many as the real patches
    sets, _ = trainer.synthetic_sets([], arrays, ["v3"], None, per_class=4)
    assert sets["DCGAN v3"].class_counts() == [4, 4]


def test_chis_patch_split_is_an_option_that_says_it_leaks(recipe, folders, capsys):
    dataset = idc.scan_idc(folders[0])
    split = recipe.make_split(dataset, None, recipe.parse_args(["--split", "chi", "--batch-size", "16"]))
    assert split.leaks_patients and "IMAGE-LEVEL" in capsys.readouterr().out and "67/33" in split.note
    assert abs(len(split["test"]) - 0.33 * len(dataset.patches)) <= 2
    assert not recipe.make_split(dataset, None, recipe.parse_args(["--batch-size", "16"])).leaks_patients
