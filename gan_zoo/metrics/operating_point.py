"""Operating points: how a classifier's decision threshold is set.

A classifier's AUROC needs no threshold; its accuracy, sensitivity,
specificity, precision and F1 do. Which threshold is a choice of the
experiment, made once, and it must be reported with every
threshold-dependent number. `OperatingPoint` names the choice:

- `argmax`: the class with the larger probability, i.e. positive when
  P(positive) >= 0.5 for two classes. Needs no validation data: a
  classifier's own default decision, and the natural reading of papers
  that state no operating point.
- `youden`: the threshold that maximises Youden's J (sensitivity +
  specificity - 1) on validation patients (`choose_threshold`).
- `sensitivity=X`: the highest threshold whose validation sensitivity is
  at least X (the most specific such rule), e.g. a screening setting.
- `specificity=X`: the lowest threshold whose validation specificity is at
  least X (the most sensitive such rule).

Thresholds are always chosen on validation data and then applied unchanged
to the test data; a case is predicted positive when `score >= threshold`.

    point = OperatingPoint.parse("sensitivity=0.9")
    threshold = point.threshold(y_val, p_val)
    result = point.evaluate(y_test, p_test, y_val, p_val)   # metrics + how
"""

import math

import numpy as np

from gan_zoo.metrics.classification import choose_threshold, evaluate_classifier

ARGMAX_THRESHOLD = 0.5
POLICIES = ("argmax", "youden", "sensitivity", "specificity")
_SYNTAX = "argmax, youden, sensitivity=X or specificity=X with X in (0, 1]"


class OperatingPoint:
    """A rule that sets a binary classifier's decision threshold.

    Args:
        policy: one of `POLICIES`.
        target: the rate for `sensitivity` / `specificity`, in (0, 1];
            None for the others.

    Example:
        >>> OperatingPoint.parse("youden").threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.225
    """

    def __init__(self, policy, target=None):
        if policy not in POLICIES:
            raise ValueError(f"Unknown operating point {policy!r}: use {_SYNTAX}.")
        needs_target = policy in ("sensitivity", "specificity")
        if needs_target:
            if target is None or not (isinstance(target, (int, float)) and 0.0 < target <= 1.0):
                raise ValueError(f"The operating point {policy}=X needs X in (0, 1]; got {target!r}.")
            target = float(target)
        elif target is not None:
            raise ValueError(f"The operating point {policy} takes no value; got {policy}={target}.")
        self.policy = policy
        self.target = target

    @classmethod
    def parse(cls, text):
        """`"youden"`, `"argmax"`, `"sensitivity=0.9"` or `"specificity=0.95"`."""
        if isinstance(text, OperatingPoint):
            return text
        policy, _, value = str(text).strip().partition("=")
        policy = policy.strip()
        target = None
        if value:
            try:
                target = float(value)
            except ValueError:
                raise ValueError(f"Operating point {text!r}: {value!r} is not a number ({_SYNTAX}).") from None
        return cls(policy, target)

    @property
    def uses_validation(self):
        """Whether the threshold is chosen on validation data."""
        return self.policy != "argmax"

    def threshold(self, y_true_val=None, y_score_val=None):
        """The decision threshold (predict positive when `score >= threshold`).

        Args:
            y_true_val: validation labels in {0, 1} (both classes present);
                not needed for `argmax`.
            y_score_val: validation scores, higher = more likely positive.
        """
        if self.policy == "argmax":
            return ARGMAX_THRESHOLD
        if y_true_val is None or y_score_val is None:
            raise ValueError(f"The operating point {self} is chosen on validation data; none given.")
        if self.policy == "youden":
            return choose_threshold(y_true_val, y_score_val, "youden")
        return _threshold_at_rate(y_true_val, y_score_val, self.policy, self.target)

    def evaluate(self, y_true_test, y_score_test, y_true_val=None, y_score_val=None, **kwargs):
        """`evaluate_classifier` on the test data at this operating point.

        The result also says how its threshold was set: `operating_point`
        (this rule as text), `threshold_source` ("validation" or "argmax")
        and `n_validation`.
        """
        threshold = self.threshold(y_true_val, y_score_val)
        result = evaluate_classifier(y_true_test, y_score_test, threshold=threshold, **kwargs)
        result.update(
            operating_point=str(self),
            threshold_source="validation" if self.uses_validation else "argmax",
            threshold_criterion=self.policy,
            n_validation=None if y_true_val is None else int(np.asarray(y_true_val).shape[0]),
        )
        return result

    def describe(self):
        """A phrase for tables: how the threshold was set."""
        if self.policy == "argmax":
            return "argmax (P(positive) >= 0.5)"
        if self.policy == "youden":
            return "threshold by Youden's J on validation patients"
        return f"threshold at {self.policy} >= {self.target:g} on validation patients"

    def __str__(self):
        return self.policy if self.target is None else f"{self.policy}={self.target:g}"

    def __repr__(self):
        return f"OperatingPoint({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, OperatingPoint) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def _threshold_at_rate(y_true_val, y_score_val, policy, target):
    labels = np.asarray(y_true_val).astype(bool).reshape(-1)
    score = np.asarray(y_score_val, np.float64).reshape(-1)
    if labels.shape != score.shape:
        raise ValueError(f"y_true_val has {labels.size} labels but y_score_val {score.size} scores.")
    if not np.all(np.isfinite(score)):
        raise ValueError("y_score_val holds NaN or infinite scores.")
    n_positive, n_negative = int(labels.sum()), int((~labels).sum())
    if n_positive == 0 or n_negative == 0:
        raise ValueError(
            f"The operating point {policy}={target:g} needs both classes in the validation labels; "
            f"got {n_positive} positive and {n_negative} negative."
        )
    distinct = np.unique(score)
    # Every rule the validation data can tell apart: everything positive
    # (the lowest score), the midpoints between distinct scores, and
    # everything negative (just above the highest score).
    candidates = np.concatenate([
        distinct[:1], (distinct[:-1] + distinct[1:]) / 2.0, [np.nextafter(distinct[-1], math.inf)],
    ])
    tp = n_positive - np.searchsorted(np.sort(score[labels]), candidates, side="left")
    fp = n_negative - np.searchsorted(np.sort(score[~labels]), candidates, side="left")
    # A small tolerance, so that a target of exactly k/n is met by k cases.
    if policy == "sensitivity":
        met = np.flatnonzero(tp / n_positive >= target - 1e-12)
        return float(candidates[met[-1]])  # sensitivity falls as the threshold rises
    met = np.flatnonzero(1.0 - fp / n_negative >= target - 1e-12)
    return float(candidates[met[0]])  # specificity rises with the threshold
