"""Comparing classifiers on a split and over folds; the report; the checks before training."""

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest

from gan_zoo.errors import UsageError
from gan_zoo.experiments import PatientSplitter, Run, recipe_parser
from gan_zoo.experiments.checks import require_both_classes, require_full_batches
from gan_zoo.experiments.command_line import add_split_options
from gan_zoo.experiments.comparison import Comparison, compare_on_splits, cross_validate, rescore
from gan_zoo.experiments.report import Report
from gan_zoo.experiments.units import Units


@dataclasses.dataclass(frozen=True)
class Record:
    path: str
    label: int
    group: str


def records(patients=12, per_patient=6, seed=0):
    rng = np.random.default_rng(seed)
    return [Record(f"p{p}/{i}.png", int(rng.integers(0, 2)), f"p{p}")
            for p in range(patients) for i in range(per_patient)]


def scores_of(split, noise, seed):
    """Scores that follow the labels, with `noise`: hand-made and reproducible."""
    rng = np.random.default_rng(seed)
    return {part: np.clip([r.label * 0.6 + 0.2 + rng.normal(0, noise) for r in split[part]], 0, 1)
            for part in ("validation", "test")}


def test_a_comparison_scores_each_model_at_the_thresholds_of_its_validation_scores(tmp_path):
    split = PatientSplitter(seed=1).random(records())
    comparison = Comparison(split, "youden")
    good = comparison.add("good", scores_of(split, 0.05, 0), epochs=3)
    argmax = Comparison(split, "argmax").add("good", scores_of(split, 0.05, 0))
    assert good["epochs"] == 3 and good["operating_point"] == "youden"
    assert good["threshold_source"] == "validation" and argmax["threshold"] == 0.5
    assert good["n"] == len(split["test"])
    comparison.add("noisy", scores_of(split, 1.0, 1))
    assert comparison.results["good"]["auroc"] > comparison.results["noisy"]["auroc"]
    assert set(comparison.paired("good")) == {"noisy"}

    run = Run(tmp_path, {})
    comparison.save(run)
    saved = np.load(tmp_path / "scores.npz")
    assert saved["patients.test"].tolist() == [r.group for r in split["test"]]
    np.testing.assert_allclose(saved["noisy.validation"], comparison.scores["noisy"]["validation"])
    assert "good" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "roc_test.png").is_file() and (tmp_path / "confusion_noisy.png").is_file()
    assert (tmp_path / "pr_test.png").is_file()
    outcome = comparison.outcome(reference="good")
    assert outcome["patients"]["test"] == split.patients("test")
    assert outcome["comparisons"]["noisy"]["p_value"] == comparison.paired("good")["noisy"]["p_value"]


def test_a_saved_run_is_rescored_at_another_operating_point_as_if_run_at_it(tmp_path, capsys):
    from gan_zoo.cli import main

    split = PatientSplitter(seed=1).random(records())
    at_argmax = Comparison(split, "argmax")
    for name, noise in (("good", 0.3), ("noisy", 1.0)):
        at_argmax.add(name, scores_of(split, noise, 7))
    at_argmax.save(Run(tmp_path, {}))
    for point in ("youden", "sensitivity=0.9", "argmax"):
        fresh = Comparison(split, point)
        for name, noise in (("good", 0.3), ("noisy", 1.0)):
            fresh.add(name, scores_of(split, noise, 7))
        again = rescore(tmp_path / "scores.npz", point)
        assert list(again) == ["good", "noisy"]
        for name in again:
            assert again[name]["threshold"] == pytest.approx(fresh.results[name]["threshold"])
            assert again[name]["balanced_accuracy"] == pytest.approx(fresh.results[name]["balanced_accuracy"])
            assert again[name]["operating_point"] == point
    assert rescore(tmp_path / "scores.npz", "youden")["good"]["threshold"] != 0.5  # a threshold of its own

    assert main(["rethreshold", str(tmp_path), "--operating-point", "youden", "--write"]) == 0
    assert "Youden" in capsys.readouterr().out
    written = json.loads((tmp_path / "metrics-youden.json").read_text())
    assert written["noisy"]["threshold"] == pytest.approx(rescore(tmp_path / "scores.npz", "youden")["noisy"]["threshold"])
    assert (tmp_path / "table-youden.md").is_file()
    assert main(["rethreshold", str(tmp_path / "nothing"), "--operating-point", "youden"]) == 2


def test_a_table_of_an_image_level_split_says_patients_leak(tmp_path, capsys):
    split = PatientSplitter(seed=1).by_image(records(), 0.2, "Johnson 2020's 80/20")
    assert "IMAGE-LEVEL" in capsys.readouterr().out  # said when the split is made
    comparison = Comparison(split, "argmax")
    comparison.add("good", scores_of(split, 0.05, 0))
    comparison.save(Run(tmp_path / "leaky", {}))
    assert (tmp_path / "leaky" / "table.md").read_text().startswith("> **WARNING: IMAGE-LEVEL split 80/20")
    patient_split = Comparison(PatientSplitter(seed=1).random(records()), "argmax")
    patient_split.add("good", scores_of(patient_split.split, 0.05, 0))
    patient_split.save(Run(tmp_path / "by_patient", {}))
    assert "WARNING" not in (tmp_path / "by_patient" / "table.md").read_text()


def test_a_test_set_too_small_for_delong_leaves_the_results_standing():
    split = PatientSplitter(seed=1).random(records())
    positives = [i for i, r in enumerate(split["test"]) if r.label == 1]
    split.parts["test"] = [r for i, r in enumerate(split["test"]) if r.label == 0 or i == positives[0]]
    comparison = Comparison(split, "argmax")
    comparison.add("a", scores_of(split, 0.1, 0))
    comparison.add("b", scores_of(split, 0.4, 1))
    (test,) = comparison.paired("a").values()
    assert math.isnan(test["p_value"]) and "needs at least 2 positive" in test["error"]
    assert comparison.outcome(reference="a")["results"]["b"]["n"] == len(split["test"])


def test_scores_of_the_wrong_length_are_refused():
    split = PatientSplitter(seed=1).random(records())
    with pytest.raises(ValueError, match="test scores for"):
        Comparison(split, "argmax").add("m", {"validation": np.zeros(len(split["validation"])),
                                              "test": np.zeros(3)})


def test_folds_are_run_as_units_summarised_and_read_back_on_a_rerun(tmp_path):
    folds = PatientSplitter(seed=0).kfold(records(patients=15), 3)
    calls = []

    def compute(split, run):
        calls.append(split.name)
        comparison = Comparison(split, "youden")
        comparison.add("reference", scores_of(split, 0.1, int(split.name[-1])))
        comparison.add("other", scores_of(split, 0.4, 10 + int(split.name[-1])))
        comparison.save(run)
        return comparison.outcome(reference="reference")

    run = Run(tmp_path, {"seed": 0})
    metrics = compare_on_splits(folds, compute, report=Report(run, Units(run)), reference="reference",
                                data={"source": "hand-made"})
    aurocs = [fold["results"]["other"]["auroc"] for fold in metrics["folds"]]
    summary = metrics["cross_validation"]["other"]["auroc"]
    assert summary["folds"] == pytest.approx(aurocs) and summary["mean"] == pytest.approx(np.mean(aurocs))
    paired = metrics["paired_vs_reference"]["reference - other"]
    assert len(paired["delong_p_per_fold"]) == 3
    assert (tmp_path / "fold2" / "table.md").is_file() and "+/-" in (tmp_path / "table.md").read_text()
    assert sorted(metrics["seconds"]) == ["fold0", "fold1", "fold2"]
    assert json.loads((tmp_path / "metrics.json").read_text())["data"] == {"source": "hand-made"}

    (tmp_path / "units" / "fold1.json").unlink()  # as if fold1 was interrupted
    again = compare_on_splits(folds, compute, report=Report(run, Units(run)), reference="reference",
                              data={"source": "hand-made"})
    assert calls == ["fold0", "fold1", "fold2", "fold1"]
    assert again["cross_validation"] == metrics["cross_validation"]


def test_one_fold_has_a_mean_and_no_spread():
    split = PatientSplitter(seed=0).kfold(records(), 3, only=(0,))[0]
    comparison = Comparison(split, "argmax")
    comparison.add("a", scores_of(split, 0.1, 0))
    summary, paired = cross_validate([json.loads(json.dumps(comparison.outcome()))])
    assert math.isnan(summary["a"]["auroc"]["std"]) and paired == {}


def test_the_report_records_provenance_and_stage_times(tmp_path):
    run = Run(tmp_path, {"epochs": 2})
    report = Report(run)
    with report.stage("training"):
        pass
    with report.stage("training"):
        pass
    written = report.write({"auroc": 0.9}, data={"source": "x"})
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(written))
    assert on_disk["options"] == {"epochs": 2} and on_disk["versions"]["keras"].startswith("3.")
    assert list(on_disk["seconds"]) == ["training"] and on_disk["wall_seconds"] >= on_disk["seconds"]["training"]


def test_data_a_split_cannot_use_is_refused_in_one_line():
    with pytest.raises(UsageError, match=r"The test patients of fold1 have no images of class 1 \(idc\)"):
        require_both_classes({"validation": [0, 1], "test": [0, 0]}, "fold1", "hint", ("healthy", "idc"))
    require_both_classes({"test": [1, 0]}, "split", "hint")
    with pytest.raises(UsageError, match="batch size 64 but the training patients have 10 images"):
        require_full_batches({"The classifier": (64, 10)}, "split")


@pytest.mark.parametrize("argv, fragment", [
    (["--tune"], "--tune and --only-folds need --split kfold"),
    (["--split", "kfold", "--folds", "1"], "--folds must be at least 2"),
    (["--split", "kfold", "--only-folds", "5"], "fold indices run from 0 to 4"),
    (["--split", "kfold", "--only-folds", "a"], "expected fold indices like 0,2"),
    (["--validation-share", "1"], "--validation-share must be below 1"),
])
def test_split_options_are_checked_together(argv, fragment, capsys):
    parser = recipe_parser("example", "", epochs=1, batch_size=1)
    add_split_options(parser, ("random",), "random")
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert fragment in capsys.readouterr().err
    parsed = parser.parse_args(["--split", "kfold", "--only-folds", "2,0", "--tune"])
    assert isinstance(parsed, argparse.Namespace) and parsed.only_folds == (0, 2)
