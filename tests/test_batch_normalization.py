"""gan_zoo's BatchNormalization: Keras's batch norm, with one fused kernel in half precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_zoo.layers.batch_normalization import BatchNormalization as FusedBatchNormalization
from gan_zoo.layers.batch_normalization import fuse_batch_normalization

SHAPE = (4, 6, 6, 5)


def _pair(dtype, **kwargs):
    """A Keras BatchNormalization and a fused one with equal, non-trivial weights."""
    layers = [keras.layers.BatchNormalization(momentum=0.9, dtype=dtype, **kwargs),
              FusedBatchNormalization(momentum=0.9, dtype=dtype, **kwargs)]
    for layer in layers:
        layer.build(SHAPE)
        layer.gamma.assign(np.linspace(0.5, 2.0, SHAPE[-1]))
        layer.beta.assign(np.arange(SHAPE[-1], dtype="float32"))
    return layers


def _step(layer, x):
    """Training-mode output, gradients of a weighted square loss, moving stats, inference output."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, "float32") ** 2 * tf.range(SHAPE[-1], dtype="float32"))
    gradients = tape.gradient(loss, [x, layer.gamma, layer.beta])
    inference = layer(x, training=False)
    as_numpy = [np.asarray(tf.cast(t, "float32")) for t in (y, *gradients, inference)]
    return as_numpy + [layer.moving_mean.numpy(), layer.moving_variance.numpy()]


def _graph_ops(layer, x, training):
    function = tf.function(lambda t: layer(t, training=training))
    return {op.type for op in function.get_concrete_function(tf.constant(x)).graph.get_operations()}


def _images(seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, SHAPE).astype("float32")


def test_float32_is_keras_batch_normalization_exactly():
    keras_bn, fused = _pair("float32")
    for a, b in zip(_step(keras_bn, _images()), _step(fused, _images())):
        np.testing.assert_array_equal(a, b)
    assert "FusedBatchNormV3" not in _graph_ops(fused, _images(), training=True)


@pytest.mark.parametrize("synchronized", [False, True])
def test_bfloat16_runs_the_fused_kernel_with_keras_statistics(synchronized):
    keras_bn, fused = _pair("mixed_bfloat16", synchronized=synchronized)
    expected, got = _step(keras_bn, _images()), _step(fused, _images())
    output, input_gradient, gamma_gradient, beta_gradient, inference, mean, variance = range(7)
    # Same maths, other rounding: the activations are bfloat16 in both.
    np.testing.assert_allclose(got[output], expected[output], atol=0.05)
    np.testing.assert_allclose(got[inference], expected[inference], atol=0.05)
    scale = np.abs(expected[input_gradient]).max()
    np.testing.assert_allclose(got[input_gradient], expected[input_gradient], atol=0.02 * scale)
    np.testing.assert_allclose(got[gamma_gradient], expected[gamma_gradient], rtol=1e-3)
    np.testing.assert_allclose(got[beta_gradient], expected[beta_gradient], rtol=1e-3)
    # The moving variance takes the biased batch variance, as Keras's does.
    np.testing.assert_allclose(got[mean], expected[mean], rtol=1e-5)
    np.testing.assert_allclose(got[variance], expected[variance], rtol=1e-5)
    for training in (True, False):
        ops = _graph_ops(fused, _images(), training)
        assert "FusedBatchNormV3" in ops and "Mean" not in ops


def test_synchronized_statistics_over_two_replicas_stay_keras_s(mirrored):
    # The fused kernel sees one replica's batch: with two it must not be used.
    with mirrored.scope():
        layer = FusedBatchNormalization(synchronized=True, dtype="mixed_bfloat16")
        layer.build(SHAPE)

    def step(x):
        return layer(x, training=True)

    # The two replicas' halves differ in mean: their own variances are small, the batch's is not.
    images = _images() + np.array([0.0, 0.0, 10.0, 10.0], "float32")[:, None, None, None]
    per_replica = mirrored.experimental_distribute_values_from_function(
        lambda context: tf.constant(images[2 * context.replica_id_in_sync_group:][:2]))
    mirrored.run(tf.function(step), args=(per_replica,))
    flat = images.reshape(-1, SHAPE[-1])
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.01 * flat.mean(axis=0), rtol=1e-2)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.99 + 0.01 * flat.var(axis=0), rtol=1e-3)


def test_fuse_batch_normalization_changes_the_class_and_keeps_the_weights():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.BatchNormalization(synchronized=True, name="bn2")(x))
    before = [w.copy() for w in model.get_weights()]
    assert fuse_batch_normalization(model) == 2
    assert type(model.get_layer("bn")) is FusedBatchNormalization
    assert model.get_layer("bn2").synchronized
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert fuse_batch_normalization(model) == 0


def test_resnet18_classifier_in_bfloat16_has_no_unfused_batch_norm():
    from gan_zoo.models.resnet18_classifier import ResNet18Classifier

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = ResNet18Classifier(image_size=32, backbone_weights=None, protocol="full")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    batch_norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(batch_norms) == 20 and all(type(layer) is FusedBatchNormalization for layer in batch_norms)
    function = tf.function(lambda t: model(t, training=True))
    graph = function.get_concrete_function(tf.zeros((2, 32, 32, 3))).graph
    types = [op.type for op in graph.get_operations()]
    assert types.count("FusedBatchNormV3") == 20


def test_weights_files_load_across_keras_and_fused_batch_norm(tmp_path):
    def network(batch_norm):
        inputs = keras.Input((6, 6, 3))
        return keras.Model(inputs, batch_norm(name="bn")(keras.layers.Conv2D(4, 3)(inputs)))

    keras_network, fused_network = network(keras.layers.BatchNormalization), network(FusedBatchNormalization)
    keras_network.set_weights([w + 0.5 for w in keras_network.get_weights()])
    keras_network.save_weights(tmp_path / "keras.weights.h5")
    fused_network.load_weights(tmp_path / "keras.weights.h5")
    fused_network.save_weights(tmp_path / "fused.weights.h5")
    back = network(keras.layers.BatchNormalization)
    back.load_weights(tmp_path / "fused.weights.h5")
    for a, b in zip(keras_network.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
