"""Evaluation metrics: binary classification, DeLong AUROC statistics, plots,
and generative quality (FID, KID, precision/recall, density/coverage).

Imports numpy and scipy only (matplotlib on the first plot), never
TensorFlow, so evaluation scripts start quickly.

Example (y_val/p_val: validation labels and scores, y_test/p_test: test):

    from gan_zoo import metrics

    result = metrics.evaluate_classifier(
        y_test, p_test, y_true_val=y_val, y_score_val=p_val, criterion="youden"
    )
    print(metrics.format_metrics_table({"baseline": result}))

Generative metrics take features; `gan_zoo.metrics.features` (TensorFlow,
imported on demand) extracts them with `gan_zoo.metrics.extractors`.
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
from gan_zoo.metrics.generative import (
    GenerativeMetricWarning,
    density_coverage,
    fid,
    frechet_distance,
    kid,
    precision_recall,
)
from gan_zoo.metrics.plots import (
    save_confusion_matrix,
    save_loss_curves,
    save_pr_curves,
    save_roc_curves,
)
from gan_zoo.metrics.scores import (
    ExtractorMismatchError,
    FeatureStats,
    Provenance,
    RunningMoments,
    compute_scores,
    load_reference_stats,
    save_reference_stats,
)

__all__ = [
    "THRESHOLD_CRITERIA",
    "ExtractorMismatchError",
    "FeatureStats",
    "GenerativeMetricWarning",
    "Provenance",
    "RunningMoments",
    "UndefinedMetricWarning",
    "auroc_confidence_interval",
    "binary_metrics",
    "choose_threshold",
    "compute_scores",
    "confusion_counts",
    "delong_auc_variance",
    "delong_paired_test",
    "delong_placement_values",
    "density_coverage",
    "evaluate_classifier",
    "fid",
    "format_metrics_table",
    "frechet_distance",
    "kid",
    "load_reference_stats",
    "precision_recall",
    "roc_curve_points",
    "save_confusion_matrix",
    "save_loss_curves",
    "save_pr_curves",
    "save_reference_stats",
    "save_roc_curves",
]
