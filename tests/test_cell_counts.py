"""The nuclei detector and cell-count FID of gan_zoo.metrics.cell_counts, and their use in the PathologyGAN study."""

import importlib.util
import pathlib

import numpy as np
import pytest

from gan_zoo.metrics import cell_counts
from gan_zoo.metrics.cell_counts import CellDetectorConfig

STAINS = cell_counts.RUIFROK_JOHNSTON_STAINS / np.linalg.norm(cell_counts.RUIFROK_JOHNSTON_STAINS, axis=1,
                                                              keepdims=True)
LARGE = [(30, 30), (30, 90), (90, 150), (150, 40), (150, 150)]  # radius 13 (about 530 px), pale: cancer cells
TOUCHING = [(100, 70), (100, 94)]  # two large discs 24 px apart, overlapping: the watershed splits them
SMALL = [(20, 150), (60, 55), (70, 125), (130, 100), (175, 90), (180, 180), (60, 180)]  # radius 8, dark: others


def render(hematoxylin, eosin):
    """uint8 RGB from per-pixel stain amounts through the Ruifrok & Johnston stain vectors."""
    density = hematoxylin[..., None] * STAINS[0] + eosin[..., None] * STAINS[1]
    return np.round(255 * 10.0 ** -density).astype(np.uint8)


def synthetic_tile(large=LARGE + TOUCHING, small=SMALL, size=200):
    """Pink tissue (eosin 0.3, a trace of hematoxylin) with hematoxylin discs of two sizes."""
    rows, cols = np.indices((size, size))
    amount = np.full((size, size), 0.05)
    for centres, radius, value in ((large, 13, 0.5), (small, 8, 1.0)):
        for r, c in centres:
            amount[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = value
    return render(amount, np.full((size, size), 0.3))


def test_colour_deconvolution_recovers_the_hematoxylin_amount():
    rng = np.random.default_rng(0)
    amount = rng.uniform(0.0, 1.5, (16, 16))
    recovered = cell_counts.hematoxylin(render(amount, rng.uniform(0.0, 1.0, (16, 16))))
    np.testing.assert_allclose(recovered, amount, atol=0.02)  # uint8 quantisation only


def test_detector_counts_drawn_nuclei_of_two_sizes_exactly():
    tile = synthetic_tile()
    config = CellDetectorConfig()
    nuclei = cell_counts.detect_nuclei(tile, config)
    assert len(nuclei) == 14 and nuclei.cancer.sum() == 7  # the touching pair counts as two
    found = {tuple(np.round(c).astype(int)) for c in nuclei.centroids}
    for r, c in LARGE + TOUCHING + SMALL:
        assert min(abs(r - fr) + abs(c - fc) for fr, fc in found) <= 2, (r, c)
    cancer_at = nuclei.centroids[nuclei.cancer]
    assert all(min(np.abs(cancer_at - centre).sum(axis=1)) <= 2 for centre in LARGE + TOUCHING)
    vector = cell_counts.count_vector(nuclei, config)
    np.testing.assert_allclose(vector, [7, 7, 7 * 10_000 / 200**2])  # all 200 x 200 pixels are tissue
    # The same tile at half size, detected with scale 0.5, gives the same counts at the same places.
    half = tile.reshape(100, 2, 100, 2, 3).mean(axis=(1, 3)).astype(np.uint8)
    again = cell_counts.detect_nuclei(half, config, scale=0.5)
    assert (len(again), again.cancer.sum()) == (14, 7)
    assert max(min(np.abs(again.centroids * 2 - c).sum(axis=1)) for c in nuclei.centroids) <= 3


def test_tiles_without_nuclei_or_tissue_count_nothing():
    pink = render(np.full((64, 64), 0.05), np.full((64, 64), 0.3))
    white = np.full((64, 64, 3), 250, np.uint8)
    counts = cell_counts.cell_count_vectors(np.stack([pink, white]))
    np.testing.assert_array_equal(counts, np.zeros((2, 3)))


def test_the_rule_calls_small_or_dark_round_nuclei_other_cells():
    config = CellDetectorConfig(cancer_min_area=300, dark_hematoxylin=0.6, round_axis_ratio=0.8)
    calls = cell_counts.classify(areas=[200, 500, 500, 500], axis_ratios=[0.9, 0.9, 0.5, 0.9],
                                 amounts=[0.3, 0.8, 0.8, 0.4], config=config)
    assert calls.tolist() == [False, False, True, True]
    assert CellDetectorConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown cell detector option"):
        CellDetectorConfig.from_dict({**config.to_dict(), "min_are": 5})
    with pytest.raises(ValueError, match="min_area <= cancer_min_area"):
        CellDetectorConfig(min_area=500, cancer_min_area=300)


def test_cell_fid_is_zero_for_one_set_and_grows_with_a_shifted_count_distribution():
    rng = np.random.default_rng(0)
    real = np.stack([rng.poisson(20, 500), rng.poisson(8, 500), rng.uniform(2, 6, 500)], axis=1).astype(float)
    assert abs(cell_counts.cell_fid(real, real)) < 1e-8
    shifted = [cell_counts.cell_fid(real, real + [shift, shift / 2, 0]) for shift in (1, 3, 6)]
    assert 0 < shifted[0] < shifted[1] < shifted[2]
    np.testing.assert_allclose(shifted, [1.25, 11.25, 45.0], rtol=1e-6)  # the means' part only
    wider = np.stack([rng.poisson(20, 500) * 2 - 20, rng.poisson(8, 500), rng.uniform(2, 6, 500)], axis=1)
    assert cell_counts.cell_fid(real, wider) > 5  # same means, another spread
    # Count vectors of images: the same tiles score 0, tiles with half the cells more.
    tiles = np.stack([synthetic_tile(), synthetic_tile()[::-1], synthetic_tile()[:, ::-1], synthetic_tile().swapaxes(0, 1)])
    fewer = np.stack([synthetic_tile(LARGE[:2], SMALL[:3])] * 2 + [synthetic_tile(LARGE[:3], SMALL[:2])] * 2)
    counts, fewer_counts = cell_counts.cell_count_vectors(tiles), cell_counts.cell_count_vectors(fewer)
    assert abs(cell_counts.cell_fid(counts, counts)) < 1e-8 and cell_counts.cell_fid(counts, fewer_counts) > 20


def test_detection_scores_match_each_annotated_nucleus_once():
    mask = np.zeros((20, 40), bool)
    mask[2:8, 2:8] = mask[10:16, 20:26] = mask[2:6, 30:34] = True
    centroids = [(4, 4), (5, 5), (12, 22), (18, 10)]  # a duplicate and a miss; the third nucleus not found
    scores = cell_counts.detection_scores(centroids, mask)
    assert (scores["true_positives"], scores["false_positives"], scores["false_negatives"]) == (2, 2, 1)
    assert scores["precision"] == 0.5 and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


class StubGenerator:
    """A 'generator' of synthetic tiles at half the stored tiles' side."""

    image_size = 100

    def __init__(self, tile):
        self.tile = tile

    def generate(self, n, labels=None, seed=0, batch_size=64):
        half = self.tile.reshape(100, 2, 100, 2, 3).mean(axis=(1, 3))
        return np.repeat(half[None] / 255.0, n, axis=0).astype(np.float32)


def _reference(tmp_path, tiles):
    from gan_zoo.data.he import PathologyHDF5Writer

    with PathologyHDF5Writer(tmp_path / "tiles.h5", tiles.shape[1:]) as writer:
        writer.add("test", tiles)
    return tmp_path / "tiles.h5", "test"


def test_study_cell_fid_scores_generated_against_test_tiles_at_the_generators_side(tmp_path):
    from gan_zoo.training.pathology_gan_study import cell_count_fid

    tiles = np.stack([synthetic_tile(LARGE[: k % 5 + 1], SMALL[: k % 4 + 2]) for k in range(8)])
    reference = _reference(tmp_path, tiles)
    out = cell_count_fid(StubGenerator(synthetic_tile()), reference, n_fake=6, n_real=None)
    assert (out["real"], out["generated"], out["scale"]) == (8, 6, 0.5)
    assert out["generated_mean"]["cancer_cells"] == 7 and out["generated_mean"]["other_cells"] == 7
    assert out["fid"] > 10 and out["detector"]["cancer_min_area"] == CellDetectorConfig().cancer_min_area
    (tmp_path / "same").mkdir()
    same = cell_count_fid(StubGenerator(tiles[0]), _reference(tmp_path / "same", np.stack([tiles[0]] * 5)),
                          n_fake=None, n_real=None)
    assert same["fid"] == pytest.approx(0.0, abs=1e-8)  # generated tiles with the test tiles' counts


def random_inception_file(path):
    """A Keras Inception-V3 no-top weights file with random weights."""
    import keras

    keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(75, 75, 3),
                                   pooling="avg").save_weights(path)
    return path


def test_study_inception_fid_from_a_local_weights_file(tmp_path):
    from gan_zoo.training.pathology_gan_study import inception_extractor, inception_test_scores

    path = random_inception_file(tmp_path / "inception_notop.weights.h5")
    extractor = inception_extractor(path, input_size=75)
    tiles = np.stack([synthetic_tile(LARGE[: k % 5 + 1]) for k in range(6)])
    out = inception_test_scores(StubGenerator(synthetic_tile()), extractor, _reference(tmp_path, tiles),
                                n_fake=None, n_real=None)
    assert (out["real"], out["generated"]) == (6, 6) and np.isfinite(out["kid"])
    assert out["fid"] is None and "2049" in out["fid_note"]  # FID needs more tiles than 2,048 dimensions
    assert out["extractor_id"].startswith("inception_v3-pool3/legacy/75x75/sha256-")
    import hashlib

    assert out["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_study_refuses_a_bad_inception_weights_file_in_one_line(tmp_path):
    import h5py

    from gan_zoo.errors import UsageError
    from gan_zoo.training.pathology_gan_study import inception_extractor

    text, other = tmp_path / "not_weights.h5", tmp_path / "other.weights.h5"
    text.write_text("not an HDF5 file")
    with h5py.File(other, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    for bad, reason in ((tmp_path / "missing.h5", "no such file"), (text, "not an HDF5 file"),
                        (other, "not usable as Keras Inception-V3 no-top weights")):
        with pytest.raises(UsageError) as error:
            inception_extractor(bad, input_size=75)
        assert f"--inception-weights {bad}: {reason}" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.shared_data
def test_accuracy_benchmark_on_two_brecahad_tiles(shared_data, tmp_path):
    folder = shared_data / "he_tiles" / "brecahad"
    if not (folder / "masks").is_dir():
        pytest.skip("BreCaHAD tiles not found")
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "cell_detector_accuracy.py"
    spec = importlib.util.spec_from_file_location("cell_detector_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    document = module.main(["--data", str(folder), "--limit", "2", "--scales", "tile,down4",
                            "--json", str(tmp_path / "out.json")])
    assert (tmp_path / "out.json").is_file() and document["tiles"] == ["10011", "10012"]
    for scale in ("tile", "down4"):
        assert document["results"][scale]["annotated"] == 233  # 120 + 113 components
        assert document["results"][scale]["recall"] > 0.7  # measured 0.87 over all 24 tiles
