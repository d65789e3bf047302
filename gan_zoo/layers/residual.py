"""Pre-activation residual blocks of SNGAN / BigGAN generators and critics."""

import keras

from gan_zoo.layers.spectral_norm import conv2d


class _ResidualBase(keras.layers.Layer):
    """Shared construction of the residual blocks (not registered, not public)."""

    def __init__(
        self,
        filters,
        spectral_normalization=False,
        batch_normalization=False,
        activation="relu",
        power_iterations=1,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.spectral_normalization = spectral_normalization
        self.batch_normalization = batch_normalization
        self.activation = keras.activations.get(activation)
        self.power_iterations = power_iterations
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _conv(self, filters, kernel_size, name):
        return conv2d(
            filters, kernel_size, spectral_normalization=self.spectral_normalization,
            power_iterations=self.power_iterations, kernel_initializer=self.kernel_initializer,
            padding="same", dtype=self.dtype_policy, name=name,
        )

    def _norm(self, name):
        if not self.batch_normalization:
            return None
        return keras.layers.BatchNormalization(dtype=self.dtype_policy, name=name)

    def _build_layers(self, input_shape, conv1_shape, conv2_shape, shortcut_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError(f"{type(self).__name__} needs a known channel dimension.")
        self.norm1 = self._norm("norm1")
        self.norm2 = self._norm("norm2")
        self.conv1 = self._conv(self.filters, 3, "conv1")
        self.conv2 = self._conv(self.filters, 3, "conv2")
        self.shortcut_conv = (
            self._conv(self.filters, 1, "shortcut") if in_channels != self.filters else None
        )
        if self.norm1 is not None:
            self.norm1.build(input_shape)
            self.norm2.build(tuple(conv1_shape[:-1]) + (self.filters,))
        self.conv1.build(conv1_shape)
        self.conv2.build(conv2_shape)
        if self.shortcut_conv is not None:
            self.shortcut_conv.build(shortcut_shape)

    def _normalize_activate(self, norm, x, training):
        if norm is not None:
            x = norm(x, training=training)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "spectral_normalization": self.spectral_normalization,
                "batch_normalization": self.batch_normalization,
                "activation": keras.activations.serialize(self.activation),
                "power_iterations": self.power_iterations,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="gan_zoo")
class ResidualBlock(_ResidualBase):
    """Same-resolution pre-activation residual block.

    `residual = conv3x3(act(norm(conv3x3(act(norm(x))))))`, added to the
    shortcut `x` (through a learned 1x1 convolution when the number of
    channels changes).

    Args:
        filters: output channels.
        spectral_normalization: spectrally normalise every convolution (use
            in critics).
        batch_normalization: batch-normalise before each activation (use in
            generators).
        activation: activation before each 3x3 convolution.
        power_iterations: power-iteration steps of the spectral normalization.
        kernel_initializer: initializer of the convolutions.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> block = ResidualBlock(32, batch_normalization=True)
    >>> block(np.zeros((2, 8, 8, 16), "float32")).shape
    TensorShape([2, 8, 8, 32])

    Reference: He, Zhang, Ren & Sun, "Identity Mappings in Deep Residual
    Networks", ECCV 2016, arXiv:1603.05027; Miyato et al., "Spectral
    Normalization for Generative Adversarial Networks", ICLR 2018,
    arXiv:1802.05957.
    """

    def build(self, input_shape):
        out_shape = tuple(input_shape[:-1]) + (self.filters,)
        self._build_layers(input_shape, input_shape, out_shape, input_shape)

    def call(self, inputs, training=False):
        x = self._normalize_activate(self.norm1, inputs, training)
        x = self.conv1(x, training=training)
        x = self._normalize_activate(self.norm2, x, training)
        x = self.conv2(x, training=training)
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = self.shortcut_conv(inputs, training=training)
        return x + shortcut


@keras.saving.register_keras_serializable(package="gan_zoo")
class ResidualBlockUp(_ResidualBase):
    """Generator residual block that doubles the resolution (SNGAN / BigGAN).

    `residual = conv3x3(act(BN(conv3x3(up(act(BN(x)))))))` and
    `shortcut = up(x)`, through a learned 1x1 convolution when the number of
    channels changes; `up` is 2x nearest-neighbour upsampling.

    Args:
        filters: output channels.
        spectral_normalization: spectrally normalise every convolution
            (BigGAN does so in the generator too).
        batch_normalization: batch-normalise before each activation.
        activation: activation before each 3x3 convolution.
        power_iterations: power-iteration steps of the spectral normalization.
        kernel_initializer: initializer of the convolutions.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> block = ResidualBlockUp(32)
    >>> block(np.zeros((2, 4, 4, 64), "float32")).shape
    TensorShape([2, 8, 8, 32])

    References: Miyato et al., "Spectral Normalization for Generative
    Adversarial Networks", ICLR 2018, arXiv:1802.05957; Brock, Donahue &
    Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis", ICLR 2019, arXiv:1809.11096.
    """

    def __init__(self, filters, batch_normalization=True, **kwargs):
        super().__init__(filters, batch_normalization=batch_normalization, **kwargs)

    def build(self, input_shape):
        self.upsample = keras.layers.UpSampling2D(
            2, interpolation="nearest", dtype=self.dtype_policy, name="upsample"
        )
        up_shape = (input_shape[0], _times(input_shape[1], 2), _times(input_shape[2], 2))
        self._build_layers(
            input_shape,
            up_shape + (input_shape[-1],),
            up_shape + (self.filters,),
            up_shape + (input_shape[-1],),
        )

    def call(self, inputs, training=False):
        x = self._normalize_activate(self.norm1, inputs, training)
        x = self.conv1(self.upsample(x), training=training)
        x = self._normalize_activate(self.norm2, x, training)
        x = self.conv2(x, training=training)
        shortcut = self.upsample(inputs)
        if self.shortcut_conv is not None:
            shortcut = self.shortcut_conv(shortcut, training=training)
        return x + shortcut

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            _times(input_shape[1], 2),
            _times(input_shape[2], 2),
            self.filters,
        )


@keras.saving.register_keras_serializable(package="gan_zoo")
class ResidualBlockDown(_ResidualBase):
    """Critic residual block that halves the resolution (SNGAN / BigGAN).

    `residual = avgpool(conv3x3(act(conv3x3(act(x)))))` and
    `shortcut = avgpool(x)`, through a learned 1x1 convolution (applied
    before pooling) when the number of channels changes. Set
    `preactivation=False` for the first block on raw images (SNGAN's
    "optimized" block), so the images are not passed through the activation.

    Args:
        filters: output channels.
        spectral_normalization: spectrally normalise every convolution.
        batch_normalization: batch-normalise before each activation (off in
            critics by default).
        preactivation: apply the activation to the block's input.
        activation: activation before each 3x3 convolution.
        power_iterations: power-iteration steps of the spectral normalization.
        kernel_initializer: initializer of the convolutions.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> block = ResidualBlockDown(64, preactivation=False)
    >>> block(np.zeros((2, 8, 8, 3), "float32")).shape
    TensorShape([2, 4, 4, 64])

    References: Miyato et al., "Spectral Normalization for Generative
    Adversarial Networks", ICLR 2018, arXiv:1802.05957; Brock, Donahue &
    Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis", ICLR 2019, arXiv:1809.11096.
    """

    def __init__(
        self,
        filters,
        spectral_normalization=True,
        batch_normalization=False,
        preactivation=True,
        **kwargs,
    ):
        super().__init__(
            filters,
            spectral_normalization=spectral_normalization,
            batch_normalization=batch_normalization,
            **kwargs,
        )
        self.preactivation = preactivation

    def build(self, input_shape):
        self.pool = keras.layers.AveragePooling2D(2, dtype=self.dtype_policy, name="pool")
        out_shape = tuple(input_shape[:-1]) + (self.filters,)
        self._build_layers(input_shape, input_shape, out_shape, input_shape)

    def call(self, inputs, training=False):
        x = inputs
        if self.norm1 is not None:
            x = self.norm1(x, training=training)
        if self.preactivation:
            x = self.activation(x)
        x = self.conv1(x, training=training)
        x = self._normalize_activate(self.norm2, x, training)
        x = self.pool(self.conv2(x, training=training))
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = self.shortcut_conv(shortcut, training=training)
        return x + self.pool(shortcut)

    def compute_output_shape(self, input_shape):
        return (
            input_shape[0],
            _half(input_shape[1]),
            _half(input_shape[2]),
            self.filters,
        )

    def get_config(self):
        config = super().get_config()
        config["preactivation"] = self.preactivation
        return config


def _times(size, factor):
    return None if size is None else size * factor


def _half(size):
    return None if size is None else size // 2
