"""ResNet-18 transfer classifier and the shared transfer pieces (gan_zoo.models.transfer)."""

import warnings

import keras
import numpy as np
import pytest

import gan_zoo
from gan_zoo.models import transfer
from gan_zoo.weights import load_weights_quietly
from gan_zoo.models.resnet18_classifier import IMAGENET_PRESET, RESNET18, ResNet18Classifier

SIZE = 32


def build(**overrides):
    config = dict(image_size=SIZE, backbone_weights=None, seed=0)
    config.update(overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", transfer.RandomWeightsWarning)
        return ResNet18Classifier(**config)


def images(n=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, SIZE, SIZE, 3)).astype("float32")


@pytest.fixture(scope="module")
def model():
    return build()


def test_resnet18_architecture(model):
    backbone = model.backbone
    # The size of keras-hub's resnet_18_imagenet preset: its weights fit.
    assert backbone.count_params() == 11_186_112
    config = backbone.get_config()
    assert {k: config[k] for k in RESNET18} == RESNET18
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 1 + 4 * 2 * 2 + 3  # stem, 8 basic blocks, 3 projection shortcuts
    assert convs[0].kernel_size == (7, 7) and convs[0].strides == (2, 2)
    assert backbone.output_shape == (None, 1, 1, 512)  # 32 px / 32
    assert model.output_shape == (None, 2)
    assert model.get_layer("imagenet_normalization").mode == "torch"


def test_random_initialisation_warns_loudly():
    with pytest.warns(transfer.RandomWeightsWarning, match="RANDOM INITIALISATION"):
        model = ResNet18Classifier(image_size=SIZE, backbone_weights=None)
    assert model.weights_used == "random" and not model.pretrained


def test_imagenet_weights_come_from_the_preset(monkeypatch):
    import keras_hub

    calls = []
    real = keras_hub.models.ResNetBackbone

    def fake_from_preset(handle, image_shape):
        calls.append((handle, image_shape))
        return real(**RESNET18, image_shape=image_shape)

    monkeypatch.setattr(real, "from_preset", staticmethod(fake_from_preset))
    with warnings.catch_warnings():
        warnings.simplefilter("error", transfer.RandomWeightsWarning)
        model = ResNet18Classifier(image_size=50, backbone_weights="imagenet")
    assert calls == [(IMAGENET_PRESET, (50, 50, 3))]
    assert model.weights_used == "imagenet" and model.pretrained


def test_imagenet_offline_is_a_one_line_error(monkeypatch):
    import keras_hub

    def offline(handle, image_shape):
        raise ConnectionError("Failed to resolve 'api.kaggle.com'\nmore lines")

    monkeypatch.setattr(keras_hub.models.ResNetBackbone, "from_preset", staticmethod(offline))
    with pytest.raises(RuntimeError) as error:
        gan_zoo.load("resnet18_classifier")  # the paper default asks for ImageNet weights
    message = str(error.value)
    assert "\n" not in message and "backbone_weights='imagenet'" in message
    assert "Offline?" in message and "backbone_weights=None" in message


def test_local_weights_file(tmp_path, model):
    path = tmp_path / "resnet18.weights.h5"
    model.backbone.save_weights(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", transfer.RandomWeightsWarning)
        loaded = ResNet18Classifier(image_size=SIZE, backbone_weights=str(path))
    # Keras' warnings about the functional index of layers are dropped: every
    # array below loads.
    assert not [w for w in caught if "nested container" in str(w.message)]
    assert loaded.weights_used == f"file:{path}"
    for a, b in zip(model.backbone.weights, loaded.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        build(backbone_weights=str(tmp_path / "missing.weights.h5"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a Keras weights file"):
        build(backbone_weights=str(tmp_path / "notes.txt"))
    other = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(other)
    with pytest.raises(ValueError, match="does not fit"):
        build(backbone_weights=str(other))


def test_weights_file_warnings_about_other_containers_reach_the_user(tmp_path):
    class Backbone:
        def load_weights(self, path):
            warnings.warn("Skipping nested container at '_operations_by_depth/container_2': ...", stacklevel=1)
            warnings.warn("Skipping nested container at 'discriminator/_operations_by_depth/container': ...",
                          stacklevel=1)
            warnings.warn("Skipping nested container at 'blocks/container_0': ...", stacklevel=1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_weights_quietly(Backbone(), tmp_path / "x.weights.h5")
    assert [str(w.message)[:40] for w in caught] == ["Skipping nested container at 'blocks/con"]


@pytest.mark.parametrize("protocol", ["frozen", "full"])
@pytest.mark.slow
def test_protocols_train_the_head_or_everything(protocol):
    model = build(protocol=protocol, rotation_degrees=0, noise_std=0, flips=False)
    backbone_before = [w.numpy().copy() for w in model.backbone.weights]  # BN statistics too
    head_before = model.get_layer("head").kernel.numpy().copy()
    model.compile()
    model.fit(images(8), np.array([0, 1] * 4), batch_size=8, epochs=1, verbose=0)
    assert not np.allclose(head_before, model.get_layer("head").kernel.numpy())
    changed = [not np.allclose(a, b.numpy()) for a, b in zip(backbone_before, model.backbone.weights)]
    if protocol == "frozen":
        assert len(model.trainable_weights) == 2 and not any(changed)
    else:
        assert len(model.trainable_weights) > 40 and all(changed[:3])
    with pytest.raises(ValueError, match="protocol"):
        transfer.set_protocol(model.backbone, "partial")
    # The benchmark's analytic count: a frozen backbone is only run forward.
    flops = model.train_step_flops(lambda network: (1000.0, 10.0))
    assert flops == (1000 + 2 * 512 * 2 if protocol == "frozen" else 1000 + 1000 + 990)


def test_perturbations_run_in_training_only(model):
    names = [layer.name for layer in model.layers]
    assert {"flip_horizontal", "flip_vertical", "rotation", "noise"} <= set(names)
    x = images()
    inference = model(x).numpy()
    np.testing.assert_array_equal(inference, model(x).numpy())
    np.testing.assert_allclose(inference, model.predict(x, verbose=0), atol=1e-5)
    assert not np.allclose(inference, model(x, training=True).numpy())
    plain = transfer.perturbation_layers(rotation_degrees=0, flips=False, noise_std=0)
    assert plain == []
    with pytest.raises(ValueError, match="rotation_degrees"):
        transfer.perturbation_layers(rotation_degrees=270)


def test_imagenet_normalization_modes():
    x = np.full((1, 2, 2, 3), 0.5, "float32")
    torch = transfer.ImageNetNormalization("torch")(x).numpy()[0, 0, 0]
    np.testing.assert_allclose(torch, (0.5 - np.array(transfer.IMAGENET_MEAN)) / transfer.IMAGENET_STD, rtol=1e-6)
    rgb = np.array([[[[0.1, 0.2, 0.3]]]], "float32")
    caffe = transfer.ImageNetNormalization("caffe")(rgb).numpy()[0, 0, 0]
    np.testing.assert_allclose(caffe, np.array([0.3, 0.2, 0.1]) * 255 - transfer.CAFFE_MEAN_BGR, rtol=1e-5)
    np.testing.assert_allclose(transfer.ImageNetNormalization("tf")(x).numpy(), 0.0)
    layer = transfer.ImageNetNormalization("caffe")
    assert transfer.ImageNetNormalization.from_config(layer.get_config()).mode == "caffe"
    with pytest.raises(ValueError, match="normalization"):
        transfer.ImageNetNormalization("bgr")


@pytest.mark.slow
def test_keras_round_trip_needs_no_download_and_export(tmp_path, monkeypatch, model):
    import keras_hub
    import tensorflow as tf

    def no_network(*args, **kwargs):
        raise AssertionError("reloading must not download")

    path = tmp_path / "resnet18.keras"
    model.save(path)
    monkeypatch.setattr(keras_hub.models.ResNetBackbone, "from_preset", staticmethod(no_network))
    with warnings.catch_warnings():
        warnings.simplefilter("error", transfer.RandomWeightsWarning)
        loaded = gan_zoo.load_model(path)
    assert loaded.weights_used == "random" and loaded.protocol == "frozen"
    x = images()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert gan_zoo.export(model, tmp_path / "exported") == ["classify"]
    exported = tf.saved_model.load(str(tmp_path / "exported"))  # held while called
    served = exported.classify(x)["probabilities"].numpy()
    np.testing.assert_allclose(served, model.predict(x, verbose=0), atol=1e-5)


def test_options_are_checked():
    for bad, match in [({"image_size": 16}, "at least 32"), ({"protocol": "half"}, "protocol"),
                       ({"dropout": 1.0}, "dropout"), ({"learning_rate": 0}, "learning_rate"),
                       ({"backbone_weights": 3}, "backbone_weights"),
                       ({"lr_step_epochs": 0}, "lr_step_epochs"), ({"lr_step_gamma": 0}, "lr_step_gamma")]:
        with pytest.raises(ValueError, match=match):
            build(**bad)
    resized = build(image_size=16, resize_to=32)  # small patches may be resized up
    assert resized.input_shape == (None, 16, 16, 3) and resized.backbone.input_shape == (None, 32, 32, 3)


def test_the_rate_steps_down_every_seven_epochs_as_the_tutorials_step_lr(model):
    from gan_zoo.models.classifier import paper_optimizer_for

    optimizer = paper_optimizer_for(model, epochs=25, steps_per_epoch=10)
    for step, expected in [(0, 1e-3), (69, 1e-3), (70, 1e-4), (139, 1e-4), (140, 1e-5), (210, 1e-6)]:
        optimizer.iterations.assign(step)  # the rate follows the optimizer's own step count
        assert float(optimizer.learning_rate) == pytest.approx(expected, rel=1e-6)
    # Without the run's epoch length (compile() alone) or with lr_step_epochs=None: constant.
    constant = build(lr_step_epochs=None).paper_optimizer(steps_per_epoch=10)
    assert float(constant.learning_rate) == pytest.approx(1e-3)
    assert float(model.paper_optimizer().learning_rate) == pytest.approx(1e-3)
    assert ResNet18Classifier.from_config(model.get_config()).lr_step_epochs == 7
