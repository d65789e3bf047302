"""Adaptive instance normalization (AdaIN)."""

import keras
from keras import ops

_MODES = ("mlp", "affine")


@keras.saving.register_keras_serializable(package="gan_zoo")
class AdaptiveInstanceNormalization(keras.layers.Layer):
    """Instance-normalises `x` and re-styles it with a scale and bias from `w`.

    Called on `[x, w]` with `x` of shape `[B, H, W, C]` and a style vector `w`
    of shape `[B, D]`. Each channel of each sample is normalised with its own
    mean and variance over `H, W`, then `gamma * x_norm + beta` with `gamma`,
    `beta` of shape `[B, C]` computed from `w`:

    - `mode="mlp"` (PathologyGAN): `hidden = ReLU(dense(w))` with
      `hidden_units` units, `gamma = ReLU(dense(hidden))`,
      `beta = dense(hidden)`;
    - `mode="affine"` (StyleGAN): `gamma = 1 + dense(w)`, `beta = dense(w)`.

    Statistics are computed in float32 under mixed precision.

    Args:
        mode: `"mlp"` or `"affine"`, see above.
        hidden_units: width of the hidden layer in `"mlp"` mode; `None` gives
            `(C + D) // 2`, PathologyGAN's choice. Must be `None` in
            `"affine"` mode.
        epsilon: added to the variance before the square root.
        kernel_initializer: initializer of the dense layers.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> x = np.random.rand(2, 8, 8, 16).astype("float32")
    >>> w = np.random.rand(2, 64).astype("float32")
    >>> AdaptiveInstanceNormalization()([x, w]).shape
    TensorShape([2, 8, 8, 16])

    References: Huang & Belongie, "Arbitrary Style Transfer in Real-time with
    Adaptive Instance Normalization", ICCV 2017, arXiv:1703.06868;
    Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative
    Adversarial Networks", CVPR 2019, arXiv:1812.04948; Quiros, Murray-Smith &
    Yuan, "PathologyGAN: Learning deep representations of cancer tissue",
    MIDL 2020, arXiv:1907.02644.
    """

    def __init__(
        self,
        mode="mlp",
        hidden_units=None,
        epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}, got {mode!r}.")
        if mode == "affine" and hidden_units is not None:
            raise ValueError("`hidden_units` only applies to mode='mlp'.")
        self.mode = mode
        self.hidden_units = hidden_units
        self.epsilon = epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _dense(self, units, name, activation=None):
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        channels, style_dim = x_shape[-1], w_shape[-1]
        if channels is None or style_dim is None:
            raise ValueError("AdaptiveInstanceNormalization needs known channels.")
        if self.mode == "mlp":
            hidden = self.hidden_units or (channels + style_dim) // 2
            self.hidden_dense = self._dense(hidden, "hidden", activation="relu")
            self.hidden_dense.build(w_shape)
            style_shape = tuple(w_shape[:-1]) + (hidden,)
            self.gamma_dense = self._dense(channels, "gamma", activation="relu")
        else:
            style_shape = w_shape
            self.gamma_dense = self._dense(channels, "gamma")
        self.beta_dense = self._dense(channels, "beta")
        self.gamma_dense.build(style_shape)
        self.beta_dense.build(style_shape)

    def call(self, inputs):
        x, w = inputs
        if self.mode == "mlp":
            w = self.hidden_dense(w)
        gamma = self.gamma_dense(w)
        if self.mode == "affine":
            gamma = gamma + 1.0
        beta = self.beta_dense(w)
        x32 = ops.cast(x, "float32")
        mean, variance = ops.moments(x32, axes=(1, 2), keepdims=True)
        normalized = ops.cast((x32 - mean) * ops.rsqrt(variance + self.epsilon), x.dtype)
        gamma = ops.cast(gamma[:, None, None, :], x.dtype)
        beta = ops.cast(beta[:, None, None, :], x.dtype)
        return gamma * normalized + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mode": self.mode,
                "hidden_units": self.hidden_units,
                "epsilon": self.epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
