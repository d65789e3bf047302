"""SIFT bag-of-words k-means clustering (Chi et al., section 4.3)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from gan_zoo.data.sift_clusters import save_cluster_montages, sift_bow_clusters, sift_descriptors


def texture_groups(per_group=12, size=50, seed=0):
    """Four groups of 50x50 images with obviously different textures."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, groups = [], []
    for group in range(4):
        for _ in range(per_group):
            if group == 0:  # checkerboard of 4-pixel squares, random phase
                ox, oy = rng.integers(0, 8, 2)
                image = (((xx + ox) // 4 + (yy + oy) // 4) % 2).astype(float)
            elif group == 1:  # small bright dots on black
                image = np.zeros((size, size))
                for _ in range(40):
                    cy, cx = rng.uniform(0, size, 2)
                    image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
            elif group == 2:  # white noise
                image = rng.uniform(0, 1, (size, size))
            else:  # overlapping flat rectangles
                image = np.full((size, size), 0.5)
                for _ in range(8):
                    y0, x0 = rng.integers(0, size - 8, 2)
                    h, w = rng.integers(8, 25, 2)
                    image[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1)
            image = np.clip(image + 0.02 * rng.standard_normal((size, size)), 0, 1)
            images.append(np.repeat(image[..., None], 3, axis=-1))
            groups.append(group)
    order = rng.permutation(len(groups))  # groups interleaved, not in blocks
    return np.asarray(images, np.float32)[order], np.asarray(groups)[order]


@pytest.fixture(scope="module")
def textures():
    return texture_groups()


def test_finds_the_four_texture_groups(textures):
    images, groups = textures
    clusters = sift_bow_clusters(images, k=4, vocabulary_size=32, seed=0)
    assert adjusted_rand_score(groups, clusters.labels) == pytest.approx(1.0)
    assert sorted(clusters.sizes.tolist()) == [12, 12, 12, 12]
    assert clusters.histograms.shape == (48, 32)
    with_words = clusters.keypoints > 0
    np.testing.assert_allclose(clusters.histograms[with_words].sum(axis=1), 1.0, rtol=1e-5)
    assert clusters.options["k"] == 4 and clusters.k == 4
    # The same seed gives the same clusters; uint8 input gives the same words.
    again = sift_bow_clusters(np.round(images * 255).astype(np.uint8), k=4, vocabulary_size=32, seed=0)
    np.testing.assert_array_equal(again.labels, clusters.labels)


def test_descriptors_and_options(textures):
    images, groups = textures
    found = sift_descriptors(images[:4])
    assert all(d.ndim == 2 and d.shape[1] == 128 and d.dtype == np.float32 for d in found)
    dense = sift_descriptors(images[:2], upscale=1, dense_step=10)
    assert [len(d) for d in dense] == [25, 25]  # a 5x5 grid on 50x50
    flat = np.full((3, 50, 50, 3), 0.5, np.float32)  # nothing to detect
    assert [len(d) for d in sift_descriptors(flat)] == [0, 0, 0]
    mixed = np.concatenate([images[:8], flat])
    clusters = sift_bow_clusters(mixed, k=2, vocabulary_size=8, seed=0)
    assert clusters.without_keypoints == 3
    assert not clusters.histograms[-3:].any()
    with pytest.raises(ValueError, match="k must be"):
        sift_bow_clusters(images[:3], k=4)
    with pytest.raises(ValueError, match="too few"):
        sift_bow_clusters(flat, k=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sift_descriptors(images[:1] * 255)


def test_montages_one_per_cluster(tmp_path, textures):
    images, _ = textures
    clusters = sift_bow_clusters(images, k=4, vocabulary_size=32, seed=0)
    paths = save_cluster_montages(tmp_path / "montages", images, clusters, per_cluster=8, columns=4)
    assert [p.name for p in paths] == [f"cluster_{i}.png" for i in range(4)]
    from PIL import Image

    with Image.open(paths[0]) as montage:  # 2 rows x 4 columns of 100 px tiles, 1 px gaps
        assert montage.size == (4 * 101 - 1, 2 * 101 - 1)
