"""SIFT bag-of-visual-words clustering of image patches (Chi et al., section 4.3).

Chi, Fang & Wang cluster IDC patches before training a DCGAN on one cluster,
so that the GAN sees tissue of one kind: SIFT descriptors per image
(OpenCV), a visual vocabulary (k-means over all descriptors; mini-batch
k-means from scikit-learn here), one histogram of visual words per image,
then k-means with k = 4 over the histograms (the paper's k, chosen by
inspecting the clusters; `save_cluster_montages` writes one montage per
cluster for that inspection).

Choices the paper leaves open (options): 50x50 patches give SIFT's detector
few keypoints, so images are enlarged (`upscale=2`, bilinear) before
detection; `dense_step` replaces detection by a grid of keypoints (dense
SIFT), which gives every image descriptors. Histograms are L1-normalised
(term frequencies); an image without any keypoint has an all-zero histogram
and is counted in `SiftClusters.without_keypoints`.

    >>> clusters = sift_bow_clusters(images, k=4, seed=0)
    >>> clusters.sizes
    >>> save_cluster_montages("runs/clusters", images, clusters)
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

__all__ = ["SiftClusters", "save_cluster_montages", "sift_bow_clusters", "sift_descriptors"]

DESCRIPTOR_SIZE = 128


@dataclasses.dataclass(frozen=True)
class SiftClusters:
    """What `sift_bow_clusters` returns.

    Args:
        labels: cluster id of each image, int `[N]`, in [0, k).
        histograms: L1-normalised visual-word histograms, float32 `[N, V]`.
        keypoints: descriptors found per image, int `[N]`.
        vocabulary: the visual words (descriptor centroids), `[V, 128]`.
        centers: the k-means centres of the histograms, `[k, V]`.
        options: the settings used (k, vocabulary size, upscale, dense
            step, seed), for provenance.
    """

    labels: np.ndarray
    histograms: np.ndarray
    keypoints: np.ndarray
    vocabulary: np.ndarray
    centers: np.ndarray
    options: dict

    @property
    def k(self):
        return int(self.centers.shape[0])

    @property
    def sizes(self):
        """Images per cluster, `[k]`."""
        return np.bincount(self.labels, minlength=self.k)

    @property
    def without_keypoints(self):
        """Images on which SIFT found no keypoint (all-zero histograms)."""
        return int(np.count_nonzero(self.keypoints == 0))

    def members(self, cluster):
        """Indices of the images of `cluster`."""
        return np.flatnonzero(self.labels == int(cluster))


def _gray_uint8(image):
    import cv2

    array = np.asarray(image)
    if np.issubdtype(array.dtype, np.floating):
        if array.size and (array.min() < -1e-3 or array.max() > 1 + 1e-3):
            raise ValueError("Float images must be in [0, 1] (divide 8-bit pixels by 255).")
        array = np.round(np.clip(array, 0.0, 1.0) * 255)
    array = array.astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 3:
        return cv2.cvtColor(array, cv2.COLOR_RGB2GRAY)
    if array.ndim == 3 and array.shape[-1] == 1:
        return array[..., 0]
    if array.ndim == 2:
        return array
    raise ValueError(f"Expected [H, W], [H, W, 1] or [H, W, 3] images, got shape {array.shape}.")


def sift_descriptors(images, *, upscale=2, dense_step=None):
    """SIFT descriptors of each image: a list of float32 `[n_i, 128]` arrays.

    Args:
        images: `[N, H, W, C]` (C = 1 or 3) uint8, or float in [0, 1].
        upscale: integer enlargement (bilinear) before SIFT; small patches
            give the detector more keypoints at 2 or 3.
        dense_step: None to detect keypoints, or the spacing (pixels of the
            enlarged image) of a grid of keypoints of diameter 2 x step.
    """
    import cv2

    if int(upscale) < 1:
        raise ValueError(f"upscale must be a positive integer, got {upscale}.")
    if dense_step is not None and int(dense_step) < 1:
        raise ValueError(f"dense_step must be None or a positive integer, got {dense_step}.")
    sift = cv2.SIFT_create()
    found = []
    for image in images:
        gray = _gray_uint8(image)
        if upscale > 1:
            gray = cv2.resize(gray, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
        if dense_step is None:
            _, descriptors = sift.detectAndCompute(gray, None)
        else:
            step = int(dense_step)
            points = [
                cv2.KeyPoint(float(x), float(y), 2.0 * step)
                for y in range(step // 2, gray.shape[0], step)
                for x in range(step // 2, gray.shape[1], step)
            ]
            _, descriptors = sift.compute(gray, points)
        if descriptors is None:
            descriptors = np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        found.append(descriptors.astype(np.float32))
    return found


def sift_bow_clusters(
    images,
    k=4,
    *,
    vocabulary_size=100,
    upscale=2,
    dense_step=None,
    max_vocabulary_descriptors=200_000,
    threads=1,
    seed=0,
):
    """Clusters images by their SIFT bag-of-visual-words histograms.

    Args:
        images: `[N, H, W, C]` uint8 or float in [0, 1] (C = 1 or 3).
        k: clusters (4 in the paper), in [2, N].
        vocabulary_size: visual words (mini-batch k-means centroids); fewer
            when there are fewer descriptors.
        upscale: enlargement before SIFT (see `sift_descriptors`).
        dense_step: dense-SIFT grid step, or None to detect keypoints.
        max_vocabulary_descriptors: descriptors (a seeded sample) the
            vocabulary is fitted on; every descriptor is then assigned.
        threads: OpenMP and BLAS threads of the k-means fits (None: the
            libraries' defaults, all cores). 1 by default: the fits are
            small, and on a busy machine with few cores the spinning threads
            of OpenMP and OpenBLAS can make them many times slower.
        seed: seed of both k-means fits and of the sample.

    Returns:
        A `SiftClusters`.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be [N, H, W, C] with N >= 1, got shape {images.shape}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= len(images):
        raise ValueError(f"k must be an integer in [2, {len(images)}] (the number of images), got {k!r}.")
    if int(vocabulary_size) < 2:
        raise ValueError(f"vocabulary_size must be at least 2, got {vocabulary_size}.")
    descriptors = sift_descriptors(images, upscale=upscale, dense_step=dense_step)
    counts = np.array([len(d) for d in descriptors], np.int64)
    everything = np.concatenate(descriptors) if counts.sum() else np.zeros((0, DESCRIPTOR_SIZE))
    if len(everything) < 2:
        raise ValueError(
            f"SIFT found {len(everything)} descriptor(s) in {len(images)} images; too few for a "
            "vocabulary (try a larger upscale or dense_step)."
        )
    rng = np.random.default_rng(seed)
    sample = everything
    if len(sample) > max_vocabulary_descriptors:
        sample = sample[rng.choice(len(sample), int(max_vocabulary_descriptors), replace=False)]
    words = min(int(vocabulary_size), len(np.unique(sample, axis=0)))
    with threadpool_limits(limits=threads):
        vocabulary = MiniBatchKMeans(
            n_clusters=words, random_state=seed, n_init=3, batch_size=4096
        ).fit(sample)
        assigned = vocabulary.predict(everything)
        owners = np.repeat(np.arange(len(images)), counts)
        histograms = np.zeros((len(images), words), np.float64)
        np.add.at(histograms, (owners, assigned), 1.0)
        histograms /= np.maximum(counts[:, None], 1)
        clustering = KMeans(n_clusters=int(k), n_init=10, random_state=seed).fit(histograms)
    return SiftClusters(
        labels=clustering.labels_.astype(np.int64),
        histograms=histograms.astype(np.float32),
        keypoints=counts,
        vocabulary=vocabulary.cluster_centers_.astype(np.float32),
        centers=clustering.cluster_centers_.astype(np.float32),
        options={
            "k": int(k), "vocabulary_size": int(words), "upscale": int(upscale),
            "dense_step": dense_step, "seed": int(seed),
            "descriptors": int(len(everything)), "vocabulary_fit_on": int(len(sample)),
        },
    )


def save_cluster_montages(directory, images, clusters, *, per_cluster=64, columns=8, upscale=2, seed=0):
    """Writes `cluster_<i>.png`: up to `per_cluster` images of each cluster.

    Args:
        directory: output folder (created).
        images: the clustered images, `[N, H, W, C]` uint8 or float in [0, 1].
        clusters: their `SiftClusters`.
        per_cluster: images shown per cluster (a seeded sample of larger ones).
        columns: images per row.
        upscale: nearest-neighbour magnification.
        seed: seed of the sample.

    Returns:
        The written paths, one per cluster (empty clusters are skipped).
    """
    from gan_zoo.images import save_image_grid

    images = np.asarray(images)
    if len(images) != len(clusters.labels):
        raise ValueError(f"{len(images)} images but {len(clusters.labels)} cluster labels.")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    paths = []
    for cluster in range(clusters.k):
        members = clusters.members(cluster)
        if len(members) == 0:
            continue
        if len(members) > per_cluster:
            members = np.sort(rng.choice(members, per_cluster, replace=False))
        shown = images[members]
        if upscale > 1:
            shown = np.repeat(np.repeat(shown, upscale, axis=1), upscale, axis=2)
        rows = -(-len(shown) // columns)
        path = pathlib.Path(directory) / f"cluster_{cluster}.png"
        paths.append(save_image_grid(path, shown, rows))
    return paths
