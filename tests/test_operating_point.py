"""Operating points chosen on hand-made validation scores."""

import numpy as np
import pytest

from gan_zoo.metrics.operating_point import OperatingPoint

# Validation: 4 negatives, 4 positives; scores sorted by hand.
Y_VAL = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P_VAL = np.array([0.05, 0.20, 0.30, 0.60, 0.40, 0.55, 0.70, 0.90])
Y_TEST = np.array([0, 0, 1, 1])
P_TEST = np.array([0.45, 0.52, 0.50, 0.95])


@pytest.mark.parametrize("text, threshold", [
    # Youden: midpoint 0.35 between 0.30 (neg) and 0.40 (pos): sens 1, spec 0.75.
    ("youden", 0.35),
    # argmax needs no validation data: P(positive) >= 0.5.
    ("argmax", 0.5),
    # Sensitivity >= 0.75: the highest such threshold keeps 3 of 4 positives
    # (0.55, 0.70, 0.90): midpoint between 0.40 and 0.55.
    ("sensitivity=0.75", 0.475),
    # Sensitivity 1 keeps 0.40: midpoint between 0.30 and 0.40.
    ("sensitivity=1", 0.35),
    # Specificity >= 0.75: the lowest such threshold rejects 3 of 4 negatives
    # (0.05, 0.20, 0.30): midpoint between 0.30 and 0.40.
    ("specificity=0.75", 0.35),
    # Specificity 1 must reject 0.60 too: midpoint between 0.60 and 0.70.
    ("specificity=1", 0.65),
])
def test_thresholds_on_hand_made_scores(text, threshold):
    point = OperatingPoint.parse(text)
    assert point.threshold(Y_VAL, P_VAL) == pytest.approx(threshold)
    assert str(point) == text and OperatingPoint.parse(str(point)) == point


def test_extreme_rates_use_everything_positive_or_negative():
    # The lowest validation score is a positive: sensitivity 1 needs every case positive.
    y, p = np.array([1, 0, 1]), np.array([0.1, 0.5, 0.9])
    assert OperatingPoint.parse("sensitivity=1").threshold(y, p) == 0.1
    # The highest score is a negative: specificity 1 needs every case negative.
    y, p = np.array([1, 0]), np.array([0.2, 0.8])
    threshold = OperatingPoint.parse("specificity=1").threshold(y, p)
    assert threshold > 0.8 and not (p >= threshold).any()


def test_evaluate_records_how_the_threshold_was_set():
    youden = OperatingPoint.parse("youden").evaluate(Y_TEST, P_TEST, Y_VAL, P_VAL)
    argmax = OperatingPoint.parse("argmax").evaluate(Y_TEST, P_TEST)
    assert youden["threshold"] == pytest.approx(0.35) and argmax["threshold"] == 0.5
    assert youden["operating_point"] == "youden" and argmax["operating_point"] == "argmax"
    assert youden["threshold_source"] == "validation" and argmax["threshold_source"] == "argmax"
    assert youden["n_validation"] == 8 and argmax["n_validation"] is None
    # Same scores, different decisions: every test case positive at 0.35;
    # at 0.5 the negative 0.45 is rejected.
    assert youden["specificity"] == 0.0 and argmax["specificity"] == 0.5
    assert youden["recall"] == argmax["recall"] == 1.0
    assert youden["auroc"] == argmax["auroc"]


@pytest.mark.parametrize("text, match", [
    ("median", "Unknown operating point 'median'"),
    ("sensitivity", r"needs X in \(0, 1\]"),
    ("sensitivity=1.5", r"needs X in \(0, 1\]"),
    ("specificity=high", "'high' is not a number"),
    ("youden=0.5", "takes no value"),
])
def test_bad_operating_points_are_one_line_errors(text, match):
    with pytest.raises(ValueError, match=match):
        OperatingPoint.parse(text)


def test_validation_policies_need_validation_data_with_both_classes():
    with pytest.raises(ValueError, match="chosen on validation data"):
        OperatingPoint.parse("youden").threshold()
    with pytest.raises(ValueError, match="both classes"):
        OperatingPoint.parse("sensitivity=0.9").threshold([1, 1], [0.2, 0.3])
