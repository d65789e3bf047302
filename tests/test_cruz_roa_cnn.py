"""Tests of the Cruz-Roa et al. (2014) / Janowczyk (2016) IDC CNN."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.layers.augmentation import MeanImageSubtraction, RandomRot90
from gan_zoo.models.cruz_roa_cnn import CruzRoaCNN


@pytest.fixture(scope="module")
def model():
    return CruzRoaCNN(seed=0)


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 50, 50, 3)).astype("float32")


def test_output_is_a_probability_per_class(model):
    probabilities = model.predict(_images(4), verbose=0)
    assert probabilities.shape == (4, 2)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert model.num_classes == 2 and model.input_range == (0.0, 1.0)


def test_layer_list_matches_the_paper(model):
    # (name, type, filters / units, kernel or pool size, stride, padding)
    expected = [
        ("crop", keras.layers.CenterCrop, None, None, None, None),
        ("mean", MeanImageSubtraction, None, None, None, None),
        ("mirror", keras.layers.RandomFlip, None, None, None, None),
        ("rot90", RandomRot90, None, None, None, None),
        ("conv1", keras.layers.Conv2D, 32, (5, 5), (1, 1), "same"),
        ("pool1", keras.layers.MaxPooling2D, None, (3, 3), (2, 2), "same"),
        ("relu1", keras.layers.ReLU, None, None, None, None),
        ("conv2", keras.layers.Conv2D, 32, (5, 5), (1, 1), "same"),
        ("relu2", keras.layers.ReLU, None, None, None, None),
        ("pool2", keras.layers.AveragePooling2D, None, (3, 3), (2, 2), "same"),
        ("conv3", keras.layers.Conv2D, 64, (5, 5), (1, 1), "same"),
        ("relu3", keras.layers.ReLU, None, None, None, None),
        ("pool3", keras.layers.AveragePooling2D, None, (3, 3), (2, 2), "same"),
        ("flatten", keras.layers.Flatten, None, None, None, None),
        ("ip1", keras.layers.Dense, 64, None, None, None),
        ("ip2", keras.layers.Dense, 2, None, None, None),
    ]
    layers = model.layers[1:]  # after the InputLayer
    assert [layer.name for layer in layers] == [e[0] for e in expected]
    for layer, (name, cls, width, size, stride, padding) in zip(layers, expected):
        assert type(layer) is cls, name
        if cls is keras.layers.Conv2D:
            assert (layer.filters, layer.kernel_size, layer.strides) == (width, size, stride)
            assert layer.padding == padding and layer.activation is keras.activations.linear
        elif cls is keras.layers.Dense:
            assert layer.units == width
        elif size is not None:
            assert (tuple(layer.pool_size), tuple(layer.strides), layer.padding) == (
                size,
                stride,
                padding,
            )
    crop = model.get_layer("crop")
    assert (crop.height, crop.width) == (32, 32)
    assert model.get_layer("mirror").mode == "horizontal"
    assert model.get_layer("ip1").activation is keras.activations.linear
    assert model.get_layer("ip2").activation is keras.activations.softmax


def test_feature_map_sizes(model):
    sizes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert sizes["images"] == (50, 50, 3)
    assert sizes["crop"] == sizes["mean"] == sizes["rot90"] == (32, 32, 3)
    assert sizes["conv1"] == (32, 32, 32)
    assert sizes["pool1"] == (16, 16, 32)  # Caffe: ceil((32 - 3) / 2) + 1
    assert sizes["conv2"] == (16, 16, 32)
    assert sizes["pool2"] == (8, 8, 32)
    assert sizes["conv3"] == (8, 8, 64)
    assert sizes["pool3"] == (4, 4, 64)
    assert sizes["flatten"] == (1024,)
    assert sizes["ip1"] == (64,)
    assert sizes["ip2"] == (2,)


def _caffe_pool(x, kernel, stride, mode):
    """Caffe's pooling (pad 0, ceil rounding) of one HWC array, in numpy."""
    height, width, channels = x.shape
    out_h = int(math.ceil((height - kernel) / stride)) + 1
    out_w = int(math.ceil((width - kernel) / stride)) + 1
    out = np.zeros((out_h, out_w, channels), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x[i * stride : min(i * stride + kernel, height),
                       j * stride : min(j * stride + kernel, width)]
            out[i, j] = window.max((0, 1)) if mode == "max" else window.mean((0, 1))
    return out


@pytest.mark.parametrize("size", [32, 16, 8])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_matches_caffe_ceil_rounding(size, mode):
    x = np.random.default_rng(size).normal(size=(1, size, size, 2)).astype("float32")
    layer_cls = keras.layers.MaxPooling2D if mode == "max" else keras.layers.AveragePooling2D
    ours = keras.ops.convert_to_numpy(layer_cls(3, 2, padding="same")(x))[0]
    np.testing.assert_allclose(ours, _caffe_pool(x[0], 3, 2, mode), atol=1e-6)


def test_weight_decay_has_caffe_gradient(model):
    # Caffe: gradient += 0.004 * w for every weight and bias.
    variables = model.trainable_variables
    assert len(variables) == 10  # 3 convs + 2 dense, kernel and bias each
    for variable in variables:  # give the biases non-zero values
        variable.assign(variable + 0.01)
    with tf.GradientTape() as tape:
        regularisation = tf.add_n(model.losses)
    gradients = tape.gradient(regularisation, variables)
    for variable, gradient in zip(variables, gradients):
        np.testing.assert_allclose(gradient, 0.004 * variable.numpy(), rtol=1e-5, atol=1e-9)


def test_adapt_mean_uses_the_centre_crop():
    model = CruzRoaCNN()
    images = _images(40)
    images[:, :, :25] += 1.0  # make the mean image non-uniform
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(40, "int32"))).batch(16)
    model.adapt_mean(dataset)
    expected = images[:, 9:41, 9:41].mean(0)
    np.testing.assert_allclose(model.get_layer("mean").mean.numpy(), expected, atol=1e-5)


def test_augmentation_options():
    names = {layer.name for layer in CruzRoaCNN(augment=False).layers}
    assert not names & {"mirror", "rot90"}
    names = {layer.name for layer in CruzRoaCNN(rotate=False).layers}
    assert "mirror" in names and "rot90" not in names
    model = CruzRoaCNN()
    images = _images(3)
    predictions = model.predict(images, verbose=0)
    np.testing.assert_array_equal(model.predict(images, verbose=0), predictions)
    for _ in range(3):  # a plain call does not mirror or rotate either
        np.testing.assert_allclose(model(images), predictions, atol=1e-6)


def test_compile_defaults_to_the_paper_optimizer(model):
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.Adagrad)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.optimizer.initial_accumulator_value == 0.0
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.default_training() == {"epochs": 30, "batch_size": 128}


def test_fit_warns_without_adapted_mean():
    model = CruzRoaCNN(seed=0)
    model.compile()
    with pytest.warns(UserWarning, match="adapt_mean"):
        model.fit(_images(4), np.arange(4) % 2, batch_size=4, epochs=1, verbose=0)


def test_learns_a_separable_problem():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(64) % 2
    images = rng.random((64, 50, 50, 3)).astype("float32") * 0.5
    images[labels == 1, 15:35, 15:35, 0] += 0.5  # a red centre square means class 1
    model = CruzRoaCNN(seed=0)
    model.adapt_mean(images)
    model.compile()
    before = model.evaluate(images, labels, verbose=0, return_dict=True)["loss"]
    model.fit(images, labels, batch_size=16, epochs=5, verbose=0)
    after = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert after["loss"] < 0.7 * before
    assert after["accuracy"] > 0.9


def test_keras_round_trip_gives_identical_predictions(tmp_path):
    model = CruzRoaCNN(seed=1)
    images = _images(8, seed=3)
    model.adapt_mean(images)
    model.compile()
    model.fit(images, np.arange(8) % 2, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "cruz_roa_cnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, CruzRoaCNN)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        loaded.get_layer("mean").mean.numpy(), model.get_layer("mean").mean.numpy()
    )
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    assert isinstance(loaded.optimizer, keras.optimizers.Adagrad)


def test_registry_load():
    spec = gan_zoo.get_spec("cruz_roa_cnn")
    assert spec.task == "classifier" and "Cruz-Roa" in spec.citation
    model = gan_zoo.load("cruz_roa_cnn")
    assert isinstance(model, CruzRoaCNN)
    assert {k: v for k, v in model.get_config().items() if k in spec.config} == dict(
        spec.config
    )
    assert gan_zoo.load("cruz_roa_cnn", augment=False).augment is False
    with pytest.raises(TypeError, match="Unknown option"):
        gan_zoo.load("cruz_roa_cnn", filters=16)
