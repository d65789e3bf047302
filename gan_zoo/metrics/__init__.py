"""Evaluation metrics: binary classification, DeLong AUROC statistics, plots.

Imports numpy and scipy only (matplotlib on the first plot), never
TensorFlow, so evaluation scripts start quickly.

Example (y_val/p_val: validation labels and scores, y_test/p_test: test):

    from gan_zoo import metrics

    result = metrics.evaluate_classifier(
        y_test, p_test, y_true_val=y_val, y_score_val=p_val, criterion="youden"
    )
    print(metrics.format_metrics_table({"baseline": result}))
"""

from gan_zoo.metrics.classification import (
    THRESHOLD_CRITERIA,
    UndefinedMetricWarning,
    binary_metrics,
    choose_threshold,
    confusion_counts,
    evaluate_classifier,
    format_metrics_table,
    roc_curve_points,
)
from gan_zoo.metrics.delong import (
    auroc_confidence_interval,
    delong_auc_variance,
    delong_paired_test,
    delong_placement_values,
)
from gan_zoo.metrics.plots import (
    save_confusion_matrix,
    save_loss_curves,
    save_roc_curves,
)

__all__ = [
    "THRESHOLD_CRITERIA",
    "UndefinedMetricWarning",
    "auroc_confidence_interval",
    "binary_metrics",
    "choose_threshold",
    "confusion_counts",
    "delong_auc_variance",
    "delong_paired_test",
    "delong_placement_values",
    "evaluate_classifier",
    "format_metrics_table",
    "roc_curve_points",
    "save_confusion_matrix",
    "save_loss_curves",
    "save_roc_curves",
]
