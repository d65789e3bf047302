"""Cross-validation summaries: metrics over patient folds, paired across folds.

One split of a few dozen patients can decide a comparison that other
patients reverse; k-fold cross-validation by patient scores every patient
once and shows how much a metric moves from fold to fold. These helpers
take the per-fold results of several models (each an `evaluate_classifier`
dict on that fold's test patients) and report mean +/- standard deviation
(ddof 1) of each metric, and paired comparisons of two models over the same
folds: the per-fold differences, their mean and standard deviation, a paired
t-test across folds (few folds: a coarse test, reported with its degrees of
freedom) and the number of folds each model won.

    summary = summarise_folds({"cnn": [fold0, fold1, ...], "gan": [...]})
    print(format_cv_table(summary))
    paired_fold_comparison(per_fold["gan"], per_fold["cnn"], metric="auroc")
"""

import math

import numpy as np
from scipy import stats

from gan_zoo.metrics.classification import DEFAULT_TABLE_METRICS, PERCENT_LABELS


def _values(folds, metric):
    values = []
    for index, fold in enumerate(folds):
        if metric not in fold:
            raise KeyError(f"Fold {index} has no metric {metric!r}.")
        value = fold[metric]
        values.append(math.nan if value is None else float(value))
    return np.array(values, dtype=np.float64)


def summarise_folds(per_model_folds, metrics=DEFAULT_TABLE_METRICS):
    """{model: {metric: {"mean", "std", "folds"}}} over each model's folds.

    NaN folds (a metric undefined on a fold) are left out of the mean and
    standard deviation and counted in "undefined_folds".

    Args:
        per_model_folds: {model: [metrics dict of fold 0, fold 1, ...]}.
        metrics: metric keys to summarise.

    Raises:
        ValueError: a model has no folds, or models have different numbers of folds.
    """
    counts = {model: len(folds) for model, folds in per_model_folds.items()}
    if not counts or min(counts.values()) == 0:
        raise ValueError(f"summarise_folds needs at least one fold per model; got {counts}.")
    if len(set(counts.values())) > 1:
        raise ValueError(f"Every model needs the same folds; fold counts {counts}.")
    summary = {}
    for model, folds in per_model_folds.items():
        summary[model] = {}
        for metric in metrics:
            values = _values(folds, metric)
            defined = values[~np.isnan(values)]
            summary[model][metric] = {
                "mean": float(defined.mean()) if len(defined) else math.nan,
                "std": float(defined.std(ddof=1)) if len(defined) > 1 else math.nan,
                "folds": values.tolist(),
                "undefined_folds": int(np.isnan(values).sum()),
            }
    return summary


def paired_fold_comparison(folds_a, folds_b, metric="auroc"):
    """Model A minus model B on the same folds.

    Returns:
        {"metric", "differences" (per fold), "mean", "std", "t", "p_value",
        "degrees_of_freedom", "a_wins", "b_wins", "ties"}; t and p are NaN
        with fewer than two defined folds or no spread in the differences.
    """
    a, b = _values(folds_a, metric), _values(folds_b, metric)
    if len(a) != len(b):
        raise ValueError(f"Paired comparison needs the same folds; got {len(a)} and {len(b)}.")
    differences = a - b
    defined = differences[~np.isnan(differences)]
    t, p = math.nan, math.nan
    # Equal differences (up to rounding) have no spread to test against.
    if len(defined) > 1 and np.ptp(defined) > 1e-12:
        result = stats.ttest_1samp(defined, 0.0)
        t, p = float(result.statistic), float(result.pvalue)
    return {
        "metric": metric,
        "differences": differences.tolist(),
        "mean": float(defined.mean()) if len(defined) else math.nan,
        "std": float(defined.std(ddof=1)) if len(defined) > 1 else math.nan,
        "t": t,
        "p_value": p,
        "degrees_of_freedom": max(len(defined) - 1, 0),
        "a_wins": int((defined > 0).sum()),
        "b_wins": int((defined < 0).sum()),
        "ties": int((defined == 0).sum()),
    }


def _cell(metric, stats_):
    scale = 100.0 if metric in PERCENT_LABELS else 1.0
    mean, std = stats_["mean"], stats_["std"]
    if math.isnan(mean):
        return "n/a"
    if math.isnan(std):
        return f"{scale * mean:.2f}"
    return f"{scale * mean:.2f} +/- {scale * std:.2f}"


def format_cv_table(summary, metrics=DEFAULT_TABLE_METRICS):
    """A Markdown table, rows = metrics, columns = models, cells "mean +/- std"."""
    models = list(summary)
    if not models:
        raise ValueError("format_cv_table needs at least one model.")
    folds = len(next(iter(summary[models[0]].values()))["folds"])
    header = f"| Metric ({folds} folds, mean +/- std) | " + " | ".join(models) + " |"
    rule = "|---|" + "---:|" * len(models)
    rows = [
        f"| {PERCENT_LABELS.get(metric, metric)} | "
        + " | ".join(_cell(metric, summary[model][metric]) for model in models) + " |"
        for metric in metrics
    ]
    return "\n".join([header, rule, *rows])
