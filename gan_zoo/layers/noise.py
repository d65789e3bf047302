"""Per-layer noise (StyleGAN's noise injection, dropout), seeded from the model.

A noise layer deep inside a functional generator cannot see the model's
random stream, so the model opens a `noise_seed_scope(seed)` around its call
of the generator (`AdversarialModel.noise_scope`), and every
`NoiseInjection` inside draws stateless noise from that seed folded with a
hash of its own name. The seed is a function of (model seed, training step,
replica, stream), so the noise differs per replica and per step and an
interrupted run that is restored draws exactly the noise it would have
drawn. The scope is thread-local: `MirroredStrategy` traces each replica in
its own thread, and each replica opens its own scope.

`ScopedDropout` draws its masks the same way, but for the GLOBAL batch
(a scope opened with a seed shared by the replicas), so N replicas drop
exactly what one device would; Keras' `Dropout` draws from a
`SeedGenerator`, which gives every replica the same mask.
"""

import contextlib
import threading
import zlib

import keras
import tensorflow as tf
from keras import ops

from gan_zoo.layers.diff_augment import global_batch_random

_SCOPE = threading.local()


@contextlib.contextmanager
def noise_seed_scope(seed):
    """Noise layers called inside draw from `seed` (int64 tensor of shape [2]).

    Args:
        seed: a stateless seed, e.g. `model.stream_seed(stream)`.
    """
    previous = getattr(_SCOPE, "seed", None)
    _SCOPE.seed = seed
    try:
        yield
    finally:
        _SCOPE.seed = previous


def scoped_seed(salt):
    """The open scope's seed folded with `salt` (a string), or None outside a scope."""
    seed = getattr(_SCOPE, "seed", None)
    if seed is None:
        return None
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), zlib.crc32(salt.encode()) & 0x7FFFFFFF
    )


@keras.saving.register_keras_serializable(package="gan_zoo")
class NoiseInjection(keras.layers.Layer):
    """Adds standard normal noise scaled by a learned per-channel weight.

    `out = x + weight * noise` with `weight` of shape `[C]` initialised to
    zeros, so a fresh layer is the identity.

    - `per_pixel=True` (StyleGAN): one noise image per sample,
      `noise` of shape `[B, H, W, 1]`, broadcast over channels.
    - `per_pixel=False` (PathologyGAN's code): one scalar per channel per
      sample, `noise` of shape `[B, 1, 1, C]`, broadcast over positions.

    Pass `noise` to `call` to use your own noise; it is then always added,
    in training and inference alike. Otherwise noise is drawn in training
    (and at inference when `noise_at_inference=True`; else the layer adds
    nothing there): inside a `noise_seed_scope` (zoo models open one around
    every generator call) from the scope's seed and this layer's name, so
    it is reproducible and differs per replica; outside a scope from
    `tf.random.normal`, unseeded.

    Args:
        per_pixel: noise layout, see above.
        noise_at_inference: draw noise also when `training` is false (what a
            StyleGAN generator does when sampling with random noise).
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> layer = NoiseInjection(per_pixel=True)
    >>> x = np.zeros((2, 8, 8, 4), "float32")
    >>> layer(x, training=True).shape
    TensorShape([2, 8, 8, 4])
    >>> noise = np.random.randn(2, 8, 8, 1).astype("float32")
    >>> y = layer(x, noise=noise)  # explicit noise, used at inference too

    References: Karras, Laine & Aila, "A Style-Based Generator Architecture
    for Generative Adversarial Networks", CVPR 2019, arXiv:1812.04948;
    Quiros, Murray-Smith & Yuan, "PathologyGAN: Learning deep representations
    of cancer tissue", MIDL 2020, arXiv:1907.02644.
    """

    def __init__(self, per_pixel=True, noise_at_inference=False, **kwargs):
        super().__init__(**kwargs)
        self.per_pixel = per_pixel
        self.noise_at_inference = noise_at_inference

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("NoiseInjection needs a known channel dimension.")
        self.noise_weight = self.add_weight(
            name="noise_weight", shape=(channels,), initializer="zeros"
        )

    def noise_shape(self, inputs):
        """The shape of the noise this layer adds to `inputs`."""
        shape = ops.shape(inputs)
        if self.per_pixel:
            return (shape[0], shape[1], shape[2], 1)
        return (shape[0], 1, 1, shape[3])

    def call(self, inputs, noise=None, training=False):
        if noise is None:
            if not (training or self.noise_at_inference):
                return inputs
            seed = scoped_seed(self.name)
            shape = self.noise_shape(inputs)
            if seed is None:
                noise = tf.random.normal(shape, dtype=inputs.dtype)
            else:
                noise = tf.random.stateless_normal(shape, seed, dtype=inputs.dtype)
        noise = ops.cast(noise, inputs.dtype)
        return inputs + ops.cast(self.noise_weight, inputs.dtype) * noise

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"per_pixel": self.per_pixel, "noise_at_inference": self.noise_at_inference}
        )
        return config


@keras.saving.register_keras_serializable(package="gan_zoo")
class ScopedDropout(keras.layers.Layer):
    """Inverted dropout whose mask comes from the open `noise_seed_scope`.

    In training each unit is zeroed with probability `rate` and the rest
    scaled by 1 / (1 - rate); at inference the layer is the identity.
    Inside a scope the mask is drawn for the global batch from the scope's
    seed folded with this layer's name (`global_batch_random`), so it is
    reproducible, a restored run drops what the uninterrupted one dropped,
    and N replicas drop as one device; outside a scope it is unseeded.

    Args:
        rate: probability of zeroing a unit, in [0, 1).
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> layer = ScopedDropout(0.2)
    >>> with noise_seed_scope(tf.constant([0, 1], tf.int64)):
    ...     y = layer(np.ones((4, 8), "float32"), training=True)

    Reference: Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov,
    "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
    JMLR 15, 2014.
    """

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"ScopedDropout rate must be in [0, 1), got {rate}.")
        self.rate = rate

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        seed = scoped_seed(self.name)
        shape = tf.shape(inputs)
        if seed is None:
            uniform = tf.random.uniform(shape)
        else:
            uniform = global_batch_random(seed, shape)
        keep = ops.cast(uniform >= self.rate, inputs.dtype)
        return inputs * keep / ops.cast(1.0 - self.rate, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate})
        return config
