"""The recipes end to end on the procedural demo data (tiny settings)."""

import importlib.util
import json
import pathlib

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


def test_dcgan_recipe_writes_samples_metrics_and_resumes(tmp_path, demo):
    recipe = load_recipe("dcgan_idc")
    out = tmp_path / "run"
    argv = ["--epochs", "2", "--batch-size", "16", "--base-filters", "8",
            "--eval-epochs", "1", "--eval-width", "0.25", "--out", str(out)]
    metrics = recipe.main(argv)

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


def test_semi_cgan_recipe_table_with_baselines(tmp_path, demo):
    recipe = load_recipe("semi_cgan_idc")
    out = tmp_path / "run"
    results = recipe.main([
        "--epochs", "1", "--width", "0.125", "--baseline-epochs", "1", "--batch-size", "32",
        "--labelled-fraction", "0.5", "--eval-every", "1", "--out", str(out),
    ])
    assert sorted(results) == ["cruz_roa_cnn", "semi_cgan_w0.125", "small_cnn"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "random patient split"  # --split auto on demo patients
    assert metrics["data"]["labelled_fraction"] == 0.5
    patches = metrics["data"]["patches"]
    assert abs(metrics["data"]["labelled_training_patches"] - patches["train"] / 2) <= 2
    for result in metrics["test_metrics"].values():
        assert result["threshold_source"] == "validation"
        assert result["n"] == patches["test"]
    assert set(metrics["delong_vs_cgan"]) == {"cruz_roa_cnn", "small_cnn"}
    table = (out / "table.md").read_text()
    assert "Balanced accuracy" in table and "semi_cgan_w0.125" in table
    assert (out / "roc_test.png").is_file() and (out / "confusion_small_cnn.png").is_file()
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert 0.0 <= logged[-1]["eval_validation_auroc"] <= 1.0
    assert logged[-1]["lr_g_optimizer"] == pytest.approx(2e-4)  # the decay callback's log
    assert 0 < logged[-1]["train_seconds"] <= logged[-1]["seconds"]


def test_semi_cgan_recipe_refuses_a_split_without_test_patients(tmp_path, demo):
    recipe = load_recipe("semi_cgan_idc")
    with pytest.raises(ValueError, match="use --split random"):
        recipe.main(["--split", "cruz_roa", "--epochs", "1", "--out", str(tmp_path / "run")])
