"""DiaGRAM (Shams et al. 2018): networks, Algorithm 1, ablation, distribution, transfer."""

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.metrics import binary_metrics
from gan_zoo.config_checks import ConfigError
from gan_zoo.models.diagram import DiaGRAM

TINY = dict(patch_size=16, image_size=32, latent_dim=8, feature_filters=(4, 4, 8, 8),
            feature_kernel_size=3, extended_filters=(8, 8, 8, 8, 8, 8), extended_strides=(1,) * 6,
            generator_filters=(8, 8, 4, 4), generator_kernel_size=3)


def tiny(**overrides):
    return DiaGRAM(**{**TINY, **overrides})


class DataNoiseDiaGRAM(DiaGRAM):
    """z derived from the patches, so one device and two replicas draw equal z.

    Per thread: MirroredStrategy traces each replica in its own thread, and
    the threads take turns at every synchronisation point of the step.
    """

    _local = threading.local()

    def train_step(self, data):
        patches = tf.cast(data["patches"][0], tf.float32)
        flat = tf.reshape(patches, [tf.shape(patches)[0], -1])
        self._local.z = {0: tf.tanh(3.0 * flat[:, : self.latent_dim]),
                         1: tf.tanh(-2.0 * flat[:, 1 : self.latent_dim + 1])}
        return super().train_step(data)

    def sample_latent(self, batch_size, stream=0):
        return self._local.z[stream]


def synthetic_dataset(model, steps, batch_size=4):
    parts = [model.synthetic_batch(batch_size, seed=s) for s in range(steps)]
    stacked = tf.nest.map_structure(lambda *xs: np.stack(xs), *parts)
    return tf.data.Dataset.from_tensor_slices(stacked)


def values(network):
    return {v.path: v.numpy().copy() for v in network.variables}


def changed(before, after):
    return {name for name in before if not np.array_equal(before[name], after[name])}


def sgd():
    return {group: keras.optimizers.SGD(0.05) for group in ("fd", "fe", "g")}


def test_networks_follow_the_paper():
    model = tiny()
    dense = [layer for layer in model.generator.layers if isinstance(layer, keras.layers.Dense)]
    deconvs = [layer for layer in model.generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert len(dense) == 1 and len(deconvs) == 4
    assert model.generator.output_shape == (None, 16, 16, 1)
    assert model.latent_distribution == "uniform"
    convs = [layer for layer in model.features.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 4 and model.features.input_shape == (None, None, None, 1)
    # F is fully convolutional: one network for patches and whole images.
    assert model.features(tf.zeros([1, 16, 16, 1])).shape == (1, 1, 1, 8)
    assert model.features(tf.zeros([1, 32, 32, 1])).shape == (1, 2, 2, 8)
    (d_dense,) = [layer for layer in model.discriminator.layers if not isinstance(layer, (keras.layers.InputLayer, keras.layers.Flatten))]
    assert isinstance(d_dense, keras.layers.Dense) and d_dense.units == 3  # m + 1
    blocks = {layer.name.split("_")[0] for layer in model.extended.layers if layer.name.startswith("block")}
    assert blocks == {f"block{i}" for i in range(1, 7)}
    assert model.extended.output_shape == (None, 2)
    ablation = tiny(use_gan=False)
    assert not hasattr(ablation, "generator") and ablation.discriminator.output_shape == (None, 2)
    assert set(ablation.update_groups()) == {"fd", "fe"}
    assert model.update_groups() == {"fd": ("features", "discriminator"),
                                     "fe": ("features", "extended"), "g": ("generator",)}


@pytest.mark.slow
def test_one_algorithm_1_iteration_updates_what_it_should():
    """k = 2: step 1 updates (F, D) then (F, E); step 2 also G, after them."""
    model = tiny(k=2)
    model.compile(optimizers=sgd())
    nets = {n: model.network(n) for n in ("features", "discriminator", "extended", "generator")}
    trainable = {n: {v.path for v in net.trainable_variables} for n, net in nets.items()}
    moving = {n: {v.path for v in net.non_trainable_variables} for n, net in nets.items()}
    data = iter(synthetic_dataset(model, 2))
    before = {n: values(net) for n, net in nets.items()}
    model.fit(tf.data.Dataset.from_tensors(next(data)), epochs=1, verbose=0)
    after_first = {n: values(net) for n, net in nets.items()}
    diff = {n: changed(before[n], after_first[n]) for n in nets}
    for name in ("features", "discriminator", "extended"):
        assert trainable[name] <= diff[name], name
    # G is not trained in step 1; running it in training mode only moves
    # its batch-norm statistics.
    assert diff["generator"] == moving["generator"]
    assert moving["features"] == moving["discriminator"] == set()
    model.fit(tf.data.Dataset.from_tensors(next(data)), epochs=1, verbose=0)
    after_second = {n: values(net) for n, net in nets.items()}
    diff = {n: changed(after_first[n], after_second[n]) for n in nets}
    assert trainable["generator"] <= diff["generator"]
    assert {g: int(model.optimizer_for(g).iterations) for g in ("fd", "fe", "g")} == \
        {"fd": 2, "fe": 2, "g": 1}
    assert model.schedule_state.numpy().tolist() == [0, 0]  # a new iteration begins


def test_feature_extractor_is_shared_by_both_updates():
    model = tiny()
    features = {v.path for v in model.features.trainable_variables}
    assert features <= {v.path for v in model.group_variables("fd")}
    assert features <= {v.path for v in model.group_variables("fe")}
    assert not features & {v.path for v in model.group_variables("g")}


def test_ablation_trains_without_generator():
    model = tiny(use_gan=False)
    model.compile()
    history = model.fit(synthetic_dataset(model, 2), epochs=1, verbose=0).history
    assert set(history) == {"patch_class_loss", "image_class_loss", "patch_accuracy", "image_accuracy"}
    with pytest.raises(ValueError, match="use_gan=False has no generator"):
        model.generate(2)
    assert set(model.serving_endpoints()) == {"classify"}
    assert set(tiny().serving_endpoints()) == {"generate", "classify"}


@pytest.mark.slow
def test_one_step_one_device_equals_two_replicas(mirrored):
    def build():
        model = DataNoiseDiaGRAM(**TINY, k=1, seed=1)
        model.compile(optimizers=sgd())
        return model

    single = build()
    start = [v.numpy().copy() for v in single.weights]
    dataset = synthetic_dataset(single, 1, batch_size=4)
    single_logs = single.fit(dataset, epochs=1, verbose=0).history
    with mirrored.scope():
        replicated = build()
    for variable, value in zip(replicated.weights, start):
        variable.assign(value)
    replicated_logs = replicated.fit(dataset, epochs=1, verbose=0).history
    for a, b in zip(single.weights, replicated.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=0, err_msg=a.path)
    moved = max(np.abs(a - b.numpy()).max() for a, b in zip(start, single.weights))
    assert moved > 1e-3
    for name in ("d_loss", "g_loss", "image_class_loss", "patch_class_loss"):
        assert single_logs[name][0] == pytest.approx(replicated_logs[name][0], abs=1e-5)


@pytest.mark.slow
def test_classification_path_saves_reloads_and_exports(tmp_path):
    model = tiny()
    model.compile()
    model.fit(synthetic_dataset(model, 1), epochs=1, verbose=0)
    images = np.random.default_rng(0).uniform(0, 1, (3, 32, 32, 1)).astype("float32")
    path = model.classification_path()
    expected = model.classify(images)
    np.testing.assert_allclose(path.predict(images, verbose=0), expected, atol=1e-6)
    # A copy: fine-tuning it leaves the DiaGRAM model alone.
    path.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    path.fit(images, np.array([0, 1, 1]), epochs=1, verbose=0)
    np.testing.assert_allclose(model.classify(images), expected, atol=1e-6)
    tuned = path.predict(images, verbose=0)
    assert np.abs(tuned - expected).max() > 1e-4
    # Plain Keras: reloads without gan_zoo's classes.
    path.save(tmp_path / "path.keras")
    reloaded = keras.saving.load_model(tmp_path / "path.keras", compile=False)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), tuned, atol=1e-6)
    assert gan_zoo.export(reloaded, tmp_path / "exported") == ["classify"]
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    served = loaded.classify(images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(served, tuned, atol=1e-5)


@pytest.mark.slow
def test_model_round_trips_through_keras_file_and_exports(tmp_path):
    model = tiny(k=3)
    model.compile()
    model.fit(synthetic_dataset(model, 2), epochs=1, verbose=0)
    model.save(tmp_path / "diagram.keras")
    again = gan_zoo.load_model(tmp_path / "diagram.keras")
    assert again.get_config() == model.get_config()
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert again.schedule_state.numpy().tolist() == [1, 0]  # k - 1 = 2 steps done: G next
    assert int(again.optimizer_for("g").iterations) == 0 and int(again.optimizer_for("fd").iterations) == 2
    names = gan_zoo.export(model, tmp_path / "exported")
    assert sorted(names) == ["classify", "generate"]
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    patches = loaded.generate(z=tf.zeros([2, 8]))["images"].numpy()
    assert patches.shape == (2, 16, 16, 1) and 0.0 <= patches.min() and patches.max() <= 1.0


def test_config_is_checked_and_registered():
    with pytest.raises(ConfigError, match="patch_size must be a multiple of 16"):
        tiny(patch_size=20)
    with pytest.raises(ConfigError, match=r"extended_strides\[0\] must be an integer from 1 to 2"):
        tiny(extended_strides=(3, 1, 1, 1, 1, 1))
    with pytest.raises(ConfigError, match="feature_filters must be a sequence of 4 values"):
        tiny(feature_filters=(4, 4, 8))
    with pytest.raises(ConfigError, match="extended_pooling must be one of"):
        tiny(extended_pooling="median")
    with pytest.raises(ConfigError, match="k must be an integer >= 1"):
        tiny(k=0)
    model = gan_zoo.load("diagram", **TINY, use_gan=False)
    assert isinstance(model, DiaGRAM) and not model.use_gan
    spec = gan_zoo.get_spec("diagram")
    assert spec.config["patch_size"] == 32 and spec.config["fine_tune_epochs"] == 20
    assert "MICCAI 2018" in spec.citation


@pytest.mark.slow
def test_tiny_diagram_learns_a_whole_image_task():
    """Whole images with a bright square (class 1) or without (class 0)."""
    keras.utils.set_random_seed(0)  # the initial weights too: the threshold must not be luck
    rng = np.random.default_rng(0)

    def images(n, side, labels):
        x = rng.uniform(-1.0, -0.6, (n, side, side, 1)).astype("float32")
        for i in np.nonzero(labels)[0]:
            r, c = rng.integers(0, side - side // 4, 2)
            x[i, r:r + side // 4, c:c + side // 4] = 0.8
        return x

    labels = rng.integers(0, 2, 256).astype("int32")
    data = {"patches": (images(256, 16, labels), labels), "images": (images(256, 32, labels), labels)}
    # 48 steps: with Keras' default momentum 0.99 the moving statistics that
    # inference uses would still hold mostly their initial values.
    model = tiny(learning_rate=3e-3, batch_norm_momentum=0.9)
    model.compile()
    model.fit(tf.data.Dataset.from_tensor_slices(data).batch(16), epochs=3, verbose=0)
    test_labels = rng.integers(0, 2, 64)
    scores = model.classify((images(64, 32, test_labels) + 1) / 2)[:, 1]
    auroc = binary_metrics(test_labels, scores)["auroc"]
    assert auroc > 0.9, auroc


def test_patch_classifier_shares_d_and_f():
    model = tiny()
    patches = np.random.default_rng(1).uniform(0, 1, (3, 16, 16, 1)).astype("float32")
    probabilities = model.patch_classifier().predict(patches, verbose=0)
    logits = model.discriminator(model.features(patches * 2 - 1))[:, :2]
    np.testing.assert_allclose(probabilities, tf.nn.softmax(logits).numpy(), atol=1e-6)
    assert tiny(use_gan=False).patch_classifier().output_shape == (None, 2)
