"""Scoring a split's test patients once, at a recorded operating point.

Every recipe that classifies ends the same way: scores of the validation
patients set the decision threshold (`OperatingPoint`), the test patients
are scored once with it, and k folds are summarised. This module is that
ending, written once:

- `add_operating_point_option(parser, default)`: `--operating-point`.
- `score_split(point, labels, scores)`: the test metrics (with DeLong's
  AUROC interval) at `point`, recording the rule, the threshold and where
  it came from.
- `summarise_folds`: mean, standard deviation (ddof 1; NaN for one fold,
  never a made-up 0) and the per-fold values.
"""

import argparse

import numpy as np

from gan_zoo.metrics.crossval import summarise_folds
from gan_zoo.metrics.operating_point import OperatingPoint

__all__ = ["add_operating_point_option", "operating_point_argument", "score_split", "summarise_folds"]


def operating_point_argument(text):
    """argparse type of `--operating-point`: an `OperatingPoint`, or a usage error."""
    try:
        return OperatingPoint.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_operating_point_option(parser, default):
    """Adds `--operating-point` (default `default`, e.g. the paper's rule)."""
    parser.add_argument(
        "--operating-point", type=operating_point_argument, default=OperatingPoint.parse(default),
        help="how the decision threshold is set, on validation patients: argmax (P >= 0.5), "
             "youden, sensitivity=X or specificity=X; AUROC does not depend on it",
    )


def score_split(point, labels, scores, *, one_class_validation="refuse"):
    """Test metrics at `point`, its threshold chosen on the validation scores.

    Args:
        point: an `OperatingPoint` (or its text).
        labels: `{"validation": y, "test": y}` labels in {0, 1}.
        scores: `{"validation": p, "test": p}`, higher = more likely positive.
        one_class_validation: what to do when the validation patients hold
            one class only and `point` needs both: `"refuse"` (ValueError)
            or `"argmax"` (fall back to 0.5, recorded in the result's
            `threshold_source` as "argmax (validation has one class)").

    Returns:
        `evaluate_classifier`'s dict plus `operating_point`,
        `threshold_source` and `n_validation`.
    """
    point = OperatingPoint.parse(point)
    val_labels = np.asarray(labels["validation"]).reshape(-1)
    if point.uses_validation and len(np.unique(val_labels)) < 2:
        if one_class_validation != "argmax":
            raise ValueError(
                f"The operating point {point} is chosen on validation patients, whose "
                f"{len(val_labels)} images hold one class only."
            )
        result = OperatingPoint("argmax").evaluate(labels["test"], scores["test"])
        result.update(operating_point=str(point), threshold_source="argmax (validation has one class)",
                      n_validation=int(len(val_labels)))
        return result
    return point.evaluate(labels["test"], scores["test"], labels["validation"], scores["validation"])
