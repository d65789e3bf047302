"""Tests for gan_zoo.metrics.classification and gan_zoo.metrics.plots."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from gan_zoo import metrics
from gan_zoo.metrics import classification

# --- worked example ---
#
# 4 IDC (1) and 6 healthy (0) cases, threshold 0.5 (positive when score >= 0.5):
#
#   label  1    1    1    1    0    0     0    0    0    0
#   score  0.9  0.8  0.6  0.3  0.7  0.55  0.4  0.2  0.1  0.05
#   pred   1    1    1    0    1    1     0    0    0    0
#          TP   TP   TP   FN   FP   FP    TN   TN   TN   TN
#
#   tn=4 fp=2 fn=1 tp=3
#   accuracy          = (3 + 4) / 10          = 7/10
#   precision         = 3 / (3 + 2)           = 3/5
#   recall            = 3 / (3 + 1)           = 3/4
#   specificity       = 4 / (4 + 2)           = 2/3
#   balanced accuracy = (3/4 + 2/3) / 2       = 17/24
#   f1                = 2*3 / (2*3 + 2 + 1)   = 2/3
#   AUROC: negatives below each positive: 0.9 -> 6, 0.8 -> 6, 0.6 -> 5
#          (all but 0.7), 0.3 -> 3 (0.2, 0.1, 0.05); (6+6+5+3) / (4*6) = 5/6

WORKED_Y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
WORKED_SCORE = [0.9, 0.8, 0.6, 0.3, 0.7, 0.55, 0.4, 0.2, 0.1, 0.05]
WORKED_EXPECTED = {
    "accuracy": 7 / 10,
    "precision": 3 / 5,
    "recall": 3 / 4,
    "specificity": 2 / 3,
    "balanced_accuracy": 17 / 24,
    "f1": 2 / 3,
    "auroc": 5 / 6,
}


def test_confusion_counts_worked_example():
    predicted = (np.array(WORKED_SCORE) >= 0.5).astype(int)
    assert metrics.confusion_counts(WORKED_Y, predicted) == (4, 2, 1, 3)
    counts = metrics.confusion_counts(WORKED_Y, predicted)
    assert all(type(c) is int for c in counts)


def test_binary_metrics_worked_example():
    result = metrics.binary_metrics(WORKED_Y, WORKED_SCORE, threshold=0.5)
    for name, expected in WORKED_EXPECTED.items():
        assert result[name] == pytest.approx(expected, abs=1e-12), name
    assert (result["tn"], result["fp"], result["fn"], result["tp"]) == (4, 2, 1, 3)
    assert (result["n"], result["n_positive"], result["threshold"]) == (10, 4, 0.5)
    assert result["undefined_metrics"] == []


def test_threshold_is_inclusive():
    # A score equal to the threshold is predicted positive.
    result = metrics.binary_metrics([1, 0], [0.5, 0.2], threshold=0.5)
    assert result["tp"] == 1


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_agrees_with_sklearn(seed, threshold):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    score = np.clip(0.5 + 0.25 * (2 * y - 1) + rng.normal(scale=0.3, size=300), 0, 1)
    score = np.round(score, 2)  # ties
    predicted = (score >= threshold).astype(int)
    result = metrics.binary_metrics(y, score, threshold=threshold)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert result["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y, predicted)
    )
    assert result["precision"] == pytest.approx(skm.precision_score(y, predicted))
    assert result["recall"] == pytest.approx(skm.recall_score(y, predicted))
    assert result["specificity"] == pytest.approx(
        skm.recall_score(y, predicted, pos_label=0)
    )
    assert result["f1"] == pytest.approx(skm.f1_score(y, predicted))
    assert result["auroc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted).ravel()
    assert metrics.confusion_counts(y, predicted) == (tn, fp, fn, tp)


def test_roc_curve_points_agree_with_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    score = np.round(y + rng.normal(size=200), 1)
    fpr, tpr, thresholds = metrics.roc_curve_points(y, score)
    ref_fpr, ref_tpr, ref_thresholds = skm.roc_curve(y, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thresholds[1:], ref_thresholds[1:])
    assert skm.auc(fpr, tpr) == pytest.approx(skm.roc_auc_score(y, score))


# --- input validation ---


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1, 1], [0, 1], "same cases"),
        ([0, 1, 2], [0, 1, 1], "binary"),
        ([0, 1, 1], [0, -1, 1], "binary"),
        ([0, np.nan, 1], [0, 1, 1], "NaN"),
        ([0, 1, 1], [0.0, np.nan, 1.0], "NaN"),
        ([], [], "empty"),
        ([[0, 1], [1, 0]], [[0, 1], [1, 0]], "1-D"),
    ],
)
def test_confusion_counts_validation(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metrics.confusion_counts(y_true, y_pred)


def test_accepts_bool_float_and_column_inputs():
    y = np.array([[1], [0], [1], [0]])
    assert metrics.confusion_counts(y.astype(bool), y.astype(float)) == (2, 0, 0, 2)
    result = metrics.binary_metrics(y, np.array([[0.9], [0.1], [0.8], [0.3]]))
    assert result["accuracy"] == 1.0


@pytest.mark.parametrize(
    "score, message",
    [
        ([0.1, np.nan, 0.3], "NaN"),
        ([0.1, np.inf, 0.3], "NaN"),
        ([0.1, 0.2], "same cases"),
    ],
)
def test_binary_metrics_score_validation(score, message):
    with pytest.raises(ValueError, match=message):
        metrics.binary_metrics([0, 1, 1], score)


def test_non_finite_threshold_rejected():
    with pytest.raises(ValueError, match="threshold"):
        metrics.binary_metrics([0, 1], [0.2, 0.8], threshold=float("nan"))


# --- edge cases ---


def test_no_predicted_positives():
    with pytest.warns(metrics.UndefinedMetricWarning, match="precision"):
        result = metrics.binary_metrics(
            [0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], threshold=0.9
        )
    assert result["precision"] == 0.0
    assert result["recall"] == 0.0
    assert result["f1"] == 0.0  # 2tp / (2tp + fp + fn) = 0 / 2: defined
    assert result["specificity"] == 1.0
    assert result["undefined_metrics"] == ["precision"]
    assert result["auroc"] == 1.0  # ranking is still perfect


def test_single_class_gives_nan_auroc():
    with pytest.warns(metrics.UndefinedMetricWarning, match="auroc"):
        result = metrics.binary_metrics([0, 0, 0], [0.1, 0.6, 0.3])
    assert np.isnan(result["auroc"])
    assert result["recall"] == 0.0
    assert result["specificity"] == pytest.approx(2 / 3)
    assert result["balanced_accuracy"] == pytest.approx(2 / 3)  # negatives only
    assert result["f1"] == 0.0  # 2tp / (2tp + fp + fn) = 0 / 1: defined
    assert set(result["undefined_metrics"]) == {"recall", "balanced_accuracy", "auroc"}


def test_all_positive_labels():
    with pytest.warns(metrics.UndefinedMetricWarning):
        result = metrics.binary_metrics([1, 1, 1, 1], [0.9, 0.6, 0.4, 0.7])
    assert result["recall"] == 0.75
    assert result["precision"] == 1.0
    assert result["specificity"] == 0.0
    assert "specificity" in result["undefined_metrics"]


def test_well_defined_metrics_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.binary_metrics(WORKED_Y, WORKED_SCORE)
        metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE)


# --- threshold selection ---


def test_choose_threshold_hand_example_and_tie_breaking():
    # Distinct scores 0.1 < 0.35 < 0.4 < 0.8 -> candidates 0.225, 0.375, 0.6.
    #   0.225: tp=2 fp=1 -> sens 1,   spec 1/2 -> J = 1/2, F1 = 4/5
    #   0.375: tp=1 fp=1 -> sens 1/2, spec 1/2 -> J = 0,   F1 = 1/2
    #   0.6:   tp=1 fp=0 -> sens 1/2, spec 1   -> J = 1/2, F1 = 2/3
    # Youden ties 0.225 with 0.6; the smaller (more sensitive) one wins.
    y, score = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert metrics.choose_threshold(y, score, "youden") == pytest.approx(0.225)
    assert metrics.choose_threshold(y, score, "balanced_accuracy") == pytest.approx(
        0.225
    )
    assert metrics.choose_threshold(y, score, "f1") == pytest.approx(0.225)
    # Order of the cases does not matter.
    assert metrics.choose_threshold(y[::-1], score[::-1]) == pytest.approx(0.225)


def test_choose_threshold_f1_differs_from_youden():
    # Youden: 0.5 (tp=2, fp=0 -> J = 2/3); F1: 0.15 (tp=3, fp=1 -> F1 = 6/7).
    y = [0, 1, 0, 1, 1]
    score = [0.1, 0.2, 0.3, 0.7, 0.9]
    assert metrics.choose_threshold(y, score, "youden") == pytest.approx(0.5)
    assert metrics.choose_threshold(y, score, "f1") == pytest.approx(0.15)


def test_choose_threshold_is_deterministic_under_permutation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.round(y + rng.normal(size=200), 1)
    first = metrics.choose_threshold(y, score)
    for _ in range(5):
        order = rng.permutation(200)
        assert metrics.choose_threshold(y[order], score[order]) == first
    # The threshold sits between distinct scores, never on one.
    assert first not in set(score)


def test_choose_threshold_validation():
    with pytest.raises(ValueError, match="criterion"):
        metrics.choose_threshold([0, 1], [0.1, 0.9], criterion="accuracy")
    with pytest.raises(ValueError, match="both classes"):
        metrics.choose_threshold([1, 1], [0.1, 0.9])
    with pytest.raises(ValueError, match="distinct"):
        metrics.choose_threshold([0, 1], [0.5, 0.5])


def _shifted_split(low, size, rng):
    """Negatives in [low, low + 0.2], positives in [low + 0.3, low + 0.5]."""
    y = np.repeat([0, 1], size // 2)
    score = low + rng.uniform(0.0, 0.2, size) + 0.3 * y
    return y, score


def test_threshold_comes_from_validation_not_test():
    # The test scores are shifted up by 0.5 relative to validation, so the
    # validation-optimal threshold (~0.25) differs from the test-optimal one
    # (~0.75). Using validation, every test case lands above the threshold.
    rng = np.random.default_rng(0)
    y_val, s_val = _shifted_split(0.0, 100, rng)
    y_test, s_test = _shifted_split(0.5, 100, rng)
    val_threshold = metrics.choose_threshold(y_val, s_val)
    test_threshold = metrics.choose_threshold(y_test, s_test)
    assert 0.2 < val_threshold < 0.3 and 0.7 < test_threshold < 0.8

    result = metrics.evaluate_classifier(
        y_test, s_test, y_true_val=y_val, y_score_val=s_val
    )
    assert result["threshold"] == val_threshold
    assert result["threshold_source"] == "validation"
    assert result["threshold_criterion"] == "youden"
    assert result["n_validation"] == 100
    assert result["recall"] == 1.0 and result["specificity"] == 0.0
    # With the (forbidden) test-chosen threshold the test set would look perfect.
    assert metrics.binary_metrics(y_test, s_test, test_threshold)["accuracy"] == 1.0

    # The test scores have no influence on the threshold.
    shuffled = metrics.evaluate_classifier(
        y_test, s_test[::-1], y_true_val=y_val, y_score_val=s_val
    )
    assert shuffled["threshold"] == val_threshold


def test_threshold_sources():
    default = metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE)
    assert (default["threshold"], default["threshold_source"]) == (0.5, "default")
    assert default["threshold_criterion"] is None and default["n_validation"] is None
    fixed = metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE, threshold=0.65)
    assert (fixed["threshold"], fixed["threshold_source"]) == (0.65, "fixed")
    assert (fixed["tp"], fixed["fp"]) == (2, 1)
    # Nothing is remembered from an earlier call.
    metrics.choose_threshold([0, 1], [0.1, 0.2])
    again = metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE)
    assert again["threshold"] == 0.5


def test_evaluate_classifier_argument_errors():
    with pytest.raises(ValueError, match="not both"):
        metrics.evaluate_classifier(
            WORKED_Y,
            WORKED_SCORE,
            y_true_val=[0, 1],
            y_score_val=[0.2, 0.8],
            threshold=0.5,
        )
    with pytest.raises(ValueError, match="both y_true_val and y_score_val"):
        metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE, y_true_val=[0, 1])
    with pytest.raises(ValueError, match="alpha"):
        metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE, alpha=0.0)
    with pytest.raises(ValueError, match="criterion"):
        metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE, criterion="auc")


# --- evaluate_classifier ---


def test_evaluate_classifier_confidence_interval_and_json():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    score = 1 / (1 + np.exp(-(y + rng.normal(size=300))))
    result = metrics.evaluate_classifier(
        y, score, y_true_val=y[:100], y_score_val=score[:100], criterion="f1"
    )
    auc, low, high = metrics.auroc_confidence_interval(y, score)
    _, variance = metrics.delong_auc_variance(y, score)
    assert result["auroc"] == pytest.approx(auc)
    assert result["auroc_ci_low"] == pytest.approx(low)
    assert result["auroc_ci_high"] == pytest.approx(high)
    assert result["auroc_se"] == pytest.approx(np.sqrt(variance))
    assert result["auroc_ci_low"] < result["auroc"] < result["auroc_ci_high"]
    assert result["ci_level"] == pytest.approx(0.95)
    assert result["ci_method"] == "delong" and result["split"] == "test"
    assert result["threshold_criterion"] == "f1"

    json.loads(json.dumps(result, allow_nan=False))
    for key, value in result.items():
        assert value is None or type(value) in (float, int, str, list), key


def test_evaluate_classifier_one_class_test_set():
    with pytest.warns(metrics.UndefinedMetricWarning):
        result = metrics.evaluate_classifier([0, 0, 0, 0], [0.1, 0.2, 0.7, 0.3])
    assert np.isnan(result["auroc"])
    assert np.isnan(result["auroc_se"])
    assert np.isnan(result["auroc_ci_low"]) and np.isnan(result["auroc_ci_high"])
    assert result["specificity"] == 0.75
    json.dumps(result)  # NaN is written as the NaN token


def test_evaluate_classifier_single_positive_has_auroc_but_no_ci():
    result = metrics.evaluate_classifier([1, 0, 0, 0], [0.8, 0.1, 0.9, 0.3])
    assert result["auroc"] == pytest.approx(2 / 3)
    assert np.isnan(result["auroc_ci_low"])


# --- table ---


def test_format_metrics_table_layout():
    results = {
        "baseline": metrics.evaluate_classifier(WORKED_Y, WORKED_SCORE),
        "DCGAN-aug": metrics.evaluate_classifier(
            WORKED_Y, WORKED_SCORE, threshold=0.65
        ),
    }
    table = metrics.format_metrics_table(
        results, metrics=("accuracy", "recall", "auroc", "tp")
    )
    lines = table.split("\n")
    assert len(lines) == 2 + 4
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["Metric", "baseline", "DCGAN-aug"]
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]
        )
    }
    assert rows["Accuracy (%)"] == ["70.00", "70.00"]
    assert rows["Recall / sensitivity (%)"] == ["75.00", "50.00"]
    assert rows["tp"] == ["3", "2"]
    # AUROC 5/6 with its DeLong CI: se^2 = S10/4 + S01/6 = 1/48 (see the
    # worked example; V10 = 1, 1, 5/6, 1/2 and V01 = 3/4, 1/2, 3/4, 1, 1, 1).
    low = 100 * (5 / 6 - 1.959963984540054 * np.sqrt(1 / 48))
    assert rows["AUROC (%) [95% CI]"] == [f"83.33 ({low:.2f}-100.00)"] * 2
    # All lines have the same width (readable as plain text).
    assert len({len(line) for line in lines}) == 1


def test_format_metrics_table_exact_string():
    results = {
        "A": {
            "accuracy": 0.9,
            "auroc": 0.95,
            "auroc_ci_low": 0.9,
            "auroc_ci_high": 0.99,
        },
        "B": {"accuracy": 0.12344, "auroc": float("nan")},
    }
    table = metrics.format_metrics_table(results, metrics=("accuracy", "auroc"))
    expected = (
        "| Metric       |                   A |     B |\n"
        "|--------------|--------------------:|------:|\n"
        "| Accuracy (%) |               90.00 | 12.34 |\n"
        "| AUROC (%)    | 95.00 (90.00-99.00) |   n/a |"
    )
    assert table == expected


def test_format_metrics_table_errors():
    with pytest.raises(ValueError):
        metrics.format_metrics_table({})
    with pytest.raises(KeyError, match="specificity"):
        metrics.format_metrics_table({"A": {"accuracy": 0.5}}, metrics=("specificity",))


# --- plots ---


def _assert_png(path):
    assert path.is_file()
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def _open_pyplot_figures():
    pyplot = sys.modules.get("matplotlib.pyplot")
    return list(pyplot.get_fignums()) if pyplot else []


def test_plots_write_png_files(tmp_path):
    before = _open_pyplot_figures()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    good = y + rng.normal(size=100)
    weak = 0.3 * y + rng.normal(size=100)

    path = metrics.save_confusion_matrix(
        tmp_path / "new" / "dir" / "cm.png", y, (good > 0.5).astype(int)
    )
    assert path == tmp_path / "new" / "dir" / "cm.png"
    _assert_png(path)

    roc = metrics.save_roc_curves(
        str(tmp_path / "roc" / "roc.png"),
        {"good": (y, good), "weak": (y, weak)},
        title="ROC",
    )
    _assert_png(roc)
    _assert_png(metrics.save_pr_curves(tmp_path / "pr.png", {"good": (y, good), "weak": (y, weak)}))

    history = {"d_loss": [1.2, 0.9, 0.8, 0.7], "g_loss": [0.7, 1.0, 1.1, float("nan")]}
    _assert_png(metrics.save_loss_curves(tmp_path / "loss.png", history))

    class FakeHistory:  # what keras' model.fit returns
        def __init__(self, history):
            self.history = history

    _assert_png(metrics.save_loss_curves(tmp_path / "fit.png", FakeHistory(history)))
    assert _open_pyplot_figures() == before


def test_plot_argument_errors(tmp_path):
    with pytest.raises(ValueError):
        metrics.save_roc_curves(tmp_path / "roc.png", {})
    with pytest.raises(ValueError):
        metrics.save_loss_curves(tmp_path / "loss.png", {})
    with pytest.raises(ValueError, match="2 classes"):
        metrics.save_confusion_matrix(
            tmp_path / "cm.png", [0, 1], [0, 1], class_names=("a",)
        )
    with pytest.raises(ValueError, match="both classes"):
        metrics.save_roc_curves(tmp_path / "roc.png", {"m": ([0, 0], [0.1, 0.2])})
    with pytest.raises(ValueError, match="both classes"):
        metrics.save_pr_curves(tmp_path / "pr.png", {"m": ([1, 1], [0.1, 0.2])})
    with pytest.raises(ValueError):
        metrics.save_pr_curves(tmp_path / "pr.png", {})


# --- packaging ---


def test_import_is_light():
    code = (
        "import sys, gan_zoo.metrics; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib', 'sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_public_api():
    for name in metrics.__all__:
        assert hasattr(metrics, name), name
    assert classification.THRESHOLD_CRITERIA == ("youden", "f1", "balanced_accuracy")
