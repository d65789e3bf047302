import keras
import numpy as np
import pytest
import tensorflow as tf

import gan_zoo
from gan_zoo.models.dcgan import DCGAN, feature_sizes


def tiny(**overrides):
    config = dict(image_size=16, base_filters=4, latent_dim=8)
    config.update(overrides)
    return DCGAN(**config)


def layers_of(model, kind):
    return [layer for layer in model.layers if type(layer).__name__ == kind]


def test_feature_sizes_follow_the_reference():
    assert feature_sizes(64) == [4, 8, 16, 32, 64]
    assert feature_sizes(50) == [4, 7, 13, 25, 50]


@pytest.mark.parametrize("variant", ["v1", "v3"])
@pytest.mark.parametrize("size", [50, 64])
def test_paper_architecture(variant, size):
    gan = DCGAN(variant=variant, image_size=size)
    g, d = gan.generator, gan.discriminator
    assert g.output_shape == (None, size, size, 3)
    assert g.get_layer("project").units == 4 * 4 * 512
    deconvs = layers_of(g, "Conv2DTranspose")
    assert [c.filters for c in deconvs] == [256, 128, 64, 3]
    assert all(c.kernel_size == (5, 5) for c in deconvs)
    stride = 2 if variant == "v1" else 1
    assert all(c.strides == (stride, stride) for c in deconvs)
    assert len(layers_of(g, "UpSampling2D")) == (0 if variant == "v1" else 4)
    assert [c.output.shape[1] for c in deconvs] == feature_sizes(size)[1:]
    assert len(layers_of(g, "BatchNormalization")) == 4
    assert g.layers[-1].activation.__name__ == "tanh"

    convs = layers_of(d, "Conv2D")
    assert [c.filters for c in convs] == [64, 128, 256, 512]
    assert all(c.strides == (2, 2) and c.kernel_size == (5, 5) for c in convs)
    assert len(layers_of(d, "BatchNormalization")) == 3  # none after the first conv
    assert all(a.negative_slope == pytest.approx(0.2) for a in layers_of(d, "LeakyReLU"))
    assert d.output_shape == (None, 1)
    bn = layers_of(d, "BatchNormalization")[0]
    assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(1e-5)
    # N(0, 0.02) initialisation, zero biases.
    kernel = convs[-1].kernel.numpy()
    assert kernel.std() == pytest.approx(0.02, rel=0.05)
    assert not convs[-1].bias.numpy().any()


def test_variants_settings():
    v1, v2, v3 = (tiny(variant=v) for v in ("v1", "v2", "v3"))
    assert (v1.real_label, v1.instance_noise_std, v1.upsampling) == (1.0, 0.0, "transposed")
    assert (v2.real_label, v2.instance_noise_std, v2.upsampling) == (0.9, 0.2, "transposed")
    assert (v3.real_label, v3.instance_noise_std, v3.upsampling) == (0.9, 0.2, "resize_conv")
    assert v1.default_training() == {"epochs": 25, "batch_size": 64}
    assert v3.default_training()["epochs"] == 50
    assert tiny(variant="v2", real_label=1.0).real_label == 1.0  # explicit wins
    with pytest.raises(ValueError, match="variant"):
        tiny(variant="v4")


def test_uniform_latent_and_generate_range():
    gan = tiny()
    z = gan.latent(256, seed=3)
    assert z.shape == (256, 8)
    assert -1.0 <= float(tf.reduce_min(z)) and float(tf.reduce_max(z)) <= 1.0
    images = gan.generate(5, seed=1)
    assert images.shape == (5, 16, 16, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, gan.generate(5, seed=1))
    assert not np.array_equal(images, gan.generate(5, seed=2))


@pytest.mark.slow
def test_two_generator_updates_per_discriminator_update():
    gan = tiny()
    gan.compile()
    images = tf.random.uniform((8, 16, 16, 3), -1, 1, seed=0)
    before = [w.numpy().copy() for w in gan.generator.trainable_weights]
    logs = gan.train_on_batch(images, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss"}
    assert int(gan.d_optimizer.iterations) == 1
    assert int(gan.g_optimizer.iterations) == 2
    assert int(gan.step_counter) == 1
    after = gan.generator.trainable_weights
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, after))


@pytest.mark.slow
def test_conditional_generator_and_discriminator():
    gan = tiny(num_classes=2)
    assert gan.generator.input_shape == [(None, 8), (None,)]
    gan.compile()
    images = tf.random.uniform((4, 16, 16, 3), -1, 1)
    labels = tf.constant([0, 1, 0, 1])
    gan.train_on_batch(images, labels)
    out = gan.generate(labels=[1, 1, 0], seed=0)
    assert out.shape == (3, 16, 16, 3)
    with pytest.raises(ValueError, match="labels must be in"):
        gan.generate(2, labels=[0, 5])
    with pytest.raises(ValueError, match="unconditional"):
        tiny().generate(2, labels=[0, 1])


def test_instance_noise_changes_the_discriminator_input():
    gan = tiny(variant="v2")
    gan.compile()
    images = tf.zeros((4, 16, 16, 3))
    # Noise std 0.2 on D's inputs: the D loss on constant images is not
    # the noiseless one.
    noisy = gan._discriminate(images, None, stream=10)
    gan.instance_noise_std = 0.0
    clean = gan._discriminate(images, None, stream=10)
    assert not np.allclose(noisy.numpy(), clean.numpy())


@pytest.mark.slow
def test_diff_augment_option_augments_real_and_fake_and_g_learns_through_it():
    gan = tiny(augment_policy="translation, cutout", instance_noise_std=0.0)
    assert gan.augment_policy == "translation,cutout"
    images = tf.random.uniform((4, 16, 16, 3), -1.0, 1.0, seed=1)
    seen = gan._discriminate(images, None, stream=10)
    augmented = gan.augmentation(images, gan.stream_seed(110, per_replica=False))
    assert not np.allclose(augmented.numpy(), images.numpy())
    np.testing.assert_allclose(seen.numpy(), gan.discriminator(augmented, training=True).numpy(),
                               rtol=1e-5, atol=1e-6)
    # Without the option D sees the images themselves.
    plain = tiny(instance_noise_std=0.0)
    plain.discriminator.set_weights(gan.discriminator.get_weights())
    np.testing.assert_allclose(plain._discriminate(images, None, stream=10).numpy(),
                               plain.discriminator(images, training=True).numpy(), rtol=1e-5, atol=1e-6)
    # G's gradients pass through the augmentation.
    z = gan.sample_latent(4, stream=0)
    with tf.GradientTape() as tape:
        score = tf.reduce_sum(gan._discriminate(gan.generator(z, training=True), None, stream=11))
    grads = tape.gradient(score, gan.generator.trainable_variables)
    assert all(g is not None for g in grads) and any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    # It trains, and the option survives a config round trip.
    gan.compile()
    gan.fit(tf.data.Dataset.from_tensors(images).repeat(2), epochs=1, verbose=0)
    assert DCGAN.from_config(gan.get_config()).augment_policy == "translation,cutout"
    with pytest.raises(ValueError, match="augment_policy"):
        tiny(augment_policy="colour")


@pytest.mark.parametrize("bright_side", ["left", "right"])
@pytest.mark.slow
def test_dcgan_learns_spatial_structure(bright_side):
    """A real (small) learning check: G learns which half of the image is bright.

    Trained from the same initialisation on mirrored data, the generators must
    end up mirrored. (Structure, not colour or contrast: with batch norm over
    separate real and fake batches and LeakyReLU, the reference D is nearly
    blind to a global scale or shift of its input batch.)
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    left_bright = np.where(np.arange(16) < 8, 0.8, -0.8).astype(np.float32)
    pattern = left_bright if bright_side == "left" else -left_bright
    data = pattern[None, None, :, None] + 0.1 * rng.standard_normal((512, 16, 16, 3))
    gan = tiny(base_filters=8, latent_dim=16, learning_rate=2e-3)
    gan.compile()
    dataset = tf.data.Dataset.from_tensor_slices(data.astype(np.float32)).batch(32, drop_remainder=True)
    gan.fit(dataset, epochs=5, verbose=0, shuffle=False)
    images = gan.generate(128, seed=0)
    left, right = images[:, :, :8].mean(axis=(1, 2, 3)), images[:, :, 8:].mean(axis=(1, 2, 3))
    share = float(((left > right) if bright_side == "left" else (right > left)).mean())
    assert share > 0.95, share


def test_registry_builds_dcgan_with_overrides():
    gan = gan_zoo.load("dcgan", variant="v3", image_size=50, base_filters=8)
    assert isinstance(gan, DCGAN)
    assert gan.image_shape == (50, 50, 3)
    assert gan.variant == "v3" and gan.upsampling == "resize_conv"
