"""Generative-quality metrics on feature vectors: FID, KID, precision/recall,
density/coverage.

Every function takes features already extracted from images (rows are
samples, columns are feature dimensions; see `gan_zoo.metrics.features` for
the extraction) and imports numpy and scipy only, never TensorFlow.

- Frechet Inception Distance (FID): M. Heusel, H. Ramsauer, T. Unterthiner,
  B. Nessler, S. Hochreiter (2017), "GANs trained by a two time-scale update
  rule converge to a local Nash equilibrium", NeurIPS. The Frechet (2-
  Wasserstein) distance between two Gaussians fitted to the features:
  `||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`.
- Kernel Inception Distance (KID): M. Binkowski, D. J. Sutherland, M. Arbel,
  A. Gretton (2018), "Demystifying MMD GANs", ICLR. The unbiased estimate of
  the squared maximum mean discrepancy with the cubic polynomial kernel
  `k(x, y) = (x.y / d + 1)^3`, averaged over random subsets.
- Precision and recall: T. Kynkaanniemi, T. Karras, S. Laine, J. Lehtinen,
  T. Aila (2019), "Improved precision and recall metric for assessing
  generative models", NeurIPS. Each set's manifold is the union of balls
  around its samples reaching their k-th nearest neighbour.
- Density and coverage: M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo
  (2020), "Reliable fidelity and diversity metrics for generative models",
  ICML. Built on the real samples' k-NN balls only.

The nearest-neighbour metrics need every pairwise distance between the two
sets. They are computed here with batched numpy matrix products (`batch_size`
rows at a time), so memory stays at `batch_size x N` however many samples
there are, and no extra dependency (faiss, scikit-learn) is needed at run
time for a few thousand to tens of thousands of samples.

Example:

    from gan_zoo.metrics import generative

    fid = generative.fid(real_features, fake_features)
    kid = generative.kid(real_features, fake_features, seed=0)
    pr = generative.precision_recall(real_features, fake_features, k=3)
"""

import math
import warnings

import numpy as np
from scipy import linalg

__all__ = [
    "GenerativeMetricWarning",
    "density_coverage",
    "fid",
    "fid_sample_problem",
    "frechet_distance",
    "kid",
    "precision_recall",
]

# Largest imaginary part allowed on the diagonal of sqrtm(S1 S2), relative to
# max(1, largest real diagonal entry). S1 S2 is similar to a positive
# semi-definite matrix, so its square root is real in exact arithmetic;
# rounding leaves imaginary parts around 1e-7 relative for rank-deficient
# covariances. TTUR's reference code uses the same 1e-3 (absolute).
IMAGINARY_TOLERANCE = 1e-3
# Relative Frobenius residual ||X X - A|| / ||A|| above which the square root
# is deemed failed and the regularised fallback is used. Well-conditioned
# cases give about 1e-14.
RESIDUAL_TOLERANCE = 1e-6
# Relative slack of the k-NN ball test `d^2 <= r^2 (1 + slack)`. A point on a
# ball's boundary (e.g. a generated copy of the k-th nearest real image, as
# a memorising GAN makes) is inside a closed ball, but d(x, y) and d(y, x)
# are computed from different matrix products and can differ in the last
# bits; the slack makes such ties count whatever the rounding.
BOUNDARY_SLACK = 1e-9


class GenerativeMetricWarning(UserWarning):
    """A metric was computed with a documented fallback or adjusted input."""


# ------------------------------------------------------------------ checks


def check_features(features, name, min_samples=2):
    """`features` as a finite 2-D float64 array; raises ValueError naming it.

    Args:
        features: array-like `[N, D]`.
        name: argument name used in error messages.
        min_samples: smallest acceptable N.
    """
    array = np.asarray(features)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}.")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D [samples, features], got shape {array.shape}.")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has no feature dimensions (shape {array.shape}).")
    if array.shape[0] < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples, got {array.shape[0]}.")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def _same_dimension(real, fake, names=("real_features", "fake_features")):
    if real.shape[-1] != fake.shape[-1]:
        raise ValueError(
            f"{names[1]} has {fake.shape[-1]} feature dimensions but {names[0]} has "
            f"{real.shape[-1]}; both must come from the same extractor."
        )


def _check_moments(mu, sigma, suffix):
    mu_name, sigma_name = f"mu{suffix}", f"sigma{suffix}"
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or mu.shape[0] == 0:
        raise ValueError(f"{mu_name} must be a non-empty 1-D mean vector, got shape {mu.shape}.")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"{sigma_name} must be a {mu.shape[0]}x{mu.shape[0]} covariance matching "
            f"{mu_name}, got shape {sigma.shape}."
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"{mu_name} or {sigma_name} contains NaN or infinite values.")
    return mu, sigma


def _positive_int(value, name, minimum=1):
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


# ------------------------------------------------------------------ FID


def _sqrtm_product(sigma1, sigma2):
    """(sqrtm(S1 S2), ok): ok is False when the root is unusable.

    Unusable means non-finite, inaccurate (relative residual above
    `RESIDUAL_TOLERANCE`) or carrying a significant imaginary part; all three
    happen when the product is (near-)singular.
    """
    product = sigma1 @ sigma2
    with warnings.catch_warnings():
        # The residual below is the accuracy check; scipy's own warnings
        # (singular matrix) would only repeat it.
        warnings.simplefilter("ignore", RuntimeWarning)
        root = linalg.sqrtm(product)
    if not np.all(np.isfinite(root)):
        return root, False
    scale = np.linalg.norm(product)
    residual = np.linalg.norm(root @ root - product) / scale if scale > 0 else 0.0
    return root, bool(residual <= RESIDUAL_TOLERANCE and not _imaginary_part_significant(root))


def _imaginary_part_significant(root):
    if not np.iscomplexobj(root):
        return False
    diagonal = np.diagonal(root)
    limit = IMAGINARY_TOLERANCE * max(1.0, float(np.max(np.abs(diagonal.real))))
    return float(np.max(np.abs(diagonal.imag))) > limit


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    `d^2 = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))`
    (Dowson & Landau 1982; used as FID by Heusel et al. 2017). The matrix
    square root comes from `scipy.linalg.sqrtm`.

    Near-singular covariances (fewer samples than feature dimensions, or
    constant features) can make the square root inaccurate, non-finite or
    complex. Then, as TTUR's reference implementation does, `eps` is added to
    the diagonal of BOTH covariances and the root is computed again; a
    `GenerativeMetricWarning` says so, since the result is then the distance
    between the regularised Gaussians (it differs from the unregularised one
    by O(eps * D)).

    The imaginary part of the root is zero in exact arithmetic (sigma1
    sigma2 is similar to a positive semi-definite matrix). Rounding leaves a
    small one, which is dropped; if the largest imaginary part on the
    diagonal exceeds `IMAGINARY_TOLERANCE` (1e-3) times max(1, largest real
    diagonal entry) even after the fallback, a ValueError is raised rather
    than a wrong number returned.

    Cost: `sqrtm` of a 2048 x 2048 matrix (Inception features) takes about
    10 s on an idle 2-core CPU, up to a minute on a busy one.

    Args:
        mu1: mean `[D]` of the first Gaussian (e.g. real features).
        sigma1: covariance `[D, D]` of the first Gaussian.
        mu2: mean `[D]` of the second Gaussian (e.g. generated features).
        sigma2: covariance `[D, D]` of the second Gaussian.
        eps: diagonal offset of the near-singular fallback.

    Returns:
        The squared Frechet distance as a python float. It can be slightly
        negative (about -1e-12 of the traces) for identical statistics, from
        rounding.

    Raises:
        ValueError: malformed or non-finite inputs, or a square root with a
            significant imaginary part.
    """
    mu1, sigma1 = _check_moments(mu1, sigma1, "1")
    mu2, sigma2 = _check_moments(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"mu2 has {mu2.shape[0]} dimensions but mu1 has {mu1.shape[0]}; both "
            "Gaussians must live in the same feature space."
        )
    root, ok = _sqrtm_product(sigma1, sigma2)
    if not ok:
        warnings.warn(
            f"Frechet distance: sqrtm(sigma1 @ sigma2) is inaccurate (near-singular "
            f"covariances, e.g. fewer samples than the {mu1.shape[0]} feature "
            f"dimensions); added eps={eps:g} to the diagonal of both covariances "
            "and recomputed (TTUR's fallback).",
            GenerativeMetricWarning,
            stacklevel=2,
        )
        offset = eps * np.eye(mu1.shape[0])
        sigma1, sigma2 = sigma1 + offset, sigma2 + offset
        root, _ = _sqrtm_product(sigma1, sigma2)
        if not np.all(np.isfinite(root)):
            raise ValueError("Frechet distance: sqrtm is not finite even with the eps fallback.")
    if _imaginary_part_significant(root):
        largest = float(np.max(np.abs(np.diagonal(root).imag)))
        raise ValueError(
            f"Frechet distance: sqrtm(sigma1 @ sigma2) has a significant imaginary "
            f"part ({largest:.3g} on the diagonal); the covariances are probably not "
            "positive semi-definite."
        )
    diff = mu1 - mu2
    trace_root = float(np.trace(root.real))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)


def fid_sample_problem(n_real, n_fake, dimensions):
    """Why FID is not computed from these sample counts, or None.

    The one rule of the zoo (library, CLI and recipes): FID needs more
    samples than feature dimensions on each side, so that both covariances
    can have full rank (pytorch-fid's README recommends at least 2048
    samples for Inception's 2048-d features for the same reason). Below that
    the distance is dominated by the covariances' missing directions and
    the eps fallback, and it is reported as NaN with this text as a warning.
    """
    if min(n_real, n_fake) > dimensions:
        return None
    return (f"FID needs more samples than feature dimensions on each side (at least {dimensions + 1} "
            f"for {dimensions}-d features); got {n_real} real and {n_fake} generated: FID is NaN.")


def fid(real_features, fake_features, eps=1e-6):
    """Frechet Inception Distance between two sets of features (Heusel et al. 2017).

    Means and covariances (unbiased, divisor N - 1) are computed in float64.
    FID is biased upwards for small N (Binkowski et al. 2018; Chong & Forsyth
    2020): compare numbers only at equal sample sizes, and prefer KID below a
    few thousand samples.

    Args:
        real_features: `[N, D]` features of real images.
        fake_features: `[M, D]` features of generated images.
        eps: diagonal offset of the near-singular fallback (see
            `frechet_distance`).

    Returns:
        FID as a python float; NaN, with a `GenerativeMetricWarning`, when
        either set has no more samples than dimensions
        (`fid_sample_problem`).
    """
    real = check_features(real_features, "real_features")
    fake = check_features(fake_features, "fake_features")
    _same_dimension(real, fake)
    problem = fid_sample_problem(real.shape[0], fake.shape[0], real.shape[1])
    if problem:
        warnings.warn(problem, GenerativeMetricWarning, stacklevel=2)
        return math.nan
    return frechet_distance(
        real.mean(axis=0),
        np.cov(real, rowvar=False, ddof=1).reshape(real.shape[1], real.shape[1]),
        fake.mean(axis=0),
        np.cov(fake, rowvar=False, ddof=1).reshape(fake.shape[1], fake.shape[1]),
        eps=eps,
    )


# ------------------------------------------------------------------ KID


def _polynomial_kernel(x, y):
    """k(x, y) = (x.y / d + 1)^3 for all pairs of rows."""
    gram = x @ y.T
    gram /= x.shape[1]
    gram += 1.0
    return gram**3


def _unbiased_mmd2(x, y):
    """Unbiased MMD^2 estimate (Gretton et al. 2012, eq. 3) of equal-size sets."""
    m = x.shape[0]
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    # The unbiased estimator leaves out the i == j terms within each set.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return within - 2.0 * k_xy.sum() / (m * m)


def kid(real_features, fake_features, subsets=100, subset_size=1000, seed=0):
    """Kernel Inception Distance (Binkowski et al. 2018).

    For each of `subsets` rounds, draws `subset_size` real and `subset_size`
    fake rows without replacement and computes the unbiased MMD^2 with the
    cubic polynomial kernel `k(x, y) = (x.y / d + 1)^3`; reports their mean
    and standard deviation. Unlike FID, the estimate is unbiased, so it is
    about 0 (and can be negative) for two samples of one distribution.

    `subset_size` is capped at `min(N, M)` with a `GenerativeMetricWarning`;
    the value used is returned. The std is over subsets drawn from the same
    features, so it measures the subsampling noise, not the noise of a new
    draw of images. It is NaN where the subsets cannot differ (one subset,
    or subsets that hold every row of both sets): a 0 there would read as
    an exact value.

    Args:
        real_features: `[N, D]` features of real images.
        fake_features: `[M, D]` features of generated images.
        subsets: number of random subsets.
        subset_size: rows per subset from each set.
        seed: seed of the subset draws (numpy `default_rng`).

    Returns:
        A dict: `kid` (mean MMD^2), `kid_std`, `subsets`, `subset_size`
        (after capping), `seed`.
    """
    real = check_features(real_features, "real_features")
    fake = check_features(fake_features, "fake_features")
    _same_dimension(real, fake)
    subsets = _positive_int(subsets, "subsets")
    subset_size = _positive_int(subset_size, "subset_size", minimum=2)
    available = min(real.shape[0], fake.shape[0])
    if subset_size > available:
        warnings.warn(
            f"KID: subset_size {subset_size} capped at {available} = min(n_real="
            f"{real.shape[0]}, n_fake={fake.shape[0]}).",
            GenerativeMetricWarning,
            stacklevel=2,
        )
        subset_size = available
    rng = np.random.default_rng(seed)
    values = np.empty(subsets, dtype=np.float64)
    for i in range(subsets):
        x = real[rng.choice(real.shape[0], subset_size, replace=False)]
        y = fake[rng.choice(fake.shape[0], subset_size, replace=False)]
        values[i] = _unbiased_mmd2(x, y)
    return {
        "kid": float(values.mean()),
        "kid_std": float(values.std()) if subsets > 1 and subset_size < max(real.shape[0], fake.shape[0])
        else math.nan,
        "subsets": subsets,
        "subset_size": subset_size,
        "seed": seed,
    }


# --------------------------------------------------- nearest neighbours


def _squared_distances(a, b, b_sq_norms):
    """Squared Euclidean distances `[len(a), len(b)]`, built in place."""
    distances = a @ b.T
    distances *= -2.0
    distances += np.einsum("ij,ij->i", a, a)[:, None]
    distances += b_sq_norms[None, :]
    # Cancellation can leave tiny negatives where the true distance is 0.
    return np.maximum(distances, 0.0, out=distances)


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _knn_squared_radii(features, k, batch_size):
    """Squared distance of each row to its k-th nearest other row.

    The row itself is at distance 0 and sorts first, so the k-th neighbour
    is the (k + 1)-th smallest distance; duplicates of the row count as
    neighbours at distance 0, as in the papers.
    """
    norms = np.einsum("ij,ij->i", features, features)
    radii = np.empty(features.shape[0], dtype=np.float64)
    for start, stop in _batches(features.shape[0], batch_size):
        distances = _squared_distances(features[start:stop], features, norms)
        radii[start:stop] = np.partition(distances, k, axis=1)[:, k]
    return radii


def _ball_counts(points, centres, squared_radii, batch_size):
    """For each point, how many balls `B(centre_i, radius_i)` contain it.

    Balls are closed (distance <= radius, as in Kynkaanniemi et al. 2019),
    with a `BOUNDARY_SLACK` for rounding.
    """
    norms = np.einsum("ij,ij->i", centres, centres)
    counts = np.empty(points.shape[0], dtype=np.int64)
    squared_radii = squared_radii * (1.0 + BOUNDARY_SLACK)
    for start, stop in _batches(points.shape[0], batch_size):
        distances = _squared_distances(points[start:stop], centres, norms)
        counts[start:stop] = np.count_nonzero(distances <= squared_radii[None, :], axis=1)
    return counts


def _check_knn_inputs(real_features, fake_features, k, batch_size):
    k = _positive_int(k, "k")
    batch_size = _positive_int(batch_size, "batch_size")
    real = check_features(real_features, "real_features", min_samples=k + 1)
    fake = check_features(fake_features, "fake_features", min_samples=k + 1)
    _same_dimension(real, fake)
    return real, fake, k, batch_size


def precision_recall(real_features, fake_features, k=3, batch_size=256):
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    Precision: the fraction of fake samples inside the real manifold, the
    union of balls around each real sample reaching its k-th nearest real
    neighbour. Recall: the fraction of real samples inside the fake manifold,
    built the same way from the fake samples.

    Args:
        real_features: `[N, D]` features of real images (N > k).
        fake_features: `[M, D]` features of generated images (M > k).
        k: neighbourhood size (the paper uses 3).
        batch_size: rows per distance block; memory peaks at about
            `batch_size x max(N, M)` float64 values.

    Returns:
        A dict with `precision` and `recall` in [0, 1], and `k`.
    """
    real, fake, k, batch_size = _check_knn_inputs(real_features, fake_features, k, batch_size)
    real_radii = _knn_squared_radii(real, k, batch_size)
    fake_radii = _knn_squared_radii(fake, k, batch_size)
    precision = np.mean(_ball_counts(fake, real, real_radii, batch_size) > 0)
    recall = np.mean(_ball_counts(real, fake, fake_radii, batch_size) > 0)
    return {"precision": float(precision), "recall": float(recall), "k": k}


def density_coverage(real_features, fake_features, k=5, batch_size=256):
    """Density and coverage (Naeem et al. 2020).

    Both use only the real samples' k-NN balls, which makes them robust to
    outliers among the fakes. Density: `1 / (k M) * sum_j #{i : fake_j in
    B(real_i, NND_k(real_i))}`; about 1 when both sets follow one
    distribution, above 1 when fakes crowd dense real regions. Coverage: the
    fraction of real samples whose ball holds at least one fake sample.

    Args:
        real_features: `[N, D]` features of real images (N > k).
        fake_features: `[M, D]` features of generated images (M > k).
        k: neighbourhood size (the paper uses 5).
        batch_size: rows per distance block; memory peaks at about
            `batch_size x max(N, M)` float64 values.

    Returns:
        A dict with `density` (>= 0, unbounded), `coverage` in [0, 1], and
        `k`.
    """
    real, fake, k, batch_size = _check_knn_inputs(real_features, fake_features, k, batch_size)
    real_radii = _knn_squared_radii(real, k, batch_size)
    counts = _ball_counts(fake, real, real_radii, batch_size)
    density = counts.sum() / (k * fake.shape[0])
    # A real ball holds a fake sample iff its nearest fake is within radius.
    fake_norms = np.einsum("ij,ij->i", fake, fake)
    nearest_fake = np.empty(real.shape[0], dtype=np.float64)
    for start, stop in _batches(real.shape[0], batch_size):
        nearest_fake[start:stop] = _squared_distances(real[start:stop], fake, fake_norms).min(
            axis=1
        )
    coverage = np.mean(nearest_fake <= real_radii * (1.0 + BOUNDARY_SLACK))
    return {"density": float(density), "coverage": float(coverage), "k": k}
