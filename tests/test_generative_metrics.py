"""Tests of the numpy generative metrics (FID, KID, precision/recall,
density/coverage), feature statistics, reference caches and provenance."""

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import linalg, ndimage

from gan_zoo.metrics import generative, scores
from gan_zoo.metrics.generative import (
    GenerativeMetricWarning,
    density_coverage,
    fid,
    frechet_distance,
    kid,
    precision_recall,
)
from gan_zoo.metrics.scores import (
    ExtractorMismatchError,
    FeatureStats,
    RunningMoments,
    compute_scores,
    load_reference_stats,
    save_reference_stats,
)


def _spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


def _clusters(rng, centres, n, d=4, spread=0.1):
    """n points around each centre (a scalar offset on every axis)."""
    return np.concatenate([c + spread * rng.normal(size=(n, d)) for c in centres])


def test_import_does_not_import_tensorflow():
    code = (
        "import sys, gan_zoo.metrics, gan_zoo.metrics.generative, gan_zoo.metrics.scores, "
        "gan_zoo.metrics.features, gan_zoo.metrics.extractors; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; "
        "assert 'keras' not in sys.modules, 'keras imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ FID


def test_frechet_distance_matches_float64_scipy_reference():
    rng = np.random.default_rng(0)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _spd(rng, d), _spd(rng, d, scale=2.0)
    # Symmetric form: tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2).
    root1 = linalg.sqrtm(s1).real
    trace = np.trace(linalg.sqrtm(root1 @ s2 @ root1).real)
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * trace
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1 + 6.25 + 4 + 1)


def test_frechet_distance_near_singular_uses_documented_fallback(monkeypatch):
    rng = np.random.default_rng(1)
    s1, s2 = _spd(rng, 4), _spd(rng, 4)
    mu = np.zeros(4)
    real_sqrtm = linalg.sqrtm
    calls = []

    def failing_once(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(generative.linalg, "sqrtm", failing_once)
    with pytest.warns(GenerativeMetricWarning, match="eps=0.001"):
        got = frechet_distance(mu, s1, mu, s2, eps=1e-3)
    monkeypatch.setattr(generative.linalg, "sqrtm", real_sqrtm)
    eye = 1e-3 * np.eye(4)
    assert got == pytest.approx(frechet_distance(mu, s1 + eye, mu, s2 + eye), rel=1e-10)


def test_frechet_distance_rank_deficient_covariances_stay_finite():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenerativeMetricWarning)
        value = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert np.isfinite(value) and value > 0


def test_fid_from_no_more_samples_than_dimensions_is_nan_with_the_minimum():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 16)), rng.normal(size=(40, 16))
    with pytest.warns(GenerativeMetricWarning, match=r"at least 17 for 16-d features\); got 3 real"):
        assert math.isnan(fid(a, b))
    with pytest.warns(GenerativeMetricWarning, match="got 40 real and 16 generated"):
        assert math.isnan(fid(b, b[:16]))
    assert np.isfinite(fid(b, b[:17] + 0.1))  # 17 > 16: computed


def test_frechet_distance_refuses_significant_imaginary_part(monkeypatch):
    monkeypatch.setattr(generative.linalg, "sqrtm", lambda m: np.eye(len(m)) * (1 + 0.5j))
    with pytest.raises(ValueError, match="imaginary"), warnings.catch_warnings():
        warnings.simplefilter("ignore", GenerativeMetricWarning)
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3))


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(200, 8))
    assert abs(fid(features, features)) < 1e-9
    values = [fid(features, features + shift) for shift in (0.1, 0.5, 1.0, 2.0)]
    assert np.all(np.diff(values) > 0)
    # A pure shift moves only the mean term: ||shift * 1||^2.
    assert values[-1] == pytest.approx(4.0 * 8, rel=1e-6)


def test_fid_grows_monotonically_with_image_blur():
    # Blur of IMAGES seen through a fixed random-projection "extractor".
    rng = np.random.default_rng(4)
    real = rng.uniform(size=(300, 16, 16, 3))
    reference = rng.uniform(size=(300, 16, 16, 3))  # an independent draw
    projection = rng.normal(size=(16 * 16 * 3, 10)) / np.sqrt(16 * 16 * 3)

    def features(images):
        return images.reshape(len(images), -1) @ projection

    values = [
        fid(features(reference), features(ndimage.gaussian_filter(real, (0, s, s, 0))))
        for s in (0.0, 0.5, 1.0, 2.0)
    ]
    assert np.all(np.diff(values) > 0), values


# ------------------------------------------------------------------ KID


def _brute_force_mmd2(x, y):
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_matches_brute_force():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(25, 6)), rng.normal(size=(25, 6)) + 0.3
    # One subset of all rows: the subset draw only permutes them.
    result = kid(x, y, subsets=1, subset_size=25)
    assert result["kid"] == pytest.approx(_brute_force_mmd2(x, y), rel=1e-10)
    assert math.isnan(result["kid_std"])  # no spread from one subset


def test_kid_has_a_spread_only_where_subsets_can_differ():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(25, 6)), rng.normal(size=(30, 6))
    assert math.isnan(kid(x[:20], y[:20], subsets=5, subset_size=20)["kid_std"])  # every row, every time
    assert kid(x, y, subsets=5, subset_size=25)["kid_std"] > 0  # 25 of y's 30 rows
    assert kid(x, y, subsets=5, subset_size=10)["kid_std"] > 0


def test_kid_is_unbiased_for_one_distribution():
    rng = np.random.default_rng(6)
    means = [
        kid(rng.normal(size=(40, 5)), rng.normal(size=(40, 5)), subsets=5, subset_size=30, seed=i)[
            "kid"
        ]
        for i in range(40)
    ]
    standard_error = np.std(means, ddof=1) / np.sqrt(len(means))
    assert abs(np.mean(means)) < 2 * standard_error
    shifted = kid(
        rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) + 1.0, subsets=5, subset_size=30
    )
    assert shifted["kid"] > 20 * standard_error


def test_kid_is_seeded_and_caps_subset_size():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    with pytest.warns(GenerativeMetricWarning, match="capped at 20"):
        first = kid(x, y, subsets=4, subset_size=1000, seed=3)
    assert first["subset_size"] == 20
    second = kid(x, y, subsets=4, subset_size=20, seed=3)
    assert first == {**second, "subset_size": 20}


# --------------------------------------------------- nearest neighbours


def test_knn_metrics_on_identical_sets():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(60, 4))
    assert precision_recall(real, real.copy(), k=3) == {"precision": 1.0, "recall": 1.0, "k": 3}
    result = density_coverage(real, real.copy(), k=5)
    # Each real ball holds its own copy plus its 5 neighbours' copies.
    assert result["density"] == pytest.approx(6 / 5)
    assert result["coverage"] == 1.0


def test_knn_metrics_on_disjoint_sets():
    rng = np.random.default_rng(9)
    real, fake = _clusters(rng, [0.0], 50), _clusters(rng, [100.0], 50)
    assert precision_recall(real, fake)["precision"] == 0.0
    assert precision_recall(real, fake)["recall"] == 0.0
    assert density_coverage(real, fake) == {"density": 0.0, "coverage": 0.0, "k": 5}


def test_knn_metrics_on_half_overlap_with_copies():
    # real = A + B, fake = copies of B + C; the clusters are far apart.
    rng = np.random.default_rng(10)
    a, b, c = (_clusters(rng, [centre], 40) for centre in (0.0, 50.0, 100.0))
    real, fake = np.concatenate([a, b]), np.concatenate([b.copy(), c])
    pr = precision_recall(real, fake, k=3)
    dc = density_coverage(real, fake, k=5)
    assert (pr["precision"], pr["recall"], dc["coverage"]) == (0.5, 0.5, 0.5)
    assert dc["density"] == pytest.approx(6 / 5 / 2)


def test_knn_metrics_on_half_overlap_independent_draws():
    rng = np.random.default_rng(11)
    real = _clusters(rng, [0.0, 50.0], 300)
    fake = _clusters(rng, [50.0, 100.0], 300)
    pr = precision_recall(real, fake, k=3)
    dc = density_coverage(real, fake, k=5)
    for value in (pr["precision"], pr["recall"], dc["coverage"]):
        assert value == pytest.approx(0.5, abs=0.05)
    assert dc["density"] == pytest.approx(0.5, abs=0.1)


def test_knn_metrics_on_one_distribution_are_near_one():
    rng = np.random.default_rng(12)
    real, fake = rng.normal(size=(500, 3)), rng.normal(size=(500, 3))
    pr = precision_recall(real, fake, k=3)
    dc = density_coverage(real, fake, k=5)
    assert pr["precision"] > 0.85 and pr["recall"] > 0.85
    assert dc["density"] == pytest.approx(1.0, abs=0.15)
    # Naeem et al.: for one distribution and N = M, coverage -> 1 - 2^-k.
    assert dc["coverage"] == pytest.approx(1 - 2**-5, abs=0.04)


def test_knn_metrics_batching_bounds_memory_and_keeps_results(monkeypatch):
    rng = np.random.default_rng(13)
    real, fake = rng.normal(size=(53, 4)), rng.normal(size=(47, 4)) + 0.2
    expected = (
        precision_recall(real, fake, batch_size=1000),
        density_coverage(real, fake, batch_size=1000),
    )
    shapes = []
    original = generative._squared_distances

    def recording(a, b, b_norms):
        shapes.append((a.shape[0], b.shape[0]))
        return original(a, b, b_norms)

    monkeypatch.setattr(generative, "_squared_distances", recording)
    got = (precision_recall(real, fake, batch_size=8), density_coverage(real, fake, batch_size=8))
    assert got == expected
    assert shapes and max(rows for rows, _ in shapes) <= 8


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, y: fid(x[0], y), "real_features must be 2-D"),
        (lambda x, y: fid(x, y[:, :3]), "fake_features has 3 feature dimensions"),
        (lambda x, y: kid(x, np.where(y > 0, np.nan, y)), "fake_features contains NaN"),
        (lambda x, y: precision_recall(x[:3], y, k=3), "real_features needs at least 4"),
        (lambda x, y: density_coverage(x, y, k=0), "k must be an integer >= 1"),
        (lambda x, y: kid(x, y, subsets=0), "subsets must be an integer >= 1"),
        (lambda x, y: frechet_distance(x[0], np.eye(3), x[0], np.eye(4)), "sigma1 must be a 4x4"),
        (lambda x, y: precision_recall(x, y, batch_size=0), "batch_size must be"),
    ],
)
def test_inputs_are_validated(call, message):
    rng = np.random.default_rng(14)
    with pytest.raises(ValueError, match=message):
        call(rng.normal(size=(10, 4)), rng.normal(size=(10, 4)))


# ------------------------------------------- statistics, cache, provenance


def test_running_moments_match_numpy_over_uneven_batches():
    rng = np.random.default_rng(15)
    features = rng.normal(size=(101, 5)) * 3 + 1000.0  # a large mean
    moments = RunningMoments()
    for start in range(0, 101, 17):
        moments.update(features[start : start + 17])
    assert moments.n == 101
    np.testing.assert_allclose(moments.mean, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(moments.covariance(), np.cov(features, rowvar=False), rtol=1e-9)


def _stats(features, extractor_id="net/legacy/8x8/sha256-abc", **source):
    extractor = {
        "id": extractor_id,
        "weights_sha256": "abc",
        "mode": "legacy",
        "input_size": [8, 8],
    }
    return FeatureStats.from_features(features, extractor_id, extractor=extractor, source=source)


def test_reference_cache_round_trip_and_refusal_for_another_extractor(tmp_path):
    rng = np.random.default_rng(16)
    stats = _stats(rng.normal(size=(20, 3)), kind="hdf5", path="/data/ref.h5", split="test")
    path = tmp_path / "ref" / "stats.npz"
    save_reference_stats(stats, path)
    loaded = load_reference_stats(path, extractor_id=stats.extractor_id)
    np.testing.assert_array_equal(loaded.cov, stats.cov)
    np.testing.assert_array_equal(loaded.features, stats.features)
    assert (loaded.n, loaded.source, loaded.extractor) == (20, stats.source, stats.extractor)
    with pytest.raises(ExtractorMismatchError, match="not 'inception"):
        load_reference_stats(path, extractor_id="inception_v3-pool3/clean/299x299/sha256-x")


def test_compute_scores_returns_values_and_provenance():
    rng = np.random.default_rng(17)
    real = _stats(rng.normal(size=(40, 3)), kind="hdf5", path="/d/r.h5", split="validation")
    fake = _stats(rng.normal(size=(30, 3)) + 0.5, kind="generator", name="dcgan", seed=7)
    result = compute_scores(real, fake, kid_subsets=3, kid_subset_size=30, seed=1)
    assert set(result) == {
        "fid",
        "kid",
        "kid_std",
        "kid_subset_size",
        "precision",
        "recall",
        "density",
        "coverage",
        "provenance",
    }
    provenance = result["provenance"]
    assert provenance == {
        "extractor_id": real.extractor_id,
        "weights_sha256": "abc",
        "mode": "legacy",
        "input_size": [8, 8],
        "n_real": 40,
        "n_fake": 30,
        "reference_source": "hdf5:/d/r.h5",
        "reference_split": "validation",
        "fake_source": "generator:dcgan",
        "seeds": {"real": None, "fake": 7, "kid": 1},
        "gan_zoo_version": scores._version(),
        "notes": [],
    }


def test_compute_scores_refuses_mixed_extractors_and_flags_random_weights():
    rng = np.random.default_rng(18)
    real = _stats(rng.normal(size=(10, 3)))
    other = _stats(rng.normal(size=(10, 3)), extractor_id="other")
    with pytest.raises(ExtractorMismatchError):
        compute_scores(real, other)
    real.extractor = {**real.extractor, "weights_sha256": "random", "random": True}
    with pytest.warns(GenerativeMetricWarning, match="RANDOM WEIGHTS"):
        result = compute_scores(real, _stats(rng.normal(size=(10, 3))), metrics=("fid",))
    assert result["provenance"]["notes"][0].startswith("RANDOM WEIGHTS")
    no_features = FeatureStats(real.mean, real.cov, 10, real.extractor_id)
    with pytest.raises(ValueError, match="no per-image features"):
        compute_scores(no_features, real, metrics=("fid", "kid"))
