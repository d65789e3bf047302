"""DeLong's nonparametric variance of the AUROC, its confidence interval, and
the paired test for two models scored on the same cases.

Method: E. R. DeLong, D. M. DeLong, D. L. Clarke-Pearson (1988), "Comparing
the areas under two or more correlated receiver operating characteristic
curves: a nonparametric approach", Biometrics 44(3):837-845. Computed with the
O(n log n) midrank algorithm of X. Sun and W. Xu (2014), "Fast implementation
of DeLong's algorithm for comparing the areas under correlated receiver
operating characteristic curves", IEEE Signal Processing Letters 21(11).

Notation (DeLong 1988). With `m` positive cases `X_1..X_m` and `n` negative
cases `Y_1..Y_n` and the kernel `psi(x, y) = 1 if x > y, 1/2 if x == y, 0
otherwise`, the structural components (placement values) are

    V10(X_i) = (1/n) * sum_j psi(X_i, Y_j)     one per positive case
    V01(Y_j) = (1/m) * sum_i psi(X_i, Y_j)     one per negative case

and the AUROC is the mean of either. With `S10` and `S01` the sample
(co)variances (divisor `m - 1`, `n - 1`) of the components across cases,

    Var(AUC) = S10 / m + S01 / n.

Sun & Xu obtain the components from three midrank vectors instead of the
O(m n) double sum: with `Tz` the midranks of all `m + n` scores, `Tx` the
midranks of the positives among themselves and `Ty` those of the negatives,

    V10(X_i) = (Tz(X_i) - Tx(X_i)) / n
    V01(Y_j) = 1 - (Tz(Y_j) - Ty(Y_j)) / m,

since `Tz(X_i) - Tx(X_i)` counts the negatives below `X_i`, ties counted one
half.
"""

import numpy as np
from scipy import special

__all__ = [
    "auroc_confidence_interval",
    "delong_auc_variance",
    "delong_paired_test",
    "delong_placement_values",
]


def _midranks(values):
    """1-based ranks of `values`, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    size = ordered.shape[0]
    starts_run = np.empty(size, dtype=bool)
    starts_run[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_run[1:])
    run_starts = np.flatnonzero(starts_run)
    run_ends = np.append(run_starts[1:], size)
    # A run occupying sorted positions [start, end) holds ranks start+1..end.
    run_midranks = (run_starts + 1 + run_ends) / 2.0
    ranks = np.empty(size, dtype=np.float64)
    ranks[order] = run_midranks[np.cumsum(starts_run) - 1]
    return ranks


def _binary_labels(y_true, name="y_true"):
    """`y_true` as a 1-D bool array; raises ValueError unless it is 0/1 labels.

    Accepts shape `(N,)` or `(N, 1)` (what `model.predict` returns), with
    bool, integer or float dtype; float labels must be exactly 0.0 or 1.0.
    """
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {labels.shape}.")
    if labels.shape[0] == 0:
        raise ValueError(f"{name} is empty.")
    if labels.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must be numeric 0/1 labels, got dtype {labels.dtype}."
        )
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if not np.all((labels == 0) | (labels == 1)):
        bad = np.unique(labels[(labels != 0) & (labels != 1)])[:5]
        raise ValueError(f"{name} must hold binary labels 0/1, found {bad.tolist()}.")
    return labels.astype(bool)


def _scores(y_score, size, name="y_score"):
    """`y_score` as a finite 1-D float64 array of length `size`."""
    score = np.asarray(y_score)
    if score.ndim == 2 and score.shape[1] == 1:
        score = score[:, 0]
    if score.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {score.shape}.")
    if score.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {score.dtype}.")
    if score.shape[0] != size:
        raise ValueError(
            f"{name} has {score.shape[0]} entries but the labels have {size}; "
            "they must describe the same cases."
        )
    score = score.astype(np.float64)
    if not np.all(np.isfinite(score)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return score


def _check_inputs(y_true, scores, names, min_per_class=2):
    """Validates labels and score vectors; returns (positive mask, scores)."""
    positive = _binary_labels(y_true)
    checked = [
        _scores(score, positive.shape[0], name) for score, name in zip(scores, names)
    ]
    n_positive = int(positive.sum())
    n_negative = positive.shape[0] - n_positive
    if min(n_positive, n_negative) < min_per_class:
        raise ValueError(
            f"DeLong's method needs at least {min_per_class} positive and "
            f"{min_per_class} negative case(s); got {n_positive} positive and "
            f"{n_negative} negative."
        )
    return positive, checked


def _components(positive, scores):
    """AUCs (k,), V10 (k, m) and V01 (k, n) for k score vectors."""
    n_positive = int(positive.sum())
    n_negative = positive.shape[0] - n_positive
    aucs, v10s, v01s = [], [], []
    for score in scores:
        pos, neg = score[positive], score[~positive]
        all_ranks = _midranks(np.concatenate([pos, neg]))
        v10 = (all_ranks[:n_positive] - _midranks(pos)) / n_negative
        v01 = 1.0 - (all_ranks[n_positive:] - _midranks(neg)) / n_positive
        # Mann-Whitney form of the AUC, identical to v10.mean() in exact
        # arithmetic but with less rounding.
        rank_sum = all_ranks[:n_positive].sum()
        aucs.append(
            (rank_sum - n_positive * (n_positive + 1) / 2.0) / (n_positive * n_negative)
        )
        v10s.append(v10)
        v01s.append(v01)
    return np.array(aucs), np.array(v10s), np.array(v01s)


def auroc(y_true, y_score):
    """The AUROC (Mann-Whitney form, ties count one half) as a python float.

    Raises:
        ValueError: on malformed input or when a class is absent.
    """
    positive, (score,) = _check_inputs(y_true, [y_score], ["y_score"], min_per_class=1)
    aucs, _, _ = _components(positive, [score])
    return float(aucs[0])


def delong_placement_values(y_true, y_score):
    """DeLong's structural components (placement values) of one score vector.

    Args:
        y_true: binary labels, 1 = positive (e.g. IDC), shape `(N,)`.
        y_score: scores, higher = more likely positive, shape `(N,)`.

    Returns:
        `(v10, v01)`: `v10[i]` is the fraction of negatives scored below the
        i-th positive case (ties count one half), in the order the positives
        appear in `y_true`; `v01[j]` the fraction of positives scored above
        the j-th negative case. Both are numpy float64 arrays.

    Raises:
        ValueError: on malformed input or when a class is absent.
    """
    positive, (score,) = _check_inputs(y_true, [y_score], ["y_score"], min_per_class=1)
    _, v10, v01 = _components(positive, [score])
    return v10[0], v01[0]


def delong_auc_variance(y_true, y_score):
    """AUROC and DeLong's nonparametric estimate of its variance.

    Args:
        y_true: binary labels, 1 = positive, shape `(N,)`.
        y_score: scores, higher = more likely positive, shape `(N,)`.

    Returns:
        `(auc, variance)` as python floats. `variance = S10/m + S01/n` (see
        the module docstring); it is 0.0 when the classes are perfectly
        separated.

    Raises:
        ValueError: on malformed input, or fewer than 2 cases of a class (the
            sample variances are then undefined).

    Example:

    >>> delong_auc_variance([1, 1, 1, 0, 0, 0], [0.9, 0.6, 0.4, 0.6, 0.3, 0.1])
    (0.8333333333333334, 0.037037037037037035)
    """
    positive, (score,) = _check_inputs(y_true, [y_score], ["y_score"])
    auc, v10, v01 = _components(positive, [score])
    variance = (
        np.var(v10[0], ddof=1) / v10.shape[1] + np.var(v01[0], ddof=1) / v01.shape[1]
    )
    return float(auc[0]), float(variance)


def _check_alpha(alpha):
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    return float(special.ndtri(1.0 - alpha / 2.0))


def auroc_confidence_interval(y_true, y_score, alpha=0.05):
    """Two-sided `1 - alpha` confidence interval for the AUROC (DeLong).

    Normal (Wald) approximation on the AUC scale: `auc +/- z * se` with
    `z = Phi^-1(1 - alpha/2)` and `se = sqrt(DeLong variance)`, then clipped
    to `[0, 1]`. The clipping means the interval is not symmetric near 0 or
    1, and when the classes are perfectly separated the variance is 0 and the
    interval collapses to `[1, 1]`; on small test sets treat such intervals
    as optimistic.

    Args:
        y_true: binary labels, 1 = positive, shape `(N,)`.
        y_score: scores, higher = more likely positive, shape `(N,)`.
        alpha: 1 - coverage; 0.05 gives a 95% interval.

    Returns:
        `(auc, low, high)` as python floats.
    """
    z = _check_alpha(alpha)
    auc, variance = delong_auc_variance(y_true, y_score)
    half_width = z * np.sqrt(variance)
    return auc, float(max(0.0, auc - half_width)), float(min(1.0, auc + half_width))


def delong_paired_test(y_true, scores_a, scores_b, alpha=0.05):
    """DeLong's test that two models scored on the same cases have equal AUROC.

    The two AUCs are correlated because they share the cases; the test uses
    the DeLong covariance matrix of the pair. `z = (auc_a - auc_b) / se`,
    two-sided `p = 2 * Phi(-|z|)`. The variance of the difference is computed
    from the differences of the placement values, so identical score vectors
    give exactly `difference = 0`, `z = 0`, `p = 1`.

    When the difference is non-zero but its estimated variance is 0 (the
    placement values differ by a constant on every case, only possible on
    tiny or degenerate sets), `z` is `+/-inf` and `p = 0.0`.

    Args:
        y_true: binary labels, 1 = positive, shape `(N,)`.
        scores_a: scores of model A on the N cases.
        scores_b: scores of model B on the same N cases, same order.
        alpha: 1 - coverage of the reported confidence interval of the
            difference.

    Returns:
        dict of python floats/ints: `auc_a`, `auc_b`, `difference`
        (`auc_a - auc_b`), `variance_a`, `variance_b`, `covariance`,
        `correlation`, `se_difference`, `z`, `p_value`, `difference_ci_low`,
        `difference_ci_high` (Wald, not clipped), `alpha`, `n`, `n_positive`,
        `n_negative`.
    """
    z_crit = _check_alpha(alpha)
    positive, scores = _check_inputs(
        y_true, [scores_a, scores_b], ["scores_a", "scores_b"]
    )
    aucs, v10, v01 = _components(positive, scores)
    m, n = v10.shape[1], v01.shape[1]
    covariance = np.cov(v10) / m + np.cov(v01) / n
    variance_difference = (
        np.var(v10[0] - v10[1], ddof=1) / m + np.var(v01[0] - v01[1], ddof=1) / n
    )
    difference = float(aucs[0] - aucs[1])
    se_difference = float(np.sqrt(max(variance_difference, 0.0)))
    if difference == 0.0:
        z = 0.0
    elif se_difference == 0.0:
        z = float(np.copysign(np.inf, difference))
    else:
        z = difference / se_difference
    p_value = float(2.0 * special.ndtr(-abs(z)))
    variance_a, variance_b = float(covariance[0, 0]), float(covariance[1, 1])
    denominator = np.sqrt(variance_a * variance_b)
    correlation = (
        float(covariance[0, 1] / denominator) if denominator > 0 else float("nan")
    )
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": difference,
        "variance_a": variance_a,
        "variance_b": variance_b,
        "covariance": float(covariance[0, 1]),
        "correlation": correlation,
        "se_difference": se_difference,
        "z": float(z),
        "p_value": min(p_value, 1.0),
        "difference_ci_low": difference - z_crit * se_difference,
        "difference_ci_high": difference + z_crit * se_difference,
        "alpha": float(alpha),
        "n": int(positive.shape[0]),
        "n_positive": int(m),
        "n_negative": int(n),
    }
