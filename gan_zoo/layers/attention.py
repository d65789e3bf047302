"""Self-attention over spatial positions (SAGAN)."""

import keras
from keras import ops

from gan_zoo.layers.spectral_norm import conv2d


@keras.saving.register_keras_serializable(package="gan_zoo")
class SelfAttention(keras.layers.Layer):
    """SAGAN self-attention block: `out = gamma * attention(x) + x`.

    With `N = H * W` positions, three 1x1 convolutions give keys
    `f(x)` and queries `g(x)` with `max(1, C // reduction)` channels and values
    `h(x)` with `C` channels; `attention = softmax(g f^T)` is `[B, N, N]`,
    normalised over the key positions, and the block returns
    `gamma * reshape(attention @ h) + x`. `gamma` is a learned scalar that
    starts at 0, so a fresh block is the identity. The softmax is computed in
    float32 under mixed precision.

    Args:
        reduction: channel reduction of the key and query projections (8 in
            the paper).
        spectral_normalization: whether the 1x1 convolutions are spectrally
            normalised (SAGAN normalises both networks).
        power_iterations: power-iteration steps per training call of the
            spectrally normalised convolutions.
        kernel_initializer: initializer of the 1x1 convolutions.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> x = np.random.rand(2, 8, 8, 32).astype("float32")
    >>> y = SelfAttention()(x)
    >>> bool(np.allclose(y, x))  # gamma starts at 0
    True

    Reference: Zhang, Goodfellow, Metaxas & Odena, "Self-Attention Generative
    Adversarial Networks", ICML 2019, arXiv:1805.08318.
    """

    def __init__(
        self,
        reduction=8,
        spectral_normalization=True,
        power_iterations=1,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ValueError(f"`reduction` must be at least 1, got {reduction}.")
        self.reduction = reduction
        self.spectral_normalization = spectral_normalization
        self.power_iterations = power_iterations
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _projection(self, filters, name):
        return conv2d(
            filters, 1, spectral_normalization=self.spectral_normalization,
            power_iterations=self.power_iterations, kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy, name=name,
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("SelfAttention needs a known channel dimension.")
        key_channels = max(1, channels // self.reduction)
        self.key_conv = self._projection(key_channels, "key")
        self.query_conv = self._projection(key_channels, "query")
        self.value_conv = self._projection(channels, "value")
        for conv in (self.key_conv, self.query_conv, self.value_conv):
            conv.build(input_shape)
        self.gamma = self.add_weight(
            name="gamma", shape=(), initializer="zeros", trainable=True
        )

    def call(self, inputs, training=False):
        shape = ops.shape(inputs)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        positions = height * width
        keys = ops.reshape(self.key_conv(inputs, training=training), (batch, positions, -1))
        queries = ops.reshape(
            self.query_conv(inputs, training=training), (batch, positions, -1)
        )
        values = ops.reshape(
            self.value_conv(inputs, training=training), (batch, positions, channels)
        )
        logits = ops.matmul(queries, ops.transpose(keys, (0, 2, 1)))
        attention = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        attended = ops.matmul(ops.cast(attention, values.dtype), values)
        attended = ops.reshape(attended, shape)
        return ops.cast(self.gamma, attended.dtype) * attended + inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reduction": self.reduction,
                "spectral_normalization": self.spectral_normalization,
                "power_iterations": self.power_iterations,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
