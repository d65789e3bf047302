import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.layers.spectral_norm import SpectralConv2D, SpectralConv2DTranspose
from gan_zoo.metrics import binary_metrics
from gan_zoo.models.semi_cgan import SemiSupervisedCGAN
from gan_zoo.models.semi_cgan_networks import generator_sizes, hed_jitter, rotate90


def tiny(**overrides):
    return SemiSupervisedCGAN(**{"width": 0.125, "latent_dim": 16, **overrides})


def test_paper_architecture_at_width_1():
    gan = SemiSupervisedCGAN(width=1)
    d, g = gan.discriminator, gan.generator
    convs = [d.get_layer(f"conv{i}") for i in range(1, 6)]
    assert [c.filters for c in convs] == [64, 128, 192, 256, 320]
    assert all(c.kernel_size == (3, 3) for c in convs)
    # Spectral norm on all convolutions but the first and the last.
    assert [isinstance(c, SpectralConv2D) for c in convs] == [False, True, True, True, False]
    assert not any("Pool" in type(layer).__name__ for layer in d.layers)
    assert all(
        layer.negative_slope == pytest.approx(0.2)
        for layer in d.layers if isinstance(layer, keras.layers.LeakyReLU)
    )
    assert len(d.inputs) == 1  # the discriminator is not given the class
    assert d.output["real_fake"].shape == (None, 1) and d.output["class"].shape == (None, 2)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers)

    deconvs = [g.get_layer(f"deconv{i}") for i in range(1, 6)]
    assert [c.filters for c in deconvs] == [256, 192, 128, 64, 3]
    # The paper's reading: every transposed convolution is normalised.
    assert all(isinstance(c, SpectralConv2DTranspose) for c in deconvs)
    assert all(c.kernel_size == (3, 3) for c in deconvs)
    assert [c.output.shape[1] for c in deconvs] == [3, 7, 13, 25, 50]
    assert len([x for x in g.layers if isinstance(x, keras.layers.ReLU)]) == 4
    assert g.input_shape == [(None, 100), (None,)]

    assert gan.default_training() == {"epochs": 200, "batch_size": 128, "constant_epochs": 100}
    assert gan.g_optimizer is None
    gan.compile()
    assert float(gan.d_optimizer.learning_rate.numpy()) == pytest.approx(2e-4)
    assert (gan.d_optimizer.beta_1, gan.d_optimizer.beta_2) == (0.5, 0.999)


def test_generator_spectral_norm_off_is_the_narrow_reading():
    gan = tiny(generator_spectral_norm=False)
    deconvs = [gan.generator.get_layer(f"deconv{i}") for i in range(1, 6)]
    assert not any(isinstance(c, SpectralConv2DTranspose) for c in deconvs)
    assert [type(c) for c in deconvs] == [keras.layers.Conv2DTranspose] * 5
    # The discriminator is the same in both readings.
    convs = [gan.discriminator.get_layer(f"conv{i}") for i in range(1, 6)]
    assert [isinstance(c, SpectralConv2D) for c in convs] == [False, True, True, True, False]
    assert gan.get_config()["generator_spectral_norm"] is False


@pytest.mark.slow
def test_generator_spectral_norm_bounds_each_transposed_convolution():
    gan = tiny()
    gan.compile()
    images = tf.random.stateless_uniform((4, 50, 50, 3), [1, 2], -1, 1)
    for _ in range(3):  # power iterations converge over training calls
        gan.train_on_batch(images, tf.constant([0, 1, -1, 0]))
    for i in range(1, 6):
        layer = gan.generator.get_layer(f"deconv{i}")
        kernel = layer.normalized_kernel().numpy()
        matrix = kernel.reshape(-1, kernel.shape[-1])
        # The normalised kernel's largest singular value is about 1.
        assert np.linalg.svd(matrix, compute_uv=False)[0] == pytest.approx(1.0, rel=0.3)


def test_files_saved_before_the_option_rebuild_the_old_generator():
    config = tiny(generator_spectral_norm=False).get_config()
    del config["generator_spectral_norm"]
    rebuilt = SemiSupervisedCGAN.from_config(config)
    assert not isinstance(rebuilt.generator.get_layer("deconv1"), SpectralConv2DTranspose)


def test_width_multiplies_filters_and_sizes_are_checked():
    assert tiny(width=2).discriminator.get_layer("conv5").filters == 640
    assert generator_sizes(50) == [1, 3, 7, 13, 25, 50]
    with pytest.raises(ValueError, match="49 to 56"):
        SemiSupervisedCGAN(image_size=64)


def test_unlabelled_images_do_not_train_the_class_head():
    gan = tiny(fake_class_loss_weight=0.0)
    gan.compile()
    head = gan.discriminator.get_layer("class").kernel
    before = head.numpy().copy()
    images = tf.random.uniform((8, 50, 50, 3), -1, 1, seed=0)
    logs = gan.train_on_batch(images, tf.fill([8], -1), return_dict=True)
    np.testing.assert_array_equal(before, head.numpy())
    assert logs["class_loss"] == 0.0
    gan.train_on_batch(images, tf.constant([0, 1, -1, -1, 0, 1, -1, -1]))
    assert not np.allclose(before, head.numpy())


def test_class_loss_is_normalised_by_labelled_count():
    gan = tiny(class_weights=[1.0, 3.0])
    logits = tf.constant([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0], [1.0, -1.0]])
    labels = tf.constant([0, 1, -1, 1])
    loss = gan._class_loss_of_labelled(logits, labels)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits([0, 1, 1], tf.gather(logits, [0, 1, 3])).numpy()
    expected = (ce[0] * 1.0 + ce[1] * 3.0 + ce[2] * 3.0) / 3  # 3 labelled images
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(gan.trackers["class_loss"].result()) == pytest.approx(expected, rel=1e-6)


def test_classifier_shares_the_discriminator():
    gan = tiny()
    classifier = gan.classifier()
    images = tf.random.uniform((3, 50, 50, 3), seed=1)
    probabilities = classifier(images).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    expected = tf.nn.softmax(gan.discriminator(images * 2 - 1)["class"]).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    assert classifier.get_layer("discriminator") is gan.discriminator


def _two_class_patches(n, seed):
    """Class 1: a dark blob in the centre; class 0: a flat texture."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    yy, xx = np.mgrid[:50, :50]
    blob = np.exp(-((yy - 25) ** 2 + (xx - 25) ** 2) / 120.0)[..., None]
    images = 0.3 * rng.standard_normal((n, 50, 50, 3)) + 0.4
    images -= 1.2 * labels[:, None, None, None] * blob
    return np.clip(images, -1, 1).astype(np.float32), labels.astype(np.int32)


@pytest.mark.slow
def test_learns_from_ten_percent_of_labels():
    keras.utils.set_random_seed(0)
    images, labels = _two_class_patches(512, seed=0)
    partial = np.where(np.arange(512) % 10 == 0, labels, -1)  # 10% labelled
    gan = tiny(width=0.25)
    gan.compile()
    dataset = tf.data.Dataset.from_tensor_slices((images, partial)).batch(64, drop_remainder=True)
    gan.fit(dataset, epochs=3, verbose=0, shuffle=False)
    test_images, test_labels = _two_class_patches(256, seed=1)
    scores = gan.classifier().predict((test_images + 1) / 2, verbose=0)[:, 1]
    assert binary_metrics(test_labels, scores)["auroc"] > 0.9


class DataNoiseCGAN(SemiSupervisedCGAN):
    """Noise derived from each example, so one device and two replicas agree."""

    def unpack(self, data):
        images, labels = super().unpack(data)
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        self._z = tf.tanh(3.0 * flat[:, : self.latent_dim])
        self._alpha = tf.reshape(tf.sigmoid(flat[:, 0]), [-1, 1, 1, 1])
        self._fake_labels = tf.cast(flat[:, 1] > 0, tf.int32)
        return images, labels

    def sample_latent(self, batch_size, stream=0):
        return self._z

    def sample_labels(self, batch_size, stream=1):
        return self._fake_labels

    def random_uniform(self, shape, stream, minval=0.0, maxval=1.0):
        return self._alpha


@pytest.mark.slow
def test_mirrored_step_with_uneven_labels_equals_single_device(mirrored):
    images = tf.random.stateless_uniform((8, 50, 50, 3), [5, 6], -1, 1)
    # Replica 0 gets 3 labelled images, replica 1 gets 1: the class loss
    # must be normalised by the 4 labelled images of the global batch.
    labels = tf.constant([0, 1, 1, -1, -1, -1, 0, -1])
    dataset = tf.data.Dataset.from_tensors((images, labels))

    def sgd():
        return keras.optimizers.SGD(0.1)

    single = DataNoiseCGAN(width=0.125, latent_dim=16)
    single.compile(sgd(), sgd())
    start = [v.numpy() for v in single.weights]
    single_logs = single.fit(dataset, epochs=1, verbose=0).history
    with mirrored.scope():
        mirrored = DataNoiseCGAN(width=0.125, latent_dim=16)
        mirrored.compile(sgd(), sgd())
    for variable, value in zip(mirrored.weights, start):
        variable.assign(value)
    mirrored_logs = mirrored.fit(dataset, epochs=1, verbose=0).history
    # Weights move by up to ~1e-2 in this step; replicas sum in another order
    # (and the penalty differentiates twice), so allow 1e-5.
    moved = max(np.abs(a.numpy() - s).max() for a, s in zip(single.weights, start))
    assert moved > 1e-3
    for a, b in zip(single.weights, mirrored.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    # Every logged value is a GLOBAL mean, so the replica with one
    # labelled image does not weigh as much as the one with three.
    for key in ("d_loss", "g_loss", "gradient_penalty", "class_loss", "class_accuracy"):
        assert single_logs[key][0] == pytest.approx(mirrored_logs[key][0], abs=1e-5), key


@pytest.mark.parametrize("options", [
    {"discriminator_head": "k_plus_one"},
    {"generator_loss": "feature_matching"},
    {"real_augmentation": "rot90,stain", "discriminator_ema_half_life_steps": 2.0},
    {"discriminator_dropout": 0.3},
], ids=["k_plus_one", "feature_matching", "augmentation_and_ema", "dropout"])
@pytest.mark.slow
def test_semi_cgan_options_step_on_two_replicas_as_on_one_device(mirrored, options):
    images = tf.random.stateless_uniform((8, 50, 50, 3), [5, 6], -1, 1)
    labels = tf.constant([0, 1, 1, -1, -1, -1, 0, -1])
    dataset = tf.data.Dataset.from_tensors((images, labels))
    single = DataNoiseCGAN(width=0.125, latent_dim=16, **options)
    single.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    start = [v.numpy() for v in single.weights]
    single.fit(dataset, epochs=1, verbose=0)
    with mirrored.scope():
        replicated = DataNoiseCGAN(width=0.125, latent_dim=16, **options)
        replicated.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    for variable, value in zip(replicated.weights, start):
        variable.assign(value)
    replicated.fit(dataset, epochs=1, verbose=0)
    for a, b in zip(single.weights, replicated.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


def _one_step(options, seed=3):
    keras.utils.set_random_seed(seed)
    gan = DataNoiseCGAN(width=0.125, latent_dim=16, **options)
    gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    images = tf.random.stateless_uniform((8, 50, 50, 3), [5, 6], -1, 1)
    labels = tf.constant([0, 1, 1, -1, -1, -1, 0, -1])
    gan.fit(tf.data.Dataset.from_tensors((images, labels)), epochs=1, verbose=0)
    return gan


def _same(a, b):
    return all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights))


@pytest.mark.slow
def test_k_plus_one_head_is_logsumexp_of_the_class_logits():
    gan = tiny(discriminator_head="k_plus_one")
    outputs = gan.discriminator(tf.random.uniform((3, 50, 50, 3), -1, 1), training=False)
    np.testing.assert_allclose(
        outputs["real_fake"].numpy()[:, 0],
        tf.reduce_logsumexp(outputs["class"], axis=-1).numpy(), rtol=1e-6)
    dense = [layer.name for layer in gan.discriminator.layers if isinstance(layer, keras.layers.Dense)]
    assert dense == ["class"]  # no separate real/fake unit
    # With this head unlabelled real images train the class logits (with two heads they
    # train only the real/fake unit).
    def class_kernel_moves(head):
        gan = DataNoiseCGAN(width=0.125, latent_dim=16, discriminator_head=head,
                            fake_class_loss_weight=0.0)
        gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
        before = gan.discriminator.get_layer("class").kernel.numpy()
        images = tf.random.stateless_uniform((8, 50, 50, 3), [5, 6], -1, 1)
        unlabelled = tf.fill([8], -1)
        gan.fit(tf.data.Dataset.from_tensors((images, unlabelled)), epochs=1, verbose=0)
        return not np.allclose(before, gan.discriminator.get_layer("class").kernel.numpy())

    assert class_kernel_moves("k_plus_one") and not class_kernel_moves("two_heads")


@pytest.mark.slow
def test_fake_class_warmup_leaves_out_the_fakes_class_loss_at_first():
    warm = _one_step({"fake_class_warmup_steps": 5})
    without = _one_step({"fake_class_loss_weight": 0.0})
    paper = _one_step({})
    assert _same(warm.discriminator, without.discriminator)
    assert not _same(warm.discriminator, paper.discriminator)


@pytest.mark.slow
def test_labelled_class_loss_weight_scales_the_class_heads_step():
    def class_head_step(weight):
        keras.utils.set_random_seed(3)
        start = DataNoiseCGAN(width=0.125, latent_dim=16).discriminator.get_layer("class").kernel.numpy()
        # Without the fakes' class loss, only the labelled images move the head.
        trained = _one_step({"fake_class_loss_weight": 0.0, "labelled_class_loss_weight": weight})
        return trained.discriminator.get_layer("class").kernel.numpy() - start

    once = class_head_step(1.0)
    assert np.abs(once).max() > 0
    np.testing.assert_allclose(class_head_step(3.0), 3.0 * once, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_discriminator_dropout_acts_in_training_only():
    from gan_zoo.layers import ScopedDropout

    dropped = _one_step({"discriminator_dropout": 0.3})
    paper = _one_step({})
    drops = [layer for layer in dropped.discriminator.layers if isinstance(layer, ScopedDropout)]
    assert [layer.name for layer in drops] == [f"conv{i}_dropout" for i in range(1, 5)]
    assert not any(isinstance(layer, ScopedDropout) for layer in paper.discriminator.layers)
    # Same weights (the option is weight-independent), a different step.
    assert [w.shape for w in dropped.weights] == [w.shape for w in paper.weights]
    assert not _same(dropped.discriminator, paper.discriminator)
    # The classifier runs without dropout: the paper's D with the same
    # weights classifies identically.
    for mine, theirs in zip(paper.discriminator.weights, dropped.discriminator.weights):
        mine.assign(theirs)
    images = np.random.default_rng(0).uniform(0, 1, (4, 50, 50, 3)).astype("float32")
    np.testing.assert_allclose(dropped.classifier().predict(images, verbose=0),
                               paper.classifier().predict(images, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="discriminator_dropout"):
        tiny(discriminator_dropout=1.0)


@pytest.mark.slow
def test_feature_matching_changes_only_the_generator_update():
    matched = _one_step({"generator_loss": "feature_matching"})
    paper = _one_step({})
    assert _same(matched.discriminator, paper.discriminator)
    assert not _same(matched.generator, paper.generator)


def test_discriminator_ema_is_what_the_classifier_uses():
    gan = _one_step({"discriminator_ema_half_life_steps": 1.0})
    images = np.random.default_rng(0).uniform(0, 1, (4, 50, 50, 3)).astype("float32")
    averaged = gan.ema_of("discriminator")
    assert averaged is not None
    from_classifier = gan.classifier().predict(images, verbose=0)
    raw_logits = gan.discriminator(images * 2 - 1, training=False)["class"]
    copy_logits = gan.sampling_network("discriminator")(images * 2 - 1, training=False)["class"]
    np.testing.assert_allclose(from_classifier, tf.nn.softmax(copy_logits).numpy(), atol=1e-6)
    assert not np.allclose(from_classifier, tf.nn.softmax(raw_logits).numpy(), atol=1e-6)


def _rgb2hed(rgb):
    """scikit-image's rgb2hed, in numpy (the reference of the stain jitter)."""
    rgb_from_hed = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
    rgb = np.maximum(rgb, 1e-6)
    return np.maximum((np.log(rgb) / np.log(1e-6)) @ np.linalg.inv(rgb_from_hed), 0)


def test_real_augmentation_quarter_turns_and_stain_jitter():
    images = np.random.default_rng(1).uniform(0, 1, (4, 6, 6, 3)).astype("float32")
    turned = rotate90(tf.constant(images), tf.constant([0, 1, 2, 3]))
    for i in range(4):
        np.testing.assert_array_equal(turned[i].numpy(), np.rot90(images[i], i))
    # An H&E-like colour: scale 1, shift 0 gives it back; a shift of the
    # haematoxylin channel moves exactly that stain's concentration.
    tissue = np.tile(np.array([[0.8, 0.5, 0.7]], np.float32), (1, 2, 2, 1))
    same = hed_jitter(tf.constant(tissue), tf.ones([1, 3]), tf.zeros([1, 3])).numpy()
    np.testing.assert_allclose(same, tissue, atol=1e-5)
    shifted = hed_jitter(tf.constant(tissue), tf.ones([1, 3]), tf.constant([[0.05, 0.0, 0.0]])).numpy()
    np.testing.assert_allclose(_rgb2hed(shifted[0, 0, 0]) - _rgb2hed(tissue[0, 0, 0]),
                               [0.05, 0.0, 0.0], atol=1e-4)
    with pytest.raises(ValueError, match="real_augmentation must be"):
        tiny(real_augmentation="rot180")


@pytest.mark.slow
def test_per_step_logs_under_mirrored_are_global_means(mirrored):
    # Global means per step too (progress bar, batch callbacks): the epoch logs above are
    # global means already (Keras reads the synced trackers at epoch end).
    images = tf.random.stateless_uniform((8, 50, 50, 3), [5, 6], -1, 1)
    labels = tf.constant([0, 1, 1, -1, -1, -1, 0, -1])
    dataset = tf.data.Dataset.from_tensors((images, labels))
    with mirrored.scope():
        replicated = DataNoiseCGAN(width=0.125, latent_dim=16)
        replicated.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    batch_logs = []
    catch = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batch_logs.append(dict(logs)))
    epoch_logs = replicated.fit(dataset, epochs=1, verbose=0, callbacks=[catch]).history
    for key in ("class_loss", "class_accuracy"):
        assert batch_logs[-1][key] == pytest.approx(epoch_logs[key][0], abs=1e-6), key


@pytest.mark.slow
def test_round_trip_and_export(tmp_path):
    gan = gan_zoo.load("semi_cgan", width=0.125, latent_dim=16)
    gan.compile()
    gan.train_on_batch(tf.zeros((4, 50, 50, 3)), tf.constant([0, 1, -1, 0]))
    gan.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    assert loaded.get_config() == gan.get_config()
    assert int(loaded.d_optimizer.iterations) == 1
    np.testing.assert_array_equal(loaded.generate(labels=[0, 1], seed=3), gan.generate(labels=[0, 1], seed=3))

    assert sorted(gan_zoo.export(gan, tmp_path / "sm")) == ["classify", "generate"]
    served = tf.saved_model.load(str(tmp_path / "sm"))
    images = tf.random.uniform((2, 50, 50, 3), seed=2)
    np.testing.assert_allclose(
        served.signatures["classify"](images=images)["probabilities"].numpy(),
        gan.classifier()(images).numpy(), atol=1e-6,
    )
    z = gan.latent(2, seed=0)
    out = served.signatures["generate"](z=z, labels=tf.constant([1, 0]))["images"]
    np.testing.assert_allclose(out.numpy(), gan.generate(z=z, labels=[1, 0]), atol=1e-6)


@pytest.mark.slow
def test_penalty_is_loss_scaled_under_mixed_float16():
    # The gradient penalty's inner gradient uses the D optimizer's loss scale.
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        gan = tiny()
        gan.compile()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert gan._penalty_loss_scale() is gan.d_optimizer.dynamic_scale
    logs = gan.train_on_batch(
        tf.random.uniform((4, 50, 50, 3), -1, 1, seed=3), tf.constant([0, 1, -1, 0]), return_dict=True
    )
    assert all(np.isfinite(v) for v in logs.values())
    float32 = tiny()
    float32.compile()
    assert float32._penalty_loss_scale() is None
