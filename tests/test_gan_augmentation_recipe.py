"""recipes/gan_augmentation_idc.py end to end on tiny demo data."""

import importlib.util
import json
import math
import pathlib

import numpy as np
import pytest

from gan_zoo.data.demo import make_demo_histology

RECIPE = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "gan_augmentation_idc.py"
ROWS = ["Real", "Real (2 epochs)", "CycleGAN", "CycleGAN + Real", "DCGAN v1", "DCGAN v1 + Real"]


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("gan_augmentation_idc", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_options(data, out, *extra):
    return ["--data-dir", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "16",
            "--dcgan-variants", "v1", "--cluster-variants", "v1", "--dcgan-epochs", "1", "--dcgan-filters", "4", "--dcgan-batch", "16",
            "--cyclegan-epochs", "1", "--cyclegan-filters", "2", "--cyclegan-batch", "16",
            "--clusters", "2", "--domain-epochs", "1", "--backbone-weights", "none", *extra]


def test_bad_options_fail_before_any_training(tmp_path, recipe):
    with pytest.raises(SystemExit):
        recipe.main(["--dcgan-variants", "v9", "--out", str(tmp_path / "a")])
    with pytest.raises(Exception, match="missing"):
        recipe.main(["--test-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "b")])
    assert not (tmp_path / "b").exists()  # found before the run folder was made


def test_subsample_keeps_classes_balanced(recipe):
    from gan_zoo.data.image_folder import ImageRecord

    records = [ImageRecord(f"{i}.png", label=int(i % 4 == 0)) for i in range(100)]  # 25 positives
    chosen = recipe.subsample(records, 40, seed=0)
    assert len(chosen) == 40 and sum(r.label for r in chosen) == 20
    assert len(recipe.subsample(records, 70, seed=0)) == 70  # 25 positives + 45 negatives
    assert sum(r.label for r in recipe.subsample(records, 70, seed=0)) == 25


def test_cluster_choice_skips_clusters_too_small_for_a_gan(recipe):
    chosen = {recipe.choose_cluster([61, 797, 340, 2], 64, seed) for seed in range(20)}
    assert chosen == {1, 2}
    assert recipe.choose_cluster([3, 9, 5], 64, 0) == 1  # none big enough: the largest


@pytest.mark.slow
def test_recipe_writes_table_figures_and_scores(tmp_path, recipe):
    data = make_demo_histology(tmp_path / "idc", patients=10, patches_per_patient=16)
    other = make_demo_histology(tmp_path / "other", patients=2, patches_per_patient=12, seed=5)
    out = tmp_path / "run"
    results = recipe.main(tiny_options(data, out, "--test-dir", str(other), "--min-ssd", "1.0"))

    assert list(results) == ROWS
    for name, result in results.items():
        for key in ("precision", "recall", "accuracy", "balanced_accuracy", "auroc"):
            assert 0.0 <= result[key] <= 1.0 or np.isnan(result[key]), (name, key)
        assert result["threshold_source"] == "validation"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classifier"]["weights_used"] == "random" and metrics["classifier"]["protocol"] == "full"
    patients = metrics["data"]["patients"]
    assert not set(patients["test"]) & (set(patients["train"]) | set(patients["validation"]))
    assert set(metrics["delong_vs_real"]) == set(ROWS[1:])
    # The control has the steps of the "+ Real" runs (twice the epochs: few translations dropped).
    assert metrics["classifier"]["runs"]["Real (2 epochs)"]["epochs"] == 2
    assert set(metrics["delong_vs_real_same_steps"]) == {"baseline", "CycleGAN + Real", "DCGAN v1 + Real"}
    assert set(metrics["external_test_metrics"]) == set(ROWS)
    assert metrics["external_test_metrics"]["Real"]["threshold"] == results["Real"]["threshold"]
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
    assert sum(metrics["clusters"]["sizes"]) == train_counts[1]

    table = (out / "table.md").read_text()
    assert "RANDOM" in table and "Precision (%)" in table and "DeLong p" in table and "--test-dir" in table
    for figure in ("fig3_cyclegan_pairs.png", "fig5_dcgan_v1_per_class.png", "roc_test.png",
                   "cyclegan.keras", "dcgan_v1_class1.keras", "clusters/cluster_0.png"):
        assert (out / figure).is_file(), figure
    assert list(out.glob("fig5_cluster*_dcgan_v1.png"))
