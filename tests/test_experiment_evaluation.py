"""Scoring at an operating point: the thresholds every recipe's option gives."""

import importlib.util
import math
import pathlib

import numpy as np
import pytest

from gan_zoo.experiments.evaluation import score_split, summarise_folds
from gan_zoo.metrics.operating_point import OperatingPoint

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Each classifying recipe and its default operating point.
# No paper states an operating point: a classifier's own decision (argmax,
# P >= 0.5) is the reading of their tables.
CLASSIFYING_RECIPES = {"semi_cgan_idc": "argmax", "diagram_ddsm_to_inbreast": "argmax",
                       "gan_augmentation_idc": "argmax", "cigan_ddsm": "argmax", "dcgan_idc": "argmax",
                       "compare_classifiers_idc": "argmax"}

# Validation: sorted scores 0.1(0) 0.2(0) 0.6(1) 0.7(0) 0.8(1) 0.9(1). Youden's J
# is 2/3 at 0.4 and at 0.75; ties go to the lower threshold, 0.4. argmax is 0.5.
LABELS = {"validation": np.array([0, 0, 1, 0, 1, 1]), "test": np.array([0, 1, 1, 0])}
SCORES = {"validation": np.array([0.1, 0.2, 0.6, 0.7, 0.8, 0.9]),
          "test": np.array([0.3, 0.45, 0.9, 0.55])}


@pytest.mark.parametrize("point, threshold, accuracy", [
    ("youden", 0.4, 0.75),  # predicts 0 1 1 1
    ("argmax", 0.5, 0.5),  # predicts 0 0 1 1
    ("sensitivity=1", 0.4, 0.75),
    ("specificity=1", 0.75, 0.75),  # predicts 0 0 1 0
])
def test_the_operating_point_sets_the_documented_threshold(point, threshold, accuracy):
    result = score_split(point, LABELS, SCORES)
    assert result["threshold"] == pytest.approx(threshold)
    assert result["accuracy"] == pytest.approx(accuracy)
    assert result["operating_point"] == point
    assert result["n_validation"] == 6
    assert result["auroc"] == pytest.approx(0.75)  # the same at every operating point


def test_one_class_validation_is_refused_or_falls_back_to_argmax_on_request():
    labels = {"validation": np.zeros(6, int), "test": LABELS["test"]}
    with pytest.raises(ValueError, match="one class only"):
        score_split("youden", labels, SCORES)
    result = score_split("youden", labels, SCORES, one_class_validation="argmax")
    assert result["threshold"] == 0.5
    assert result["threshold_source"] == "argmax (validation has one class)"
    assert score_split("argmax", labels, SCORES)["threshold"] == 0.5  # needs no validation


@pytest.mark.parametrize("point, phrase", [
    ("argmax", "argmax (P(positive) >= 0.5)"),
    ("youden", "threshold by Youden's J on validation patients"),
    ("sensitivity=0.9", "threshold at sensitivity >= 0.9 on validation patients"),
])
def test_every_operating_point_describes_itself_for_the_tables(point, phrase):
    assert OperatingPoint.parse(point).describe() == phrase


def test_one_fold_has_no_spread():
    summary = summarise_folds({"m": [{"auroc": 0.8, "accuracy": 0.7}]}, ("auroc", "accuracy"))
    assert summary["m"]["auroc"]["mean"] == 0.8 and math.isnan(summary["m"]["auroc"]["std"])


def _recipe(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, default", CLASSIFYING_RECIPES.items())
def test_every_classifying_recipe_takes_the_operating_point_option(name, default, capsys):
    recipe = _recipe(name)
    assert recipe.parse_args([]).operating_point == OperatingPoint.parse(default)
    chosen = recipe.parse_args(["--operating-point", "sensitivity=0.9"]).operating_point
    assert chosen == OperatingPoint("sensitivity", 0.9)
    with pytest.raises(SystemExit) as exit_:
        recipe.parse_args(["--operating-point", "sensitivity=2"])
    assert exit_.value.code == 2
    assert "--operating-point: The operating point sensitivity=X needs X in (0, 1]" in capsys.readouterr().err
