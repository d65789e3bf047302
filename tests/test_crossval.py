"""Cross-validation summaries (gan_zoo.metrics.crossval)."""

import math

import numpy as np
import pytest
from scipy import stats

from gan_zoo.metrics import crossval


def folds(values, metric="auroc"):
    return [{metric: v} for v in values]


def test_summary_is_mean_and_sample_std_per_model_and_metric():
    summary = crossval.summarise_folds(
        {"a": folds([0.8, 0.9, 0.7]), "b": folds([0.6, 0.6, 0.9])}, metrics=("auroc",)
    )
    assert summary["a"]["auroc"]["mean"] == pytest.approx(0.8)
    assert summary["a"]["auroc"]["std"] == pytest.approx(np.std([0.8, 0.9, 0.7], ddof=1))
    assert summary["b"]["auroc"]["folds"] == [0.6, 0.6, 0.9]


def test_undefined_folds_are_left_out_and_counted():
    summary = crossval.summarise_folds({"a": folds([0.5, math.nan, None, 0.7])}, metrics=("auroc",))
    assert summary["a"]["auroc"]["mean"] == pytest.approx(0.6)
    assert summary["a"]["auroc"]["undefined_folds"] == 2


def test_models_need_the_same_folds_and_every_metric():
    with pytest.raises(ValueError, match="same folds"):
        crossval.summarise_folds({"a": folds([0.5, 0.6]), "b": folds([0.5])}, metrics=("auroc",))
    with pytest.raises(KeyError, match="Fold 1 has no metric 'f1'"):
        crossval.summarise_folds({"a": [{"f1": 0.5}, {}]}, metrics=("f1",))


def test_paired_comparison_matches_scipy_paired_t_test_and_counts_wins():
    a, b = [0.91, 0.85, 0.88, 0.90, 0.80], [0.89, 0.87, 0.84, 0.86, 0.80]
    result = crossval.paired_fold_comparison(folds(a), folds(b))
    reference = stats.ttest_rel(a, b)
    assert result["t"] == pytest.approx(reference.statistic)
    assert result["p_value"] == pytest.approx(reference.pvalue)
    assert result["differences"] == pytest.approx(np.subtract(a, b).tolist())
    assert (result["a_wins"], result["b_wins"], result["ties"]) == (3, 1, 1)
    assert result["degrees_of_freedom"] == 4
    # No spread in the differences: no test, not a crash.
    flat = crossval.paired_fold_comparison(folds([0.9, 0.8]), folds([0.8, 0.7]))
    assert flat["mean"] == pytest.approx(0.1) and math.isnan(flat["p_value"])


def test_table_shows_percent_mean_and_std():
    summary = crossval.summarise_folds({"cnn": [{"auroc": 0.9, "f1": 0.5}, {"auroc": 0.8, "f1": 0.7}]},
                                       metrics=("auroc", "f1"))
    table = crossval.format_cv_table(summary, metrics=("auroc", "f1"))
    assert "| Metric (2 folds, mean +/- std) | cnn |" in table
    assert f"| AUROC (%) | 85.00 +/- {100 * np.std([0.9, 0.8], ddof=1):.2f} |" in table
    assert "| F1 score (%) | 60.00 +/- 14.14 |" in table
