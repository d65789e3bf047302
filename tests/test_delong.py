"""Tests for gan_zoo.metrics.delong (DeLong AUROC variance, CI, paired test)."""

from fractions import Fraction

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gan_zoo.metrics import delong

# --- slow reference: DeLong (1988) structural components by definition ---


def _psi(x, y):
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _direct_components(y_true, y_score):
    """V10, V01 from the O(m n) definition of the placement values."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=float)
    pos, neg = y_score[y_true == 1], y_score[y_true == 0]
    v10 = np.array([np.mean([_psi(x, y) for y in neg]) for x in pos])
    v01 = np.array([np.mean([_psi(x, y) for x in pos]) for y in neg])
    return v10, v01


def _direct_variance(y_true, y_score):
    v10, v01 = _direct_components(y_true, y_score)
    s10 = np.sum((v10 - v10.mean()) ** 2) / (len(v10) - 1)
    s01 = np.sum((v01 - v01.mean()) ** 2) / (len(v01) - 1)
    return v10.mean(), s10 / len(v10) + s01 / len(v01)


def _direct_covariance(y_true, scores_a, scores_b):
    a10, a01 = _direct_components(y_true, scores_a)
    b10, b01 = _direct_components(y_true, scores_b)
    s10 = np.sum((a10 - a10.mean()) * (b10 - b10.mean())) / (len(a10) - 1)
    s01 = np.sum((a01 - a01.mean()) * (b01 - b01.mean())) / (len(a01) - 1)
    return s10 / len(a10) + s01 / len(a01)


def _tied_data(seed, size, decimals=1, shift=0.8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size)
    y[:2], y[2:4] = 0, 1  # both classes, at least twice each
    score = np.round(rng.normal(size=size) + shift * y, decimals)
    return y, score


# --- worked example ---
#
# Positives X = (0.9, 0.6, 0.4), negatives Y = (0.6, 0.3, 0.1); one tie (0.6).
# psi(x, y) = 1 if x > y, 1/2 if x == y, 0 if x < y.
#
#   V10(0.9) = (1 + 1 + 1) / 3   = 1
#   V10(0.6) = (1/2 + 1 + 1) / 3 = 5/6
#   V10(0.4) = (0 + 1 + 1) / 3   = 2/3
#   V01(0.6) = (1 + 1/2 + 0) / 3 = 1/2
#   V01(0.3) = (1 + 1 + 1) / 3   = 1
#   V01(0.1) = (1 + 1 + 1) / 3   = 1
#
#   AUC = mean V10 = (1 + 5/6 + 2/3) / 3 = 5/6   (= mean V01 = (1/2 + 1 + 1) / 3)
#   S10 = [(1/6)^2 + 0^2 + (-1/6)^2] / 2          = 1/36
#   S01 = [(-1/3)^2 + (1/6)^2 + (1/6)^2] / 2      = (1/6) / 2 = 1/12
#   Var = S10 / m + S01 / n = 1/108 + 1/36        = 4/108 = 1/27
#   SE  = 1 / sqrt(27) = 0.19245...
#   95% CI = 5/6 -+ 1.959964 * 0.19245 = (0.456138..., 1.2105...)
#          -> clipped to [0, 1] -> (0.456138..., 1)

WORKED_Y = [1, 1, 1, 0, 0, 0]
WORKED_SCORE = [0.9, 0.6, 0.4, 0.6, 0.3, 0.1]


def test_worked_example_components():
    v10, v01 = delong.delong_placement_values(WORKED_Y, WORKED_SCORE)
    np.testing.assert_allclose(v10, [1, 5 / 6, 2 / 3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(v01, [1 / 2, 1, 1], rtol=0, atol=1e-15)


def test_worked_example_auc_and_variance():
    auc, variance = delong.delong_auc_variance(WORKED_Y, WORKED_SCORE)
    assert Fraction(auc).limit_denominator(1000) == Fraction(5, 6)
    assert Fraction(variance).limit_denominator(1000) == Fraction(1, 27)
    assert auc == pytest.approx(5 / 6, abs=1e-15)
    assert variance == pytest.approx(1 / 27, abs=1e-15)


def test_worked_example_confidence_interval_is_clipped():
    auc, low, high = delong.auroc_confidence_interval(WORKED_Y, WORKED_SCORE)
    assert auc == pytest.approx(5 / 6)
    assert low == pytest.approx(5 / 6 - 1.959963984540054 / np.sqrt(27), abs=1e-12)
    assert low == pytest.approx(0.456138, abs=1e-6)
    assert high == 1.0


# --- agreement with references ---


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed):
    y, score = _tied_data(seed, 200, decimals=1)
    assert len(np.unique(score)) < len(score) / 3  # plenty of ties
    auc, _ = delong.delong_auc_variance(y, score)
    assert auc == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_auc_matches_sklearn_without_ties():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 500)
    score = rng.normal(size=500) + y
    auc, _ = delong.delong_auc_variance(y, score)
    assert auc == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert delong.auroc(y, score) == auc


def test_auroc_needs_only_one_case_per_class():
    assert delong.auroc([0, 1, 0], [0.2, 0.9, 0.5]) == 1.0
    with pytest.raises(ValueError):
        delong.auroc([1, 1], [0.2, 0.9])


@pytest.mark.parametrize("seed", range(3))
def test_components_and_variance_match_direct_definition(seed):
    y, score = _tied_data(seed, 25, decimals=1)
    v10, v01 = delong.delong_placement_values(y, score)
    ref10, ref01 = _direct_components(y, score)
    np.testing.assert_allclose(v10, ref10, atol=1e-12)
    np.testing.assert_allclose(v01, ref01, atol=1e-12)
    auc, variance = delong.delong_auc_variance(y, score)
    ref_auc, ref_variance = _direct_variance(y, score)
    assert auc == pytest.approx(ref_auc, abs=1e-12)
    assert variance == pytest.approx(ref_variance, rel=1e-10)


def test_paired_covariance_matches_direct_definition():
    y, a = _tied_data(3, 30, decimals=1)
    b = np.round(a + np.random.default_rng(4).normal(scale=0.7, size=30), 1)
    result = delong.delong_paired_test(y, a, b)
    assert result["covariance"] == pytest.approx(_direct_covariance(y, a, b), rel=1e-10)
    assert result["variance_a"] == pytest.approx(_direct_variance(y, a)[1], rel=1e-10)
    assert result["variance_b"] == pytest.approx(_direct_variance(y, b)[1], rel=1e-10)
    var_diff = result["variance_a"] + result["variance_b"] - 2 * result["covariance"]
    assert result["se_difference"] == pytest.approx(np.sqrt(var_diff), rel=1e-9)
    expected_z = (result["auc_a"] - result["auc_b"]) / np.sqrt(var_diff)
    assert result["z"] == pytest.approx(expected_z, rel=1e-9)


def test_labels_in_any_order_and_column_vectors():
    y, score = _tied_data(5, 40)
    order = np.random.default_rng(0).permutation(40)
    expected = delong.delong_auc_variance(y, score)
    shuffled = delong.delong_auc_variance(y[order], score[order])
    assert shuffled == pytest.approx(expected, rel=1e-12)
    column = delong.delong_auc_variance(y[:, None], score[:, None])
    assert column == pytest.approx(expected, rel=1e-12)


def test_perfect_separation_has_zero_variance():
    auc, variance = delong.delong_auc_variance([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert (auc, variance) == (1.0, 0.0)
    assert delong.auroc_confidence_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (
        1.0,
        1.0,
        1.0,
    )


# --- paired test ---


def test_paired_identical_scores_give_p_one():
    y, score = _tied_data(0, 100)
    result = delong.delong_paired_test(y, score, score.copy())
    assert result["difference"] == 0.0
    assert result["z"] == 0.0
    assert result["p_value"] == 1.0
    assert result["auc_a"] == result["auc_b"]
    assert result["correlation"] == pytest.approx(1.0)


def test_paired_test_is_symmetric():
    y, a = _tied_data(1, 150, decimals=2)
    b = a + np.random.default_rng(2).normal(scale=1.0, size=150)
    ab = delong.delong_paired_test(y, a, b)
    ba = delong.delong_paired_test(y, b, a)
    assert ab["p_value"] == pytest.approx(ba["p_value"], rel=1e-12)
    assert ab["z"] == pytest.approx(-ba["z"], rel=1e-12)
    assert ab["difference"] == pytest.approx(-ba["difference"], rel=1e-12)
    assert ab["covariance"] == pytest.approx(ba["covariance"], rel=1e-12)
    assert ab["difference_ci_low"] == pytest.approx(
        -ba["difference_ci_high"], rel=1e-12
    )


def test_paired_test_detects_clearly_better_model():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    good = 1.5 * y + rng.normal(size=300)
    weak = 0.2 * y + rng.normal(size=300)
    result = delong.delong_paired_test(y, good, weak)
    assert result["auc_a"] > result["auc_b"]
    assert result["z"] > 3
    assert result["p_value"] < 1e-3
    assert result["difference_ci_low"] > 0
    assert result["n"] == 300
    assert result["n_positive"] + result["n_negative"] == 300


def test_paired_test_similar_models_not_significant():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300)
    signal = y + rng.normal(size=300)
    a = signal + rng.normal(scale=0.1, size=300)
    b = signal + rng.normal(scale=0.1, size=300)
    assert delong.delong_paired_test(y, a, b)["p_value"] > 0.05


# --- confidence interval ---


def test_confidence_interval_contains_auc_and_shrinks_with_n():
    widths = []
    for size in (100, 400, 1600):
        rng = np.random.default_rng(size)
        y = rng.integers(0, 2, size)
        score = y + rng.normal(size=size)
        auc, low, high = delong.auroc_confidence_interval(y, score)
        assert 0.0 <= low < auc < high <= 1.0
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # Width ~ 1/sqrt(n): quadrupling n roughly halves it.
    assert widths[0] / widths[2] == pytest.approx(4.0, rel=0.25)


def test_confidence_interval_alpha():
    y, score = _tied_data(9, 200)
    _, low95, high95 = delong.auroc_confidence_interval(y, score, alpha=0.05)
    _, low99, high99 = delong.auroc_confidence_interval(y, score, alpha=0.01)
    assert low99 < low95 and high99 > high95
    with pytest.raises(ValueError, match="alpha"):
        delong.auroc_confidence_interval(y, score, alpha=1.5)


# --- input validation ---


@pytest.mark.parametrize(
    "y, score, message",
    [
        ([1, 1, 0, 0], [0.1, 0.2, 0.3], "same cases"),
        ([1, 2, 0, 0], [0.1, 0.2, 0.3, 0.4], "binary"),
        ([1, np.nan, 0, 0], [0.1, 0.2, 0.3, 0.4], "NaN"),
        ([1, 1, 0, 0], [0.1, np.nan, 0.3, 0.4], "NaN"),
        ([1, 1, 1, 0], [0.1, 0.2, 0.3, 0.4], "at least 2"),
        ([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], "at least 2"),
        ([], [], "empty"),
        ([[1, 0], [0, 1]], [[0.1, 0.2], [0.3, 0.4]], "1-D"),
        (["a", "b", "a", "b"], [0.1, 0.2, 0.3, 0.4], "numeric"),
    ],
)
def test_invalid_inputs_raise(y, score, message):
    with pytest.raises(ValueError, match=message):
        delong.delong_auc_variance(y, score)


def test_paired_test_rejects_mismatched_scores():
    with pytest.raises(ValueError, match="scores_b"):
        delong.delong_paired_test([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3])


def test_placement_values_need_one_case_per_class():
    v10, v01 = delong.delong_placement_values([1, 0, 0], [0.5, 0.2, 0.7])
    np.testing.assert_allclose(v10, [0.5])
    np.testing.assert_allclose(v01, [1.0, 0.0])
    with pytest.raises(ValueError, match="at least 1"):
        delong.delong_placement_values([1, 1], [0.5, 0.2])
