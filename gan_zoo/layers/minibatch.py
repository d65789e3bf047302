"""Minibatch standard deviation feature (ProGAN)."""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="gan_zoo")
class MinibatchStandardDeviation(keras.layers.Layer):
    """Appends one feature map holding the mean standard deviation of a group.

    The batch is split into groups of `G` samples: sample `b` belongs to
    group `b % (B / G)`, as in ProGAN. For each group the standard deviation
    of every feature over the group's samples is averaged over `H, W, C` into
    one number, which is broadcast to an `[H, W, 1]` map and concatenated to
    each sample of the group: the output has `C + 1` channels.

    `G` is `group_size` clamped to the batch; when the batch is not a
    multiple of it (e.g. a short last batch split over replicas), `G` is the
    largest divisor of the batch not above `group_size`, instead of failing.
    Statistics are computed in float32 under mixed precision.

    Args:
        group_size: samples per group (4 in ProGAN).
        epsilon: added to the variance before the square root.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> layer = MinibatchStandardDeviation(group_size=4)
    >>> layer(np.random.rand(8, 4, 4, 16).astype("float32")).shape
    TensorShape([8, 4, 4, 17])

    Reference: Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs
    for Improved Quality, Stability, and Variation", ICLR 2018,
    arXiv:1710.10196.
    """

    def __init__(self, group_size=4, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        if int(group_size) < 1:
            raise ValueError(f"`group_size` must be at least 1, got {group_size}.")
        self.group_size = group_size
        self.epsilon = epsilon

    def _group_size(self, batch):
        if isinstance(batch, int):  # static batch: a Python constant for XLA
            return max(g for g in range(1, min(self.group_size, batch) + 1) if batch % g == 0)
        candidates = tf.range(1, self.group_size + 1)
        divides = tf.logical_and(candidates <= batch, tf.math.floormod(batch, candidates) == 0)
        return tf.reduce_max(tf.where(divides, candidates, 1))

    def call(self, inputs):
        shape = tf.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        group = self._group_size(inputs.shape[0] if inputs.shape[0] is not None else batch)
        x = tf.cast(inputs, tf.float32)
        grouped = tf.reshape(x, tf.concat([[group, -1], shape[1:]], axis=0))
        variance = tf.reduce_mean(
            tf.square(grouped - tf.reduce_mean(grouped, axis=0, keepdims=True)), axis=0
        )
        std = tf.reduce_mean(tf.sqrt(variance + self.epsilon), axis=[1, 2, 3])
        feature = tf.tile(std, [group])[:, None, None, None]
        feature = tf.broadcast_to(feature, tf.stack([batch, height, width, 1]))
        return ops.concatenate([inputs, tf.cast(feature, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return tuple(input_shape[:-1]) + (None if channels is None else channels + 1,)

    def get_config(self):
        config = super().get_config()
        config.update({"group_size": self.group_size, "epsilon": self.epsilon})
        return config
