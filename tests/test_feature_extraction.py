"""Tests of feature extractors, streaming sources and cached reference
statistics (gan_zoo.metrics.extractors / features)."""

import hashlib
import math
import warnings

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_zoo.metrics import features as features_lib
from gan_zoo.metrics.extractors import (
    InceptionV3Extractor,
    KerasLayerExtractor,
    inception_preprocess,
)
from gan_zoo.metrics.features import extract_features, reference_statistics
from gan_zoo.metrics.generative import GenerativeMetricWarning
from gan_zoo.metrics.scores import ExtractorMismatchError, compute_scores


def _tiny_model(size=12, seed=0, name="tiny"):
    init = keras.initializers.RandomNormal(seed=seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", kernel_initializer=init, name="conv")(inputs)
    x = keras.layers.ReLU(name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, kernel_initializer=init, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="module")
def extractor():
    return KerasLayerExtractor(_tiny_model(), "features")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(13, 8, 8, 3), dtype=np.uint8)


def _extract(source, extractor, **kwargs):
    return extract_features(source, extractor, progress=False, batch_size=5, **kwargs)


# ------------------------------------------------------- preprocessing


def test_legacy_preprocess_scales_to_minus_one_one_on_tf1_grid():
    constant = np.full((3, 5, 5, 3), [[[[0.0]]], [[[0.5]]], [[[1.0]]]], np.float32)
    out = inception_preprocess(constant, "legacy", size=10).numpy()
    assert out.shape == (3, 10, 10, 3)
    np.testing.assert_allclose(out[:, 0, 0, 0], [-1.0, 0.0, 1.0], atol=1e-6)
    # TF1's ResizeBilinear grid (no half-pixel centres): a 2x upsampled ramp
    # samples input x = i / 2, so output 1 is the mean of inputs 0 and 1.
    ramp = np.tile(np.array([0.0, 0.4, 0.8], np.float32)[None, None, :, None], (1, 3, 1, 3))
    row = inception_preprocess(ramp, "legacy", size=6).numpy()[0, 0, :, 0]
    np.testing.assert_allclose((row + 1) / 2, [0.0, 0.2, 0.4, 0.6, 0.8, 0.8], atol=1e-6)


def test_legacy_aliases_when_downsampling_and_clean_antialiases():
    checker = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)
    images = np.repeat(checker[None, :, :, None], 3, axis=-1)
    legacy = inception_preprocess(images, "legacy", size=16).numpy()
    clean = inception_preprocess(images, "clean", size=16).numpy()
    # Every 4th pixel of a checkerboard has one colour: aliasing to flat -1.
    np.testing.assert_allclose(legacy, -1.0, atol=1e-6)
    assert np.max(np.abs(clean)) < 0.05  # averaged to grey


def test_clean_quantises_to_uint8_first_and_grayscale_is_replicated():
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 256, size=(2, 9, 9, 1)).astype(np.float32) / 255.0
    nudged = levels + 0.3 / 255.0
    clean = inception_preprocess(levels, "clean", size=20).numpy()
    np.testing.assert_array_equal(clean, inception_preprocess(nudged, "clean", size=20).numpy())
    legacy = inception_preprocess(levels, "legacy", size=20).numpy()
    assert not np.array_equal(legacy, inception_preprocess(nudged, "legacy", size=20).numpy())
    rgb = np.repeat(levels, 3, axis=-1)
    np.testing.assert_array_equal(clean, inception_preprocess(rgb, "clean", size=20).numpy())
    with pytest.raises(ValueError, match="mode must be one of"):
        inception_preprocess(levels, "bicubic")


# ------------------------------------------------------------ extractors


def test_inception_random_weights_need_allow_random():
    with pytest.raises(ValueError, match="allow_random=True"):
        InceptionV3Extractor(weights=None)
    with pytest.raises(ValueError, match="input_size must be"):
        InceptionV3Extractor(weights=None, allow_random=True, input_size=32)
    with pytest.raises(FileNotFoundError):
        InceptionV3Extractor(weights="/nonexistent/inception.h5")


@pytest.mark.slow
def test_random_inception_weights_are_seeded():
    first, again, other = (InceptionV3Extractor(weights=None, allow_random=True, input_size=75, random_seed=s)
                           for s in (3, 3, 4))
    assert first.id == again.id != other.id  # the id holds the weights' digest
    np.testing.assert_array_equal(first.network.weights[0].numpy(), again.network.weights[0].numpy())


@pytest.mark.slow
def test_inception_random_and_local_file_weights(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")  # as a training run may leave it
    try:
        random = InceptionV3Extractor(weights=None, allow_random=True, mode="clean", input_size=75)
        tiny_bf16 = KerasLayerExtractor(_tiny_model(), "features")
    finally:
        keras.config.set_dtype_policy("float32")
    assert random.compute_dtype == "float32"  # built in float32 whatever the policy
    assert tiny_bf16.id.startswith("keras-layer:features/bilinear-aa-bfloat16/")
    assert "RANDOM-WEIGHTS" in random.id and random.id.startswith(
        "inception_v3-pool3/clean/75x75/"
    )
    assert random.provenance()["weights_sha256"] == "random"
    assert random.provenance()["weights"] == "random (seed 0)"
    images = np.random.default_rng(2).uniform(size=(3, 32, 32, 1)).astype(np.float32)
    feats = random(images)
    assert feats.shape == (3, 2048) and feats.dtype == np.float32 and np.all(np.isfinite(feats))

    path = tmp_path / "inception_notop.weights.h5"
    random.network.save_weights(path)
    from_file = InceptionV3Extractor(weights=str(path), mode="clean", input_size=75)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert from_file.id == f"inception_v3-pool3/clean/75x75/sha256-{digest[:16]}"
    assert from_file.provenance()["weights_sha256"] == digest
    np.testing.assert_allclose(from_file(images), feats, rtol=1e-5, atol=1e-6)


def test_keras_layer_extractor_pools_resizes_and_hashes_weights():
    model = _tiny_model()
    extractor = KerasLayerExtractor(model, "features")
    rng = np.random.default_rng(3)
    images = rng.uniform(size=(4, 8, 8, 3)).astype(np.float32)
    feats = extractor(images)
    assert feats.shape == (4, 6)
    resized = tf.image.resize(images, (12, 12), method="bilinear", antialias=True)
    expected = keras.ops.mean(
        keras.Model(model.inputs, model.get_layer("features").output)(resized), axis=(1, 2)
    )
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    # Gray images are replicated to the 3 channels the model takes.
    np.testing.assert_allclose(
        extractor(images[..., :1]), extractor(np.repeat(images[..., :1], 3, -1))
    )
    # The id follows the weights of the layers up to the features only.
    assert KerasLayerExtractor(_tiny_model(), "features").id == extractor.id
    assert KerasLayerExtractor(_tiny_model(seed=1), "features").id != extractor.id
    model.get_layer("head").set_weights([w + 1 for w in model.get_layer("head").get_weights()])
    assert KerasLayerExtractor(model, "features").id == extractor.id
    assert extractor.id.startswith("keras-layer:features/bilinear-aa/12x12/sha256-")
    with pytest.raises(ValueError, match="floats in \\[0, 1\\]"):
        extractor(np.zeros((1, 8, 8, 3), np.uint8))


def test_zoo_classifier_as_domain_extractor():
    from gan_zoo.models.small_cnn import SmallCNN

    classifier = SmallCNN(image_size=16, width=0.05, seed=0)
    extractor = KerasLayerExtractor(classifier, "gap")
    images = np.random.default_rng(4).uniform(size=(3, 16, 16, 3)).astype(np.float32)
    # Inference mode: no random flips, so features are repeatable.
    np.testing.assert_array_equal(extractor(images), extractor(images))
    assert extractor(images).shape == (3, classifier.get_layer("gap").output.shape[-1])
    assert extractor.provenance()["input_range"] == [0.0, 1.0]


# --------------------------------------------------------------- sources


def test_sources_give_identical_features(tmp_path, extractor, images):
    expected = _extract(images, extractor)
    assert expected.n == 13 and expected.features.shape == (13, 6)
    np.testing.assert_allclose(
        expected.mean, expected.features.astype(np.float64).mean(0), rtol=1e-6
    )
    np.testing.assert_allclose(
        expected.cov,
        np.cov(expected.features.astype(np.float64), rowvar=False),
        rtol=1e-5,
        atol=1e-9,
    )

    unbatched_dicts = tf.data.Dataset.from_tensor_slices({"image": images, "label": np.arange(13)})
    batched_pairs = tf.data.Dataset.from_tensor_slices(
        (images.astype(np.float32) / 255, np.arange(13))
    ).batch(4)
    folder = tmp_path / "folder" / "class0"
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    hdf5 = tmp_path / "ref.h5"
    with h5py.File(hdf5, "w") as handle:
        handle["train_img"] = images
    for source, kind in [
        (unbatched_dicts, "dataset"),
        (batched_pairs, "dataset"),
        (str(tmp_path / "folder"), "folder"),
        (str(folder), "folder"),  # loose images, no class folders
        (str(hdf5), "hdf5"),
        (features_lib._folder_records(str(folder)), "folder"),  # a record list
    ]:
        stats = _extract(source, extractor)
        assert stats.source["kind"] == kind and stats.n == 13
        if isinstance(source, list):
            assert stats.source["name"] == f"13 image records under {folder}"
            assert len(stats.source["records_sha256"]) == 16
        np.testing.assert_allclose(stats.features, expected.features, rtol=1e-5, atol=1e-6)


def test_first_n_images_progress_bar_and_statistics_only(extractor, images, capsys):
    stats = extract_features(
        images, extractor, n=7, batch_size=5, keep_features=False, progress=True
    )
    assert stats.n == 7 and stats.features is None and stats.source["limit"] == 7
    assert "7/7" in capsys.readouterr().out
    full = _extract(images[:7], extractor)
    np.testing.assert_allclose(stats.cov, full.cov, rtol=1e-6, atol=1e-9)


def test_float_images_outside_unit_range_are_refused(extractor, images):
    signed = tf.data.Dataset.from_tensor_slices(images.astype(np.float32) / 127.5 - 1)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\].*\(x \+ 1\) / 2"):
        _extract(signed, extractor)
    with pytest.raises(ValueError, match="n is required"):
        _extract(_CountingGenerator(), extractor)


def test_hdf5_is_read_in_chunks(tmp_path, extractor, images, monkeypatch):
    path = tmp_path / "pathology.h5"
    with h5py.File(path, "w") as handle:
        handle["train_img"] = images
        handle["test_img"] = images[:6]
    reads = []
    original = features_lib._read_rows

    def counting(dataset, start, stop):
        reads.append((dataset.name, start, stop))
        return original(dataset, start, stop)

    monkeypatch.setattr(features_lib, "_read_rows", counting)
    stats = _extract(str(path), extractor, split="train")
    assert reads == [("/train_img", 0, 5), ("/train_img", 5, 10), ("/train_img", 10, 13)]
    assert stats.source["key"] == "train_img" and stats.source["split"] == "train"
    assert _extract(str(path), extractor, split="test").n == 6
    with pytest.raises(ValueError, match="pass split="):
        _extract(str(path), extractor)


class _CountingGenerator:
    """The zoo's generate() contract, with numpy noise images."""

    num_classes = 3

    def __init__(self):
        self.calls = []

    def generate(self, n=None, labels=None, seed=None, z=None, batch_size=256):
        self.calls.append((n, None if labels is None else list(labels), seed))
        return np.random.default_rng(seed).uniform(size=(n, 8, 8, 3)).astype(np.float32)


def test_generator_source_is_seeded_and_balances_classes(extractor):
    generator = _CountingGenerator()
    first = _extract(generator, extractor, n=12, seed=3)
    again = _extract(_CountingGenerator(), extractor, n=12, seed=3)
    other = _extract(_CountingGenerator(), extractor, n=12, seed=4)
    np.testing.assert_array_equal(first.features, again.features)
    assert not np.allclose(first.features, other.features)
    assert [call[0] for call in generator.calls] == [5, 5, 2]
    assert sum((call[1] for call in generator.calls), []) == [0, 1, 2] * 4
    assert first.source == {
        "kind": "generator",
        "split": None,
        "limit": 12,
        "seed": 3,
        "name": "_CountingGenerator",
        "n": 12,
        "channels": 3,
    }


def test_zoo_generator_source():
    import gan_zoo

    gan = gan_zoo.load("dcgan", image_size=16)
    extractor = KerasLayerExtractor(_tiny_model(size=16), "features")
    first = _extract(gan, extractor, n=6, seed=0)
    np.testing.assert_array_equal(first.features, _extract(gan, extractor, n=6, seed=0).features)
    assert first.source["seed"] == 0 and first.n == 6


# ----------------------------------------------- reference cache, scores


def test_reference_statistics_cache_is_reused_only_for_same_extractor(
    tmp_path, extractor, images, monkeypatch
):
    cache = tmp_path / "reference.npz"
    made = reference_statistics(images, extractor, cache=cache, split="validation", progress=False)
    assert cache.is_file()

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(features_lib, "extract_features", fail)
    reused = reference_statistics(
        images, extractor, cache=cache, split="validation", progress=False
    )
    np.testing.assert_array_equal(reused.features, made.features)
    assert reused.extractor_id == extractor.id
    other = KerasLayerExtractor(_tiny_model(seed=5), "features")
    with pytest.raises(ExtractorMismatchError, match="not comparable"):
        reference_statistics(images, other, cache=cache, split="validation")
    with pytest.raises(ValueError, match="were made from"):
        reference_statistics(images, extractor, cache=cache, split="test")


def test_a_metric_short_of_samples_is_nan_and_the_others_are_kept(extractor, images):
    real = _extract(images[:3], extractor, split="validation", name="three reference images")
    fake = _extract(images[3:], extractor)
    with pytest.warns(GenerativeMetricWarning) as caught:
        scores = compute_scores(real, fake, kid_subsets=2, kid_subset_size=3)
    assert np.isfinite(scores["kid"])  # computed from 3 vs 3 samples
    assert all(math.isnan(scores[m]) for m in ("fid", "precision", "recall", "density", "coverage"))
    said = " ".join(str(w.message) for w in caught)
    assert "precision / recall need at least 4 samples on each side (k = 3)" in said
    assert "density / coverage need at least 6 samples" in said and "FID needs more samples" in said
    assert len(scores["provenance"]["notes"]) >= 3


def test_compute_scores_end_to_end_with_provenance(extractor, images):
    real = _extract(images, extractor, split="validation", name="demo validation patients")
    same = compute_scores(real, real, kid_subsets=2, kid_subset_size=13)
    assert abs(same["fid"]) < 1e-6 and same["precision"] == 1.0 and same["coverage"] == 1.0
    shifted = _extract(np.clip(images.astype(np.float32) / 255 + 0.3, 0, 1), extractor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenerativeMetricWarning)
        scored = compute_scores(real, shifted, kid_subsets=2, kid_subset_size=13)
    assert scored["fid"] > same["fid"] + 1e-3
    provenance = scored["provenance"]
    assert provenance["extractor_id"] == extractor.id
    assert provenance["weights_sha256"] == extractor.weights_sha256
    assert provenance["mode"] == "bilinear-aa" and provenance["input_size"] == [12, 12]
    assert provenance["reference_source"] == "array:demo validation patients"
    assert (provenance["reference_split"], provenance["n_real"], provenance["n_fake"]) == (
        "validation",
        13,
        13,
    )
