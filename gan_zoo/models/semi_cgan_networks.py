"""The semi-supervised cGAN's networks and real-image augmentation (Johnson 2020).

The generator and the two-headed (or K+1) discriminator of
`gan_zoo.models.semi_cgan.SemiSupervisedCGAN`, and the augmentations of the
discriminator's real inputs that histopathology classifiers use (quarter
turns, H&E stain jitter).
"""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.layers.batch_normalization import BatchNormalization
from gan_zoo.layers.conditioning import OneHot
from gan_zoo.layers.diff_augment import global_batch_random
from gan_zoo.layers.noise import ScopedDropout
from gan_zoo.layers.spectral_norm import SpectralConv2D, SpectralConv2DTranspose

HEADS = ("two_heads", "k_plus_one")
REAL_AUGMENTATIONS = ("rot90", "stain")


def _leaky(name):
    return keras.layers.LeakyReLU(0.2, name=name)


# The smallest width whose first layer keeps a filter: round(64 * width) >= 1.
MIN_WIDTH = 1 / 128


def filters(layer, width):
    """The paper's 64 * layer * width filters (at least 1; width may be < 1 for tests)."""
    return max(1, round(64 * layer * width))


def generator_sizes(image_size):
    """Feature-map sizes of the generator: 1 -> 3 -> 7 -> ... -> image_size.

    Layers 3-5 double with 'same' padding (2n - 1 + output_padding), so the
    sizes are found backwards by halving with ceil; layers 1-2 are 'valid'
    transposed convolutions 1 -> 3 -> 7, which fits image sizes 49 to 56.
    """
    sizes = [int(image_size)]
    for _ in range(3):
        sizes.insert(0, -(-sizes[0] // 2))
    if sizes[0] != 7:
        raise ValueError(
            f"image_size {image_size} does not fit five 3x3 transposed convolutions "
            "(1 -> 3 -> 7 -> 13 -> 25 -> 50); use an image_size from 49 to 56."
        )
    return [1, 3, *sizes]


def build_generator(image_size, latent_dim, num_classes, width, channels=3, spectral_norm=True):
    """[z, class] -> image in [-1, 1]: five 3x3 transposed convolutions.

    z and the one-hot class form a 1x1 map that is upsampled 1 -> 3 -> 7 ->
    13 -> 25 -> 50 with 64*(5-l)*width filters in layers l = 1..4 (the
    discriminator's widths mirrored) and `channels` in layer 5; batch norm
    and ReLU after each hidden layer, tanh at the end. With `spectral_norm`
    every transposed convolution is spectrally normalised.
    """
    transposed = SpectralConv2DTranspose if spectral_norm else keras.layers.Conv2DTranspose
    sizes = generator_sizes(image_size)
    z = keras.Input((latent_dim,), name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    x = keras.layers.Concatenate(name="z_and_class")([z, OneHot(num_classes, name="one_hot")(labels)])
    x = keras.layers.Reshape((1, 1, latent_dim + num_classes), name="to_map")(x)
    widths = [filters(5 - layer, width) for layer in range(1, 5)] + [channels]
    for layer, n_filters in enumerate(widths, start=1):
        size_in, size_out = sizes[layer - 1], sizes[layer]
        if layer <= 2:  # 1 -> 3 and 3 -> 7: 'valid' transposed convolutions
            conv = transposed(
                n_filters, 3, strides=layer, padding="valid", name=f"deconv{layer}"
            )
        else:  # 'same' gives 2n - 1 + output_padding
            conv = transposed(
                n_filters, 3, strides=2, padding="same",
                output_padding=size_out - 2 * size_in + 1, name=f"deconv{layer}",
            )
        x = conv(x)
        if layer < 5:
            # Synchronized: N replicas normalise like one device.
            x = BatchNormalization(synchronized=True, name=f"deconv{layer}_bn")(x)
            x = keras.layers.ReLU(name=f"deconv{layer}_relu")(x)
    images = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, labels], images, name="generator")


def build_discriminator(image_size, num_classes, width, strides, channels=3, head="two_heads",
                        dropout=0.0):
    """image -> {"real_fake": [B, 1] logits, "class": [B, num_classes] logits, "features"}.

    Five 3x3 strided convolutions with 64*l*width filters (l = 1..5), leaky
    ReLU 0.2, spectral norm on all but the first and last, no pooling and no
    class input; then the heads on the flattened features:
    - "two_heads" (the paper): a dense real/fake logit and a dense class head;
    - "k_plus_one" (Salimans et al. 2016): one dense head of K class logits
      l_k with the fake class's logit fixed at 0, so P(real) = Z / (Z + 1),
      Z = sum_k exp(l_k), and the real/fake logit is logsumexp(l).
    "features" (the flattened last convolution) serves feature matching.
    With `dropout` > 0 a `ScopedDropout` of that rate follows each hidden
    convolution (1-4), as in Salimans et al.'s semi-supervised D; the model
    opens the seed scope around each call.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
    images = keras.Input((image_size, image_size, channels), name="images")
    x = images
    for layer, stride in enumerate(strides, start=1):
        layer_class = keras.layers.Conv2D if layer in (1, len(strides)) else SpectralConv2D
        conv = layer_class(
            filters(layer, width), 3, strides=stride, padding="same", name=f"conv{layer}"
        )
        x = _leaky(f"conv{layer}_lrelu")(conv(x))
        if dropout and layer < len(strides):
            x = ScopedDropout(dropout, name=f"conv{layer}_dropout")(x)
    features = keras.layers.Flatten(name="features")(x)
    if head == "two_heads":  # (real_fake first: saved two-head weight files hold this order)
        real_fake = keras.layers.Dense(1, dtype="float32", name="real_fake")(features)
        classes = keras.layers.Dense(num_classes, dtype="float32", name="class")(features)
    else:
        classes = keras.layers.Dense(num_classes, dtype="float32", name="class")(features)
        real_fake = LogSumExp(name="real_fake")(classes)
    outputs = {"real_fake": real_fake, "class": classes, "features": features}
    return keras.Model(images, outputs, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_zoo")
class LogSumExp(keras.layers.Layer):
    """[B, K] logits -> [B, 1] log sum_k exp(logit_k) (the K+1 head's real/fake logit)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, logits):
        return keras.ops.logsumexp(keras.ops.cast(logits, "float32"), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)


# ------------------------------------------------- real-image augmentation
# Stain matrix of Ruifrok & Johnston (2001) as scikit-image uses it:
# optical densities of haematoxylin, eosin and DAB in RGB.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float32)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED).astype(np.float32)
_MIN_INTENSITY = 1e-6  # scikit-image's floor before the logarithm


def rotate90(images, turns):
    """Each image turned by its own number of quarter turns (int [B] in 0..3)."""
    rotations = tf.stack([tf.image.rot90(images, k) for k in range(4)], axis=1)  # [B, 4, H, W, C]
    return tf.gather(rotations, tf.cast(turns, tf.int32)[:, None], batch_dims=1)[:, 0]


def hed_jitter(images, scale, shift):
    """H&E stain jitter (Tellez et al. 2018) of RGB images in [0, 1].

    Each image's stain concentrations (colour deconvolution into
    haematoxylin, eosin, DAB) are scaled by `scale` and shifted by `shift`
    ([B, 3] each), then recombined to RGB (scikit-image's rgb2hed / hed2rgb).
    """
    rgb = tf.maximum(tf.cast(images, tf.float32), _MIN_INTENSITY)
    log_floor = float(np.log(_MIN_INTENSITY))
    stains = tf.maximum(tf.einsum("bhwc,cd->bhwd", tf.math.log(rgb) / log_floor, HED_FROM_RGB), 0.0)
    stains = stains * scale[:, None, None, :] + shift[:, None, None, :]
    log_rgb = tf.einsum("bhwd,dc->bhwc", stains * log_floor, RGB_FROM_HED)
    return tf.clip_by_value(tf.exp(log_rgb), 0.0, 1.0)


def augment_real(images, policy, seed, data_range=(-1.0, 1.0), stain_sigma=0.05):
    """What D sees of real images under `policy` ("rot90", "stain", both).

    Draws are made for the GLOBAL batch from a seed shared by every replica
    (`global_batch_random`), so N replicas augment as one device would.
    "stain": per image and stain, scale ~ U(1 - sigma, 1 + sigma) and shift
    ~ U(-sigma, sigma) (sigma 0.05: Tellez et al.'s "light" HED jitter).
    """
    x = tf.cast(images, tf.float32)
    batch = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    if "rot90" in policy:
        turns = tf.minimum(tf.floor(4.0 * global_batch_random(seeds[0], [batch])), 3.0)
        x = rotate90(x, turns)
    if "stain" in policy:
        low, high = data_range
        unit = (x - low) / (high - low)
        scale = 1.0 + stain_sigma * (2.0 * global_batch_random(seeds[1], [batch, 3]) - 1.0)
        shift = stain_sigma * (2.0 * global_batch_random(seeds[2], [batch, 3]) - 1.0)
        x = hed_jitter(unit, scale, shift) * (high - low) + low
    return tf.cast(x, images.dtype)
