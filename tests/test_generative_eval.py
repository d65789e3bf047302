"""The KID/FID training callback: logged per epoch, validation only, with provenance."""

import json

import keras
import numpy as np
import pytest

from gan_zoo.metrics.extractors import KerasLayerExtractor
from gan_zoo.metrics.features import extract_features
from gan_zoo.models.dcgan import DCGAN
from gan_zoo.training.generative_eval import GenerativeEvaluation
from gan_zoo.training.loop import train_gan
from gan_zoo.experiments import Run


def _extractor(units):
    # Random weights: allowed in tests only; the provenance says so by its
    # in-memory source and weights hash.
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(units, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    return KerasLayerExtractor(keras.Model(inputs, x), "features")


@pytest.mark.slow
def test_kid_and_fid_are_logged_each_epoch_with_provenance(tmp_path):
    rng = np.random.default_rng(0)
    reference_images = rng.uniform(0, 1, (40, 16, 16, 3)).astype("float32")
    extractor = _extractor(4)
    reference = extract_features(reference_images, extractor, split="validation", progress=False)
    gan = DCGAN(image_size=16, base_filters=4, latent_dim=8)
    gan.compile()
    evaluation = GenerativeEvaluation(
        reference, extractor, every_epochs=1, n=24, provenance_path=tmp_path / "provenance.jsonl",
    )
    data = np.round(rng.uniform(0, 255, (32, 16, 16, 3))).astype("uint8")
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices({"image": data})
    train_gan(gan, dataset, Run(tmp_path / "run", {}), epochs=2, batch_size=8,
              sample_every=0, callbacks=[evaluation], verbose=0)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in logged] == [1, 2]
    for record in logged:
        assert np.isfinite(record["kid"]) and record["kid_std"] >= 0
        assert record["fid"] >= 0  # 24 and 40 images > 4 feature dimensions
    provenance = [json.loads(line)["provenance"] for line in (tmp_path / "provenance.jsonl").read_text().splitlines()]
    assert len(provenance) == 2
    assert provenance[0]["n_fake"] == 24 and provenance[0]["n_real"] == 40
    assert provenance[0]["reference_split"] == "validation"
    assert provenance[0]["extractor_id"] == extractor.id


def test_fid_is_left_out_when_there_are_fewer_images_than_dimensions():
    rng = np.random.default_rng(1)
    extractor = _extractor(16)
    reference = extract_features(rng.uniform(0, 1, (10, 16, 16, 3)).astype("float32"), extractor,
                                 split="validation", progress=False)
    gan = DCGAN(image_size=16, base_filters=4, latent_dim=8)
    evaluation = GenerativeEvaluation(reference, extractor, n=12)
    scores = evaluation._score(gan, 0)
    assert set(scores) == {"kid", "kid_std"}
    assert evaluation._score(gan, 1) == scores  # the same draw each time
    for variable in gan.generator.trainable_variables:  # a different generator
        variable.assign(np.random.default_rng(2).normal(0, 0.5, variable.shape))
    assert evaluation._score(gan, 2)["kid"] != scores["kid"]


def test_test_patients_are_never_the_reference():
    with pytest.raises(ValueError, match="reference_split='test' is refused"):
        GenerativeEvaluation(np.zeros((4, 16, 16, 3)), None, reference_split="test")
