"""Metrics of several models as one text table, as in a paper's results table.

`format_metrics_table({model: metrics dict})` lays out the dicts of
`gan_zoo.metrics.classification.evaluate_classifier` (or any dicts of
numbers): rows are metrics, columns models, rates in percent, the AUROC
with its DeLong confidence interval, a Markdown pipe table that also reads
as plain text. `gan_zoo.metrics.crossval` shares its row labels.
"""

import math

import numpy as np

__all__ = ["DEFAULT_TABLE_METRICS", "PERCENT_LABELS", "format_metrics_table"]

DEFAULT_TABLE_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "specificity",
    "f1",
    "auroc",
)

# Row labels of `format_metrics_table`; these metrics are shown in percent.
PERCENT_LABELS = {
    "accuracy": "Accuracy (%)",
    "balanced_accuracy": "Balanced accuracy (%)",
    "precision": "Precision (%)",
    "recall": "Recall / sensitivity (%)",
    "specificity": "Specificity (%)",
    "f1": "F1 score (%)",
    "auroc": "AUROC (%)",
}


def _format_value(name, value):
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        if name in PERCENT_LABELS:
            return f"{100.0 * value:.2f}"
        return f"{value:.4f}"
    return str(value)


def _format_auroc(result):
    auroc = _format_value("auroc", result["auroc"])
    low, high = result.get("auroc_ci_low"), result.get("auroc_ci_high")
    if auroc == "n/a" or low is None or high is None:
        return auroc
    if math.isnan(low) or math.isnan(high):
        return auroc
    return f"{auroc} ({100.0 * low:.2f}-{100.0 * high:.2f})"


def format_metrics_table(results, metrics=DEFAULT_TABLE_METRICS):
    """Metrics of several models as a text table, one column per model.

    The layout of a paper's results table: rows are metrics, columns are
    models. Rate metrics (accuracy, balanced accuracy, precision, recall,
    specificity, F1, AUROC) are shown in percent with 2 decimals; the AUROC
    cell carries its confidence interval, `"93.10 (90.02-96.18)"`, when the
    result has `auroc_ci_low`/`auroc_ci_high` (from `evaluate_classifier`).
    Counts are shown as integers, other floats with 4 decimals, undefined
    values (NaN or None) as `n/a`. The output is a Markdown pipe table,
    padded so it is also readable as plain text.

    Args:
        results: `{model name: metrics dict}`, e.g. outputs of
            `evaluate_classifier`; columns follow the dict's order.
        metrics: metric keys to show, as rows, in this order.

    Returns:
        The table as a string (no trailing newline).

    Raises:
        ValueError: no models or no metrics.
        KeyError: a model's dict lacks a requested metric.
    """
    if not results:
        raise ValueError("format_metrics_table needs at least one model.")
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError("format_metrics_table needs at least one metric.")
    models = list(results)
    ci_level = None
    for model in models:
        for metric in metrics:
            if metric not in results[model]:
                raise KeyError(f"Model {model!r} has no metric {metric!r}.")
        ci_level = ci_level or results[model].get("ci_level")

    rows = []
    for metric in metrics:
        label = PERCENT_LABELS.get(metric, metric)
        if metric == "auroc" and ci_level is not None:
            label = f"AUROC (%) [{100.0 * ci_level:g}% CI]"
        cells = []
        for model in models:
            if metric == "auroc":
                cells.append(_format_auroc(results[model]))
            else:
                cells.append(_format_value(metric, results[model][metric]))
        rows.append([label, *cells])

    header = ["Metric", *models]
    widths = [
        max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))
    ]

    def line(cells):
        padded = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
