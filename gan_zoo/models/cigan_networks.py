"""ciGAN's networks and losses (Wu, Wu, Cox & Lotter 2018).

The cascaded refinement generator with its infill composite, the
class-conditional discriminator, and the losses' building blocks (the
corrupted context, the boundary weights, the boundary and feature L1
terms). The model that trains them is `gan_zoo.models.cigan.CIGAN`.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.layers.conditioning import LabelMaps


def generator_scales(patch_size):
    """Sides of the cascade, 4x4 up to the patch: 256 -> [4, 8, ..., 256]."""
    return [4 * 2**k for k in range(int(math.log2(patch_size // 4)) + 1)]


# ---------------------------------------------------------------- networks
@keras.saving.register_keras_serializable(package="gan_zoo")
class InfillComposite(keras.layers.Layer):
    """(generated, context, mask) -> generated inside the mask, context outside.

    A selection, not a blend, so pixels outside a binary mask are exactly
    the context's (float32 throughout, also under mixed precision).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        generated, context, mask = (keras.ops.cast(t, "float32") for t in inputs)
        return keras.ops.where(mask > 0.5, generated, context)

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]


def build_generator(patch_size, widths, num_classes=2):
    """Cascaded refinement generator (Chen & Koltun 2017) as ciGAN uses it.

    The input stack (context: the image with the lesion replaced by uniform
    noise; the mask; one-hot class maps) is average-pooled to every scale
    from 4x4 up. Block i concatenates the nearest-neighbour 2x upsampling of
    block i-1's output with the stack at its scale and applies two 3x3
    convolutions with ReLU. A 1x1 convolution with a sigmoid maps the last
    block to the image in [0, 1] (the paper does not give the output layer;
    the sigmoid matches the [0, 1] range of the inputs), and the result is
    composited so that only the masked pixels come from the network.
    """
    scales = generator_scales(patch_size)
    context = keras.Input((patch_size, patch_size, 1), name="context")
    mask = keras.Input((patch_size, patch_size, 1), name="mask")
    labels = keras.Input((), dtype="int32", name="labels")
    maps = LabelMaps(patch_size, patch_size, num_classes, name="class_maps")(labels)
    stack = keras.layers.Concatenate(name="input_stack")([context, mask, maps])
    x = None
    for i, size in enumerate(scales, start=1):
        factor = patch_size // size
        level = stack
        if factor > 1:
            level = keras.layers.AveragePooling2D(factor, name=f"stack_{size}")(stack)
        if x is None:
            x = level
        else:
            x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"block{i}_up")(x)
            x = keras.layers.Concatenate(name=f"block{i}_concat")([x, level])
        for conv in (1, 2):
            x = keras.layers.Conv2D(widths[i - 1], 3, padding="same", activation="relu",
                                    name=f"block{i}_conv{conv}")(x)
    generated = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="to_image")(x)
    images = InfillComposite(name="composite")([generated, context, mask])
    return keras.Model([context, mask, labels], images, name="generator")


def build_discriminator(patch_size, widths, num_classes=2, negative_slope=0.2):
    """Class-conditional discriminator: conv 3x3 + LeakyReLU + 2x2 max pool blocks.

    The class enters as one-hot class maps concatenated to the image (the
    paper's D(c, R) does not say how; this is the conditional DCGAN's way).
    The last block is flattened into one dense unit: a logit, whose sigmoid
    is the paper's output (applied inside the loss, for numerical safety).
    """
    images = keras.Input((patch_size, patch_size, 1), name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    maps = LabelMaps(patch_size, patch_size, num_classes, name="class_maps")(labels)
    x = keras.layers.Concatenate(name="image_and_class")([images, maps])
    for i, filters in enumerate(widths, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.LeakyReLU(negative_slope, name=f"conv{i}_lrelu")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logits = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model([images, labels], logits, name="discriminator")


# ------------------------------------------------------------------ losses
def binarize(masks):
    """Masks as float32 {0, 1}: a pixel is lesion when above 0.5."""
    return tf.cast(tf.convert_to_tensor(masks) > 0.5, tf.float32)


def corrupt(images, masks, noise):
    """The generator's context: `images` with the masked pixels replaced by `noise`."""
    return tf.where(masks > 0.5, tf.cast(noise, tf.float32), tf.cast(images, tf.float32))


def gaussian_kernel(sigma, truncate=4.0):
    """Normalised 1-D Gaussian taps, radius `int(truncate * sigma + 0.5)` (scipy's)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def boundary_weights(masks, sigma):
    """The boundary loss weights w: the mask boundary blurred with a Gaussian.

    The boundary is the morphological gradient of the binary mask with a 3x3
    square (dilation minus erosion: the one-pixel rings just outside and
    just inside the edge); the patch border is not a lesion edge, so
    erosion treats outside pixels as lesion. The blur is separable, with
    zero padding. The paper states sigma 10 for 256-px patches.

    Args:
        masks: [B, H, W, 1] binary masks.
        sigma: standard deviation of the Gaussian, in pixels.

    Returns:
        float32 [B, H, W, 1] weights.
    """
    masks = binarize(masks)
    dilated = tf.nn.max_pool2d(masks, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-masks, 3, 1, "SAME")
    boundary = dilated - eroded
    taps = tf.constant(gaussian_kernel(sigma))
    blurred = tf.nn.conv2d(boundary, tf.reshape(taps, [-1, 1, 1, 1]), 1, "SAME")
    return tf.nn.conv2d(blurred, tf.reshape(taps, [1, -1, 1, 1]), 1, "SAME")


def boundary_l1(real, fake, weights):
    """Per-example mean of |w * (R - S)| over the pixels, float32 [B]."""
    difference = weights * (tf.cast(real, tf.float32) - tf.cast(fake, tf.float32))
    return tf.reduce_mean(tf.abs(difference), axis=[1, 2, 3])


def feature_l1(real_maps, fake_maps):
    """Per-example sum over layers of the mean |phi_l(R) - phi_l(S)|, float32 [B]."""
    total = 0.0
    for real, fake in zip(real_maps, fake_maps, strict=True):
        difference = tf.cast(fake, tf.float32) - tf.stop_gradient(tf.cast(real, tf.float32))
        total += tf.reduce_mean(tf.abs(difference), axis=[1, 2, 3])
    return total
