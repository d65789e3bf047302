"""CycleGAN's networks and losses (Zhu et al. 2017).

The ResNet generator (reflection padding, instance norm, 6 or 9 residual
blocks), the PatchGAN discriminator scaled to the image (70x70 at 256 px),
and the cycle-consistency and identity losses. The model that trains them
is `gan_zoo.models.cyclegan.CycleGAN`.
"""

import math

import keras
import tensorflow as tf

# Receptive field (pixels) of a PatchGAN with n stride-2 layers: 4x4 kernels,
# n stride-2 convolutions, then two stride-1 ones (n = 3: the 70x70 PatchGAN).
MAX_DOWNSAMPLINGS = 5


def patchgan_receptive_field(downsamplings):
    """Side of the input patch one output of the PatchGAN sees (3 -> 70)."""
    field = 1 + 3 + 3  # the two stride-1 4x4 convolutions
    for _ in range(int(downsamplings)):
        field = (field - 1) * 2 + 4
    return field


def default_downsamplings(image_size):
    """The most stride-2 layers (at most 3, the reference's) whose field fits the image.

    256 px -> 3 (70x70, the reference); 50 px -> 2 (34x34); 32 px -> 1 (16x16).
    """
    downsamplings = 3
    while downsamplings > 1 and patchgan_receptive_field(downsamplings) > image_size:
        downsamplings -= 1
    return downsamplings


def default_residual_blocks(image_size):
    """The reference's choice: 9 blocks above 128 px, 6 at 128 px and below."""
    return 9 if image_size > 128 else 6


@keras.saving.register_keras_serializable(package="gan_zoo")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring the border (without repeating it).

    PyTorch's `nn.ReflectionPad2d`: the CycleGAN generator pads this way
    before its 7x7 and residual 3x3 convolutions, so no zero border leaks
    into translated images.

    Args:
        padding: pixels added on every side (smaller than the input's side).
        **kwargs: base layer arguments.
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        if int(padding) < 0:
            raise ValueError(f"padding must be >= 0, got {padding}.")
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda n: None if n is None else n + 2 * self.padding  # noqa: E731
        return (batch, grow(height), grow(width), channels)

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding})
        return config


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _instance_norm(name):
    # The reference's InstanceNorm2d(affine=False): per-sample, per-channel
    # statistics over H and W, no learned scale or shift.
    return keras.layers.GroupNormalization(
        groups=-1, epsilon=1e-5, center=False, scale=False, name=name
    )


def _conv(x, filters, kernel, stride, name, reflect=0, zero_pad=0, dtype=None):
    if reflect:
        x = ReflectionPadding2D(reflect, name=f"{name}_reflect")(x)
    if zero_pad:
        x = keras.layers.ZeroPadding2D(zero_pad, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="valid", kernel_initializer=_init(),
        dtype=dtype, name=name,
    )(x)


def _halvings(image_size, times=2):
    sizes = [int(image_size)]
    for _ in range(times):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def build_generator(image_size, channels=3, filters=64, residual_blocks=9, name="generator"):
    """The ResNet generator: images [B, S, S, C] in [-1, 1] -> translated images.

    c7s1-f, d2f, d4f, `residual_blocks` x R4f, u2f, uf, c7s1-C, tanh (Johnson
    et al. 2016's notation, as in the CycleGAN paper's appendix), with
    reflection padding and instance normalisation. Down-sampling: zero pad 1
    then a 3x3 stride-2 convolution (PyTorch's padding=1); up-sampling: a 3x3
    stride-2 transposed convolution cropped as PyTorch's padding=1,
    output_padding=1 does, so odd sizes (50 -> 25 -> 13 -> 25 -> 50) come back.
    """
    sizes = _halvings(image_size)
    images = keras.Input((image_size, image_size, channels), name="images")
    x = _conv(images, filters, 7, 1, "c7s1", reflect=3)
    x = keras.layers.ReLU(name="c7s1_relu")(_instance_norm("c7s1_norm")(x))
    for i, width in enumerate((filters * 2, filters * 4), start=1):
        x = _conv(x, width, 3, 2, f"down{i}", zero_pad=1)
        x = keras.layers.ReLU(name=f"down{i}_relu")(_instance_norm(f"down{i}_norm")(x))
    for block in range(1, residual_blocks + 1):
        prefix = f"res{block}"
        y = _conv(x, filters * 4, 3, 1, f"{prefix}_conv1", reflect=1)
        y = keras.layers.ReLU(name=f"{prefix}_relu")(_instance_norm(f"{prefix}_norm1")(y))
        y = _conv(y, filters * 4, 3, 1, f"{prefix}_conv2", reflect=1)
        y = _instance_norm(f"{prefix}_norm2")(y)
        x = keras.layers.Add(name=f"{prefix}_add")([x, y])  # no activation after the sum
    for i, width in enumerate((filters * 2, filters), start=1):
        size_in, size_out = sizes[-i], sizes[-i - 1]
        x = keras.layers.Conv2DTranspose(
            width, 3, strides=2, padding="valid", kernel_initializer=_init(), name=f"up{i}"
        )(x)
        # A 'valid' transposed conv gives 2n + 1 pixels; PyTorch's padding=1
        # drops the first, output_padding=1 keeps the last for even sizes.
        x = keras.layers.Cropping2D(((1, 2 * size_in - size_out), (1, 2 * size_in - size_out)),
                                    name=f"up{i}_crop")(x)
        x = keras.layers.ReLU(name=f"up{i}_relu")(_instance_norm(f"up{i}_norm")(x))
    x = _conv(x, channels, 7, 1, "output", reflect=3)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(images, outputs, name=name)


def build_discriminator(image_size, channels=3, filters=64, downsamplings=3, name="discriminator"):
    """The PatchGAN: images -> a map of real/fake scores, one per overlapping patch.

    C64 (no norm) and further stride-2 4x4 convolutions doubling the width
    (instance norm, LeakyReLU 0.2), one stride-1 4x4 convolution, then a
    stride-1 4x4 convolution to one channel; every convolution zero-pads 1
    (PyTorch's padw=1). With 3 stride-2 layers each output sees 70x70 pixels.
    """
    images = keras.Input((image_size, image_size, channels), name="images")
    x = images
    for i in range(downsamplings + 1):
        width = filters * min(2**i, 8)
        stride = 2 if i < downsamplings else 1
        x = _conv(x, width, 4, stride, f"conv{i + 1}", zero_pad=1)
        if i > 0:
            x = _instance_norm(f"conv{i + 1}_norm")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i + 1}_lrelu")(x)
    scores = _conv(x, 1, 4, 1, "scores", zero_pad=1, dtype="float32")
    return keras.Model(images, scores, name=name)


def cycle_loss(real, reconstructed, weight):
    """`weight * mean |reconstructed - real|` per example (the cycle-consistency loss)."""
    difference = tf.abs(tf.cast(reconstructed, tf.float32) - tf.cast(real, tf.float32))
    return float(weight) * tf.reduce_mean(difference, axis=[1, 2, 3])


def identity_loss(real, mapped, cycle_weight, identity_weight):
    """`identity_weight * cycle_weight * mean |G(y) - y|` per example.

    The reference scales the identity loss of the generator into domain Y by
    that domain's cycle weight times `lambda_identity` (0.5).
    """
    return float(identity_weight) * cycle_loss(real, mapped, cycle_weight)
