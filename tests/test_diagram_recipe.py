"""recipes/diagram_ddsm_to_inbreast.py on tiny demo mammograms."""

import importlib.util
import json
import pathlib

import pytest

from gan_zoo.data.demo import make_demo_mammograms

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "diagram_ddsm_to_inbreast.py"
TINY = ["--folds", "2", "--epochs", "1", "--fine-tune-epochs", "1", "--image-size", "32",
        "--patch-size", "16", "--width", "0.05", "--batch-size", "4", "--patch-copies", "2"]


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("diagram_recipe", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("mammograms")
    return {
        "source": make_demo_mammograms(root / "source", patients=8, size=64, seed=3),
        "target": make_demo_mammograms(root / "target", patients=6, size=64, seed=4),
        "test": make_demo_mammograms(root / "test", patients=3, size=64, seed=5),
    }


@pytest.mark.slow
def test_recipe_cross_validates_transfers_and_resumes(recipe, folders, tmp_path):
    out = tmp_path / "run"
    argv = ["--source-dir", str(folders["source"]), "--target-dir", str(folders["target"]),
            "--test-dir", str(folders["test"]), "--out", str(out), *TINY]
    summaries = recipe.main(argv)
    models = ("diagram", "no_gan", "plain_cnn")
    for part in ("source", "target"):
        assert set(summaries[part]) == set(models)
        for stats in summaries[part].values():
            assert len(stats["auroc"]["folds"]) == 2
            assert 0.0 <= stats["accuracy"]["mean"] <= 1.0
    for kind in ("diagram", "no_gan"):  # the patch (mass) classifier of D, per fold
        assert len(summaries["source"][kind]["patch_auroc"]["folds"]) == 2
    assert "patch_auroc" not in summaries["source"]["plain_cnn"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source_patients"] == 8 and metrics["data"]["target_patients"] == 6
    assert set(metrics["test_dir"]) == set(models)
    # Every fold scored each test patient once, and only test patients.
    units = sorted((out / "units").glob("*.json"))
    assert len(units) == 2 * 3 * 2
    tested = [json.loads(u.read_text())["test_patients"] for u in units if "source__" in u.name]
    assert sum(tested) == 3 * 8
    table = (out / "table.md").read_text()
    assert "| diagram (fine-tuned) | yes | cbis_ddsm |" in table and "DiaGRAM (paper)" in table
    assert (out / "roc_source.png").stat().st_size > 0 and (out / "auc_configurations.png").exists()
    # Rerunning resumes: finished trainings are read back, not redone.
    stamps = {u.name: u.stat().st_mtime_ns for u in units}
    again = recipe.main(argv)
    assert again == summaries
    assert {u.name: u.stat().st_mtime_ns for u in (out / "units").glob("*.json")} == stamps


def test_recipe_checks_its_options(recipe, folders, tmp_path):
    with pytest.raises(ValueError, match="no official split"):
        recipe.main(["--source-dir", str(folders["source"]), "--split", "official",
                     "--out", str(tmp_path / "a"), *TINY])
    assert recipe.main.command_line(["--models", "diagram,gan", "--out", str(tmp_path / "b")]) == 2
    assert recipe.main.command_line(["--image-size", "40", "--out", str(tmp_path / "c")]) == 2
    assert recipe.main.command_line(["--source-dir", str(tmp_path / "missing"),
                                     "--out", str(tmp_path / "d")]) != 0


@pytest.mark.slow
def test_recipe_runs_on_the_demo_without_arguments(recipe, tmp_path):
    summaries = recipe.main(["--out", str(tmp_path / "demo")])
    assert set(summaries) == {"source", "target"}
