"""Feature statistics, cached reference statistics, and scores with provenance.

A number such as "FID 23.4" means little without how it was computed: which
feature extractor and weights, how images were resized, how many real and
generated images, which reference split, which seeds (many GAN codebases
report scores without these). Every score returned by `compute_scores`
therefore carries a `provenance` dict, and reference statistics cached to
disk carry the id of the extractor that made them: loading them for another
extractor raises `ExtractorMismatchError` instead of silently comparing
features from two different networks.

Imports numpy and scipy only; `gan_zoo.metrics.features` extracts the
features (with TensorFlow) and returns `FeatureStats`.

Example:

    real = load_reference_stats("ref/idc_val.npz", extractor_id=extractor.id)
    fake = features.extract_features(gan, extractor, n=2000, seed=0)
    scores = compute_scores(real, fake)
    print(scores["fid"], scores["kid"], scores["provenance"]["extractor_id"])
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import warnings

import numpy as np

from gan_zoo.metrics import generative

__all__ = [
    "METRICS",
    "ExtractorMismatchError",
    "FeatureStats",
    "Provenance",
    "RunningMoments",
    "compute_scores",
    "load_reference_stats",
    "save_reference_stats",
]

METRICS = ("fid", "kid", "precision_recall", "density_coverage")
"""Names accepted by `compute_scores(metrics=...)`."""

# Version of the .npz layout written by `save_reference_stats`.
_CACHE_FORMAT = 1


class ExtractorMismatchError(ValueError):
    """Two sets of features (or a cache) come from different extractors."""


class RunningMoments:
    """Mean and covariance of feature batches, accumulated in float64.

    Uses the pairwise update of Chan, Golub & LeVeque (1979): each batch's
    mean and centred scatter matrix are merged into the running ones, which
    avoids the cancellation of `sum(x x^T) - n mu mu^T` when features have a
    large mean. FID then never needs all features in memory.

    Args:
        dim: feature dimension, or None to take it from the first batch.
    """

    def __init__(self, dim=None):
        self.dim = dim
        self.n = 0
        self._mean = None
        self._scatter = None

    def update(self, batch):
        """Adds a `[b, D]` batch of features."""
        batch = generative.check_features(batch, "batch", min_samples=1)
        if self.dim is None:
            self.dim = batch.shape[1]
        if batch.shape[1] != self.dim:
            raise ValueError(f"batch has {batch.shape[1]} features, expected {self.dim}.")
        count = batch.shape[0]
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        batch_scatter = centred.T @ centred
        if self.n == 0:
            self._mean, self._scatter = batch_mean, batch_scatter
        else:
            total = self.n + count
            delta = batch_mean - self._mean
            self._mean = self._mean + delta * (count / total)
            self._scatter = (
                self._scatter + batch_scatter + np.outer(delta, delta) * (self.n * count / total)
            )
        self.n += count

    @property
    def mean(self):
        if self.n == 0:
            raise ValueError("RunningMoments has seen no samples.")
        return self._mean.copy()

    def covariance(self):
        """Unbiased covariance (divisor n - 1), as `numpy.cov`."""
        if self.n < 2:
            raise ValueError(f"A covariance needs at least 2 samples, got {self.n}.")
        return self._scatter / (self.n - 1)


@dataclasses.dataclass
class FeatureStats:
    """The features of one image set, or only their first two moments.

    Args:
        mean: float64 `[D]` mean of the features.
        cov: float64 `[D, D]` unbiased covariance.
        n: number of images.
        extractor_id: the extractor's `id`; statistics are comparable only
            when the ids are equal.
        features: float32 `[n, D]` features (needed by KID, precision/recall
            and density/coverage), or None when only FID is possible.
        extractor: the extractor's provenance dict (id, weights_sha256,
            mode, input_size, ...).
        source: what the images were: kind (dataset, folder, hdf5,
            generator, array), path or name, split, n, seed.
    """

    mean: np.ndarray
    cov: np.ndarray
    n: int
    extractor_id: str
    features: np.ndarray | None = None
    extractor: dict = dataclasses.field(default_factory=dict)
    source: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_features(
        cls, features, extractor_id, extractor=None, source=None, keep_features=True
    ):
        """Statistics of an in-memory `[n, D]` feature array."""
        array = generative.check_features(features, "features")
        return cls(
            mean=array.mean(axis=0),
            cov=np.cov(array, rowvar=False).reshape(array.shape[1], array.shape[1]),
            n=array.shape[0],
            extractor_id=extractor_id,
            features=np.asarray(features, np.float32) if keep_features else None,
            extractor=dict(extractor or {"id": extractor_id}),
            source=dict(source or {}),
        )


def save_reference_stats(stats, path):
    """Writes `stats` to an `.npz` file (atomically: a partial file never remains).

    Args:
        stats: a `FeatureStats`.
        path: destination; its parent folder is created.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "format": np.array(_CACHE_FORMAT),
        "mean": np.asarray(stats.mean, np.float64),
        "cov": np.asarray(stats.cov, np.float64),
        "n": np.array(int(stats.n)),
        "extractor_id": np.array(stats.extractor_id),
        "extractor": np.array(json.dumps(stats.extractor, sort_keys=True)),
        "source": np.array(json.dumps(stats.source, sort_keys=True)),
        "gan_zoo_version": np.array(_version()),
    }
    if stats.features is not None:
        arrays["features"] = np.asarray(stats.features, np.float32)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:  # a handle: np.savez would append ".npz"
        np.savez(handle, **arrays)
    os.replace(partial, path)


def load_reference_stats(path, extractor_id=None):
    """Reads statistics written by `save_reference_stats`.

    Args:
        path: the `.npz` file.
        extractor_id: the id of the extractor the caller will compare with.
            When given and different from the cached one, raises
            `ExtractorMismatchError`: features of two networks (or of one
            network with other weights or another resize mode) are not
            comparable.

    Returns:
        A `FeatureStats` (with `features` when they were cached).
    """
    with np.load(path, allow_pickle=False) as data:
        if "format" not in data or int(data["format"]) != _CACHE_FORMAT:
            raise ValueError(
                f"{path} is not a gan_zoo reference-statistics file (format {_CACHE_FORMAT})."
            )
        cached_id = str(data["extractor_id"])
        if extractor_id is not None and cached_id != extractor_id:
            raise ExtractorMismatchError(
                f"Reference statistics in {path} were computed with extractor "
                f"{cached_id!r}, not {extractor_id!r}; features of different extractors "
                "are not comparable. Delete the file or use another cache path."
            )
        return FeatureStats(
            mean=data["mean"],
            cov=data["cov"],
            n=int(data["n"]),
            extractor_id=cached_id,
            features=data["features"] if "features" in data else None,
            extractor=json.loads(str(data["extractor"])),
            source=json.loads(str(data["source"])),
        )


@dataclasses.dataclass(frozen=True)
class Provenance:
    """How a score was computed; `to_dict()` is JSON-serialisable.

    Args:
        extractor_id: the feature extractor's id.
        weights_sha256: sha256 of its weights, or "random".
        mode: its preprocessing mode (e.g. "legacy", "clean", "resize").
        input_size: `(height, width)` the images were resized to.
        n_real: number of real (reference) images.
        n_fake: number of generated (or compared) images.
        reference_source: where the real images came from (kind:path).
        reference_split: their split (e.g. "validation"), if known.
        fake_source: where the compared images came from.
        seeds: seeds that drew the samples and the metric subsets.
        gan_zoo_version: library version.
        notes: fallbacks and caps that were applied, and warnings.
    """

    extractor_id: str
    weights_sha256: str
    mode: str | None
    input_size: tuple | None
    n_real: int
    n_fake: int
    reference_source: str
    reference_split: str | None
    fake_source: str
    seeds: dict
    gan_zoo_version: str
    notes: tuple = ()

    def to_dict(self):
        out = dataclasses.asdict(self)
        out["input_size"] = list(self.input_size) if self.input_size else None
        out["notes"] = list(self.notes)
        return out


def channel_mismatch(real, fake):
    """A sentence when the two sets' images had different channel counts, else None.

    Features of grayscale images are taken from their channel replicated
    to RGB: comparing them with colour images scores the colour, not the
    generator.
    """
    channels = real.source.get("channels"), fake.source.get("channels")
    if None in channels or channels[0] == channels[1]:
        return None
    return (f"Channel mismatch: the reference images have {channels[0]} channel(s), the generated "
            f"ones {channels[1]}; the scores compare different kinds of images.")


def _enough(real, fake, minimum, what, why, scores, keys):
    """Whether both sets have `minimum` samples; else NaN scores and a warning.

    A metric that cannot be computed from this few samples must not take
    the others down with it: they are kept and this one is NaN.
    """
    if min(real.n, fake.n) >= minimum:
        return True
    warnings.warn(f"{what} need at least {minimum} samples on each side ({why}); got {real.n} real and "
                  f"{fake.n} generated: {what} are NaN.", generative.GenerativeMetricWarning, stacklevel=3)
    scores.update(dict.fromkeys(keys, math.nan))
    return False


def compute_scores(
    real,
    fake,
    metrics=METRICS,
    *,
    kid_subsets=100,
    kid_subset_size=1000,
    precision_k=3,
    density_k=5,
    seed=0,
    batch_size=256,
):
    """FID, KID, precision/recall and density/coverage, with provenance.

    Args:
        real: `FeatureStats` of the reference (real) images.
        fake: `FeatureStats` of the generated images, from the same extractor.
        metrics: any of `METRICS`; all but "fid" need `features`.
        kid_subsets: KID subsets (Binkowski et al. 2018).
        kid_subset_size: KID subset size (capped at min(n_real, n_fake)).
        precision_k: k of precision/recall (Kynkaanniemi et al. 2019).
        density_k: k of density/coverage (Naeem et al. 2020).
        seed: seed of the KID subsets.
        batch_size: rows per distance block of the k-NN metrics.

    Returns:
        A dict with the requested values (`fid`; `kid`, `kid_std`,
        `kid_subset_size`; `precision`, `recall`; `density`, `coverage`) and
        `provenance` (a `Provenance.to_dict()`).

    Raises:
        ExtractorMismatchError: the two sets come from different extractors.
        ValueError: an unknown metric, or features missing for one that
            needs them.
    """
    for name, stats in (("real", real), ("fake", fake)):
        if not isinstance(stats, FeatureStats):
            raise TypeError(f"{name} must be FeatureStats, got {type(stats).__name__}.")
    if real.extractor_id != fake.extractor_id:
        raise ExtractorMismatchError(
            f"real features come from extractor {real.extractor_id!r} but fake features "
            f"from {fake.extractor_id!r}; they are not comparable."
        )
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {METRICS}, got {metrics}.")
    needs_features = [m for m in metrics if m != "fid"]
    for name, stats in (("real", real), ("fake", fake)):
        if needs_features and stats.features is None:
            raise ValueError(
                f"{name} has no per-image features (statistics only), which "
                f"{', '.join(needs_features)} need; extract or cache them with "
                "keep_features=True, or ask for metrics=('fid',)."
            )

    scores = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", generative.GenerativeMetricWarning)
        mismatch = channel_mismatch(real, fake)
        if mismatch:
            warnings.warn(mismatch, generative.GenerativeMetricWarning, stacklevel=2)
        if "fid" in metrics:
            problem = generative.fid_sample_problem(real.n, fake.n, real.mean.shape[0])
            if problem:
                warnings.warn(problem, generative.GenerativeMetricWarning, stacklevel=2)
                scores["fid"] = math.nan
            else:
                scores["fid"] = generative.frechet_distance(real.mean, real.cov, fake.mean, fake.cov)
        if "kid" in metrics and _enough(real, fake, 2, "KID", "an unbiased MMD", scores,
                                        ("kid", "kid_std")):
            result = generative.kid(
                real.features,
                fake.features,
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                seed=seed,
            )
            scores.update(
                kid=result["kid"], kid_std=result["kid_std"], kid_subset_size=result["subset_size"]
            )
        if "precision_recall" in metrics and _enough(real, fake, precision_k + 1, "precision / recall",
                                                     f"k = {precision_k}", scores, ("precision", "recall")):
            result = generative.precision_recall(
                real.features, fake.features, k=precision_k, batch_size=batch_size
            )
            scores.update(precision=result["precision"], recall=result["recall"])
        if "density_coverage" in metrics and _enough(real, fake, density_k + 1, "density / coverage",
                                                     f"k = {density_k}", scores, ("density", "coverage")):
            result = generative.density_coverage(
                real.features, fake.features, k=density_k, batch_size=batch_size
            )
            scores.update(density=result["density"], coverage=result["coverage"])
    notes = [str(w.message) for w in caught]
    for w in caught:  # Re-issued so that callers' filters still apply.
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    extractor = real.extractor or {}
    weights = str(extractor.get("weights_sha256", "unknown"))
    if weights == "random" or extractor.get("random"):
        note = (
            f"RANDOM WEIGHTS: extractor {real.extractor_id!r} is untrained; these "
            "scores are for tests only and say nothing about image quality."
        )
        notes.insert(0, note)
        warnings.warn(note, generative.GenerativeMetricWarning, stacklevel=2)
    provenance = Provenance(
        extractor_id=real.extractor_id,
        weights_sha256=weights,
        mode=extractor.get("mode"),
        input_size=tuple(extractor["input_size"]) if extractor.get("input_size") else None,
        n_real=int(real.n),
        n_fake=int(fake.n),
        reference_source=_describe(real.source),
        reference_split=real.source.get("split"),
        fake_source=_describe(fake.source),
        seeds={"real": real.source.get("seed"), "fake": fake.source.get("seed"), "kid": seed},
        gan_zoo_version=_version(),
        notes=tuple(notes),
    )
    scores["provenance"] = provenance.to_dict()
    return scores


def _describe(source):
    """`kind:where` for a source dict, e.g. `hdf5:/data/ref.h5`."""
    kind = source.get("kind", "unknown")
    where = source.get("path") or source.get("name")
    return f"{kind}:{where}" if where else kind


def _version():
    from gan_zoo._version import __version__

    return __version__
