"""recipes/diagram_ddsm_to_inbreast.py on tiny demo mammograms."""

import importlib.util
import json
import pathlib

import pytest

from gan_zoo.data.demo import make_demo_mammograms
from test_recipe_resume import InterruptAtEpochEnd, comparable

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
    assert metrics["cross_validation"] == json.loads(json.dumps(summaries))
    assert metrics["data"]["source"]["patients"] == 8 and metrics["data"]["target"]["patients"] == 6
    assert set(metrics["test_dir"]["test_metrics"]) == set(models)
    assert set(metrics["test_dir"]["delong_vs_reference"]) == {"no_gan", "plain_cnn"}
    # The demo test folder reuses the source's patient ids (P_90001-3): the final source
    # models, scored on it, train without those patients.
    assert metrics["data"]["final_source_models"]["patients_removed_from_training"] == 3
    assert {m: info["file"] for m, info in metrics["final_models"].items()} == {m: f"final_{m}.keras" for m in models}
    # Every fold scored each of its test patients once, and only test patients.
    tested = [p for fold in metrics["folds"]["source"] for p in fold["patients"]["test"]]
    assert len(tested) == len(set(tested)) == 8
    for fold in metrics["folds"]["source"]:
        assert not set(fold["patients"]["test"]) & set(fold["patients"]["train"] + fold["patients"]["validation"])
    units = sorted((out / "units").glob("*.json"))
    assert len(units) == (2 + 2 + 1) * 3  # source and target folds, the test folder; x 3 models
    table = (out / "table.md").read_text()
    assert "| diagram (fine-tuned) | yes | cbis_ddsm |" in table and "DiaGRAM (paper)" in table
    for name in ("roc_source.png", "roc_target.png", "auc_configurations.png", "source/fold0/scores.npz",
                 "target/fold1/roc_test.png", "test_dir/split/table.md"):
        assert (out / name).stat().st_size > 0, name
    # Rerunning resumes: finished trainings and the final models are read back, not redone.
    kept = sorted(units + list(out.glob("final_*")))
    stamps = {path: path.stat().st_mtime_ns for path in kept}
    again = recipe.main(argv)
    assert json.dumps(again, sort_keys=True) == json.dumps(summaries, sort_keys=True)
    assert {path: path.stat().st_mtime_ns for path in kept} == stamps


@pytest.mark.slow
def test_recipe_interrupted_in_a_fine_tuning_resumes_to_the_same_metrics(recipe, folders, tmp_path, monkeypatch):
    argv = ["--source-dir", str(folders["source"]), "--target-dir", str(folders["target"]), *TINY,
            "--fine-tune-epochs", "2", "--models", "diagram,plain_cnn"]  # the last --fine-tune-epochs counts
    recipe.main([*argv, "--out", str(tmp_path / "whole")])

    class InterruptedInTargetFold1(recipe.TransferStudy):
        def target_unit(self, kind, split, index):
            self.trainers.callbacks = [InterruptAtEpochEnd(1)] if index == 1 else []
            return super().target_unit(kind, split, index)

    monkeypatch.setattr(recipe, "TransferStudy", InterruptedInTargetFold1)
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        recipe.main([*argv, "--out", str(resumed)])
    assert not (resumed / "metrics.json").exists()
    assert (resumed / "units" / "target__fold0__plain_cnn.json").exists()
    assert not (resumed / "units" / "target__fold1__diagram.json").exists()
    monkeypatch.undo()
    recipe.main([*argv, "--out", str(resumed)])

    whole, again = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "resumed"))
    assert json.dumps(comparable(again), sort_keys=True) == json.dumps(comparable(whole), sort_keys=True)


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


def test_folds_whose_validation_patients_hold_one_class_are_scored_at_argmax_and_say_so():
    from gan_zoo.data.mammography import MammogramRecord
    from gan_zoo.experiments import Comparison, OperatingPoint, Split
    from gan_zoo.experiments.evaluation import score_split
    from gan_zoo.training.diagram_study import threshold_rule

    def records(labels, first):
        return [MammogramRecord(f"{first + i}.png", f"p{first + i}", label) for i, label in enumerate(labels)]

    split = Split("fold0", {"train": records([0, 1], 0), "validation": records([0, 0], 2),
                            "test": records([0, 1, 1, 0], 4)}, "note", patient=lambda r: r.patient_id)
    scores = {"validation": [0.2, 0.7], "test": [0.3, 0.45, 0.9, 0.55]}
    youden = OperatingPoint.parse("youden")
    point, fallback = threshold_rule(youden, [r.label for r in split["validation"]])
    result = Comparison(split, point).add("m", scores, **fallback)
    expected = score_split(youden, {"validation": [0, 0], "test": [0, 1, 1, 0]}, scores, one_class_validation="argmax")
    assert json.dumps(result, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert result["threshold"] == 0.5 and result["threshold_source"] == "argmax (validation has one class)"
    assert result["operating_point"] == "youden"
    assert threshold_rule(youden, [0, 1]) == (youden, {})


def test_a_unit_without_validation_and_test_scores_is_refused_in_one_line():
    from gan_zoo.errors import UsageError
    from gan_zoo.training.diagram_study import unit_result

    assert unit_result("source/fold0/plain_cnn", {"scores": {"validation": [], "test": []}, "seconds": 1.0}) == (
        {"validation": [], "test": []}, {})
    with pytest.raises(UsageError, match="earlier version of the recipe"):
        unit_result("source/fold0/diagram", {"metrics": {}, "scores": [0.5], "labels": [1]})


def test_real_data_defaults_are_the_models_plan(recipe):
    import gan_zoo

    plan = gan_zoo.load("diagram", image_size=64).training_plan()
    assert (recipe.REAL["epochs"], recipe.REAL["batch_size"]) == (plan.epochs, plan.batch_size)
    assert plan.flips == "horizontal"  # the paper mirrors across the vertical axis only
