"""Binary classification metrics for IDC detectors and GAN-augmented classifiers.

Conventions used throughout:

* Labels are 0 (healthy / negative) and 1 (IDC / positive).
* Scores are "higher = more likely positive" (a probability or a logit).
* A case is predicted positive when `score >= threshold`.
* The decision threshold is a model hyper-parameter: `choose_threshold` picks
  it on validation data and `evaluate_classifier` then applies it unchanged
  to the test set. Choosing it on the test set would bias every
  threshold-dependent number upwards.
* Undefined ratios (a zero denominator, e.g. precision with no predicted
  positives) are reported as 0.0, listed under `"undefined_metrics"` and
  announced with an `UndefinedMetricWarning`. The AUROC with one class present
  is reported as NaN (it is a ranking of positives against negatives).
* All returned numbers are python `float`/`int`, so the dicts can go straight
  into `json.dumps`. NaN is written as the `NaN` token by `json.dumps`.
* Confusion counts, ROC points, balanced accuracy and F1 come from
  scikit-learn (imported on first use, so `import gan_zoo.metrics` stays
  light); the AUROC is the DeLong module's, so that tables, ROC legends and
  confidence intervals share one computation.
"""

import math
import warnings

import numpy as np

from gan_zoo.metrics import delong
from gan_zoo.metrics.tables import (  # noqa: F401  (re-exported)
    DEFAULT_TABLE_METRICS,
    PERCENT_LABELS,
    format_metrics_table,
)

__all__ = [
    "THRESHOLD_CRITERIA",
    "UndefinedMetricWarning",
    "binary_metrics",
    "choose_threshold",
    "confusion_counts",
    "evaluate_classifier",
    "format_metrics_table",
    "roc_curve_points",
]

THRESHOLD_CRITERIA = ("youden", "f1", "balanced_accuracy")

DEFAULT_THRESHOLD = 0.5


class UndefinedMetricWarning(RuntimeWarning):
    """A metric had a zero denominator (or one class only) on these data."""


def _validated(y_true, y_second, second_name):
    labels = delong._binary_labels(y_true)
    second = delong._scores(y_second, labels.shape[0], second_name)
    return labels, second


def _counts(labels, predicted):
    from sklearn.metrics import confusion_matrix  # imported on use: gan_zoo.metrics stays light

    cells = confusion_matrix(labels, predicted, labels=[False, True]).ravel()
    tn, fp, fn, tp = (int(c) for c in cells)
    return tn, fp, fn, tp


def confusion_counts(y_true, y_pred):
    """Cells of the binary confusion matrix.

    Args:
        y_true: true labels in {0, 1}, shape `(N,)` or `(N, 1)`.
        y_pred: predicted labels in {0, 1}, same shape.

    Returns:
        `(tn, fp, fn, tp)` as python ints (the order of
        `sklearn.metrics.confusion_matrix(...).ravel()`).

    Raises:
        ValueError: empty input, different lengths, labels other than 0/1,
            NaN, or more than one column.
    """
    labels = delong._binary_labels(y_true, "y_true")
    predicted = delong._binary_labels(y_pred, "y_pred")
    if predicted.shape != labels.shape:
        raise ValueError(
            f"y_pred has {predicted.shape[0]} entries but y_true has "
            f"{labels.shape[0]}; they must describe the same cases."
        )
    return _counts(labels, predicted)


def _ratio(numerator, denominator, name, undefined):
    if denominator == 0:
        undefined.append(name)
        return 0.0
    return numerator / denominator


def _threshold_metrics(labels, predicted, tn, fp, fn, tp):
    """Threshold metrics; returns (dict, names of undefined ones).

    Balanced accuracy and F1 come from scikit-learn; the counts say which
    ratios had a zero denominator (reported as 0.0 and listed).
    """
    from sklearn.metrics import balanced_accuracy_score, f1_score

    undefined = []
    n_positive, n_negative = tp + fn, tn + fp
    recall = _ratio(tp, n_positive, "recall", undefined)
    specificity = _ratio(tn, n_negative, "specificity", undefined)
    precision = _ratio(tp, tp + fp, "precision", undefined)
    if 2 * tp + fp + fn == 0:
        undefined.append("f1")
    f1 = f1_score(labels, predicted, zero_division=0.0)
    # scikit-learn: mean recall over the classes present in y_true; with one
    # class it warns that y_pred has a class y_true lacks (listed here instead).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        balanced_accuracy = balanced_accuracy_score(labels, predicted)
    if n_positive == 0 or n_negative == 0:
        undefined.append("balanced_accuracy")
    metrics = {
        "accuracy": (tp + tn) / (tn + fp + fn + tp),
        "balanced_accuracy": balanced_accuracy,
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": f1,
    }
    return {k: float(v) for k, v in metrics.items()}, undefined


def binary_metrics(y_true, y_score, threshold=DEFAULT_THRESHOLD):
    """Threshold and ranking metrics of a binary classifier on one data set.

    Args:
        y_true: labels in {0, 1}, shape `(N,)` or `(N, 1)`.
        y_score: scores, higher = more likely positive, same shape.
        threshold: a case is predicted positive when `score >= threshold`.

    Returns:
        dict of python scalars:
        `accuracy`, `balanced_accuracy` (mean of recall and specificity),
        `precision` (PPV), `recall` (= sensitivity, TPR), `specificity` (TNR),
        `f1`, `auroc` (threshold-free), `tn`, `fp`, `fn`, `tp`, `n`,
        `n_positive`, `threshold`, and `undefined_metrics`: the names of the
        metrics whose denominator was zero on these data.

    Edge cases:
        * precision with no predicted positives, recall with no positive
          cases, specificity with no negative cases and f1 with neither
          positives nor predicted positives are 0.0 and listed in
          `undefined_metrics`;
        * with one class only, `balanced_accuracy` is the recall of that
          class (listed as undefined) and `auroc` is NaN (listed);
        * each non-empty `undefined_metrics` issues one
          `UndefinedMetricWarning`.

    Raises:
        ValueError: malformed labels or scores, or a non-finite threshold.
    """
    labels, score = _validated(y_true, y_score, "y_score")
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}.")
    predicted = score >= threshold
    tn, fp, fn, tp = _counts(labels, predicted)
    metrics, undefined = _threshold_metrics(labels, predicted, tn, fp, fn, tp)
    if 0 < tp + fn < labels.shape[0]:
        aucs, _, _ = delong._components(labels, [score])
        metrics["auroc"] = float(aucs[0])
    else:
        metrics["auroc"] = float("nan")
        undefined.append("auroc")
    if undefined:
        warnings.warn(
            f"Undefined on these data (reported as 0.0, AUROC as NaN): "
            f"{', '.join(undefined)}; tn={tn} fp={fp} fn={fn} tp={tp}.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    metrics.update(
        tn=tn,
        fp=fp,
        fn=fn,
        tp=tp,
        n=int(labels.shape[0]),
        n_positive=int(tp + fn),
        threshold=threshold,
        undefined_metrics=undefined,
    )
    return metrics


def _auc_and_variance_or_nan(labels, score):
    """(auc, DeLong variance); the variance is NaN with < 2 cases of a class."""
    n_positive = int(labels.sum())
    min_class = min(n_positive, labels.shape[0] - n_positive)
    if min_class >= 2:
        return delong.delong_auc_variance(labels, score)
    return delong.auroc(labels, score), float("nan")


def roc_curve_points(y_true, y_score):
    """ROC curve: false- and true-positive rates at every distinct threshold.

    Args:
        y_true: labels in {0, 1}; both classes must be present.
        y_score: scores, higher = more likely positive.

    Returns:
        `(fpr, tpr, thresholds)` numpy arrays. `thresholds` are the distinct
        scores in decreasing order, preceded by `+inf` (nothing predicted
        positive), so the curve runs from (0, 0) to (1, 1).
    """
    from sklearn.metrics import roc_curve

    labels, score = _validated(y_true, y_score, "y_score")
    n_positive = int(labels.sum())
    if n_positive in (0, labels.shape[0]):
        raise ValueError("The ROC curve needs both classes in y_true.")
    fpr, tpr, thresholds = roc_curve(labels, score, drop_intermediate=False)
    # scikit-learn >= 1.3 starts at +inf; older versions at max(score) + 1.
    thresholds = np.concatenate([[np.inf], thresholds[1:]])
    return fpr, tpr, thresholds


def _criterion_values(criterion, tp, fp, n_positive, n_negative):
    sensitivity = tp / n_positive
    specificity = 1.0 - fp / n_negative
    if criterion == "youden":
        return sensitivity + specificity - 1.0
    if criterion == "balanced_accuracy":
        return (sensitivity + specificity) / 2.0
    # f1 = 2tp / (2tp + fp + fn); the denominator is > 0 since n_positive > 0.
    return 2.0 * tp / (tp + fp + n_positive)


def choose_threshold(y_true_val, y_score_val, criterion="youden"):
    """Decision threshold that maximises `criterion` on VALIDATION data.

    Pass validation (or tuning) data only, never the test set: the chosen
    threshold is then applied unchanged to the test set (see
    `evaluate_classifier`). The function is pure: it returns the threshold
    and keeps no state.

    Candidates are the midpoints between consecutive distinct validation
    scores, so every candidate separates the validation cases differently and
    none sits exactly on a validation score. The trivial rules "everything
    positive" and "everything negative" are not candidates. Ties in the
    criterion (within 1e-12) are broken towards the smallest threshold, i.e.
    the highest sensitivity among equally good thresholds (missing an IDC
    case is the costlier error). The result does not depend on the order of
    the cases.

    Args:
        y_true_val: validation labels in {0, 1}; both classes must be present.
        y_score_val: validation scores, higher = more likely positive; at
            least two distinct values.
        criterion: `"youden"` (sensitivity + specificity - 1),
            `"balanced_accuracy"` (same maximiser as Youden's J, since
            J = 2 * balanced accuracy - 1) or `"f1"`.

    Returns:
        The threshold as a python float; predict positive when
        `score >= threshold`.
    """
    if criterion not in THRESHOLD_CRITERIA:
        raise ValueError(
            f"Unknown criterion {criterion!r}; choose one of {THRESHOLD_CRITERIA}."
        )
    labels, score = _validated(y_true_val, y_score_val, "y_score_val")
    n_positive = int(labels.sum())
    n_negative = labels.shape[0] - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError(
            "choose_threshold needs both classes in the validation labels; got "
            f"{n_positive} positive and {n_negative} negative."
        )
    distinct = np.unique(score)
    if distinct.shape[0] < 2:
        raise ValueError(
            "choose_threshold needs at least two distinct validation scores; "
            f"all {score.shape[0]} scores equal {distinct[0]}."
        )
    candidates = (distinct[:-1] + distinct[1:]) / 2.0
    positive_scores = np.sort(score[labels])
    negative_scores = np.sort(score[~labels])
    # Number of cases with score >= candidate, for each candidate.
    tp = n_positive - np.searchsorted(positive_scores, candidates, side="left")
    fp = n_negative - np.searchsorted(negative_scores, candidates, side="left")
    values = _criterion_values(criterion, tp, fp, n_positive, n_negative)
    best = np.flatnonzero(values >= values.max() - 1e-12)[0]
    return float(candidates[best])


def evaluate_classifier(
    y_true_test,
    y_score_test,
    *,
    y_true_val=None,
    y_score_val=None,
    criterion="youden",
    threshold=None,
    alpha=0.05,
):
    """Test-set evaluation with a validation-chosen threshold and AUROC CI.

    The threshold comes from, in order of precedence:

    * `y_true_val`/`y_score_val`: `choose_threshold(val, criterion)`;
      `threshold_source = "validation"`;
    * `threshold`: used as given; `threshold_source = "fixed"`;
    * otherwise 0.5; `threshold_source = "default"`.

    Giving both validation data and `threshold` is an error, as the function
    would have to ignore one of them. The test data never influence the
    threshold.

    Args:
        y_true_test: test labels in {0, 1}.
        y_score_test: test scores, higher = more likely positive.
        y_true_val: validation labels, to choose the threshold.
        y_score_val: validation scores, to choose the threshold.
        criterion: see `choose_threshold`; recorded only when used.
        threshold: fixed threshold, when no validation data are given.
        alpha: 1 - coverage of the AUROC confidence interval.

    Returns:
        The dict of `binary_metrics` on the test set plus
        `threshold_source`, `threshold_criterion` (None unless chosen on
        validation), `n_validation` (None without validation data),
        `auroc_se`, `auroc_ci_low`, `auroc_ci_high` (DeLong, normal
        approximation clipped to [0, 1]; NaN with fewer than 2 test cases of
        a class), `ci_level` (`1 - alpha`), `ci_method` (`"delong"`) and
        `split` (`"test"`). All values are JSON-serialisable.
    """
    has_val = y_true_val is not None or y_score_val is not None
    if has_val and (y_true_val is None or y_score_val is None):
        raise ValueError("Give both y_true_val and y_score_val, or neither.")
    if has_val and threshold is not None:
        raise ValueError(
            "Give either validation data (to choose the threshold) or a fixed "
            "threshold, not both."
        )
    if criterion not in THRESHOLD_CRITERIA:
        raise ValueError(
            f"Unknown criterion {criterion!r}; choose one of {THRESHOLD_CRITERIA}."
        )
    z = delong._check_alpha(alpha)
    if has_val:
        threshold = choose_threshold(y_true_val, y_score_val, criterion)
        source, used_criterion = "validation", criterion
        n_validation = int(np.asarray(y_true_val).shape[0])
    elif threshold is not None:
        source, used_criterion, n_validation = "fixed", None, None
    else:
        threshold = DEFAULT_THRESHOLD
        source, used_criterion, n_validation = "default", None, None

    with warnings.catch_warnings():
        # Re-issued below so that the warning points at the caller.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = binary_metrics(y_true_test, y_score_test, threshold)
    if result["undefined_metrics"]:
        warnings.warn(
            "Undefined on the test set (reported as 0.0, AUROC as NaN): "
            + ", ".join(result["undefined_metrics"]),
            UndefinedMetricWarning,
            stacklevel=2,
        )

    labels, score = _validated(y_true_test, y_score_test, "y_score_test")
    if math.isnan(result["auroc"]):
        se = float("nan")
    else:
        _, variance = _auc_and_variance_or_nan(labels, score)
        se = math.sqrt(variance) if math.isfinite(variance) else float("nan")
    if math.isfinite(se):
        ci_low = max(0.0, result["auroc"] - z * se)
        ci_high = min(1.0, result["auroc"] + z * se)
    else:
        ci_low = ci_high = float("nan")
    result.update(
        threshold_source=source,
        threshold_criterion=used_criterion,
        n_validation=n_validation,
        auroc_se=float(se),
        auroc_ci_low=float(ci_low),
        auroc_ci_high=float(ci_high),
        ci_level=float(1.0 - alpha),
        ci_method="delong",
        split="test",
    )
    return result
