"""Spectrally normalised convolution and dense layers (Miyato et al., 2018).

Why not `keras.layers.SpectralNormalization`: Keras 3.15's wrapper does run
under `tf.distribute.MirroredStrategy` and inside a `tf.function` train step
(its power-iteration vector is updated on every replica when `training=True`),
but it normalises by *overwriting the trainable kernel* with `W / sigma` in
the forward pass. That has two consequences we cannot accept here:

1. Under `mixed_bfloat16` the wrapper reads the kernel through the layer's
   autocast scope, so `W / sigma` is computed in bfloat16 and written back
   into the float32 master kernel: every training call rounds the master
   weights to bfloat16 precision (checked: after one training call every
   kernel entry is exactly representable in bfloat16), so small optimizer
   updates are lost.
2. The gradient never flows through `sigma` (the paper differentiates through
   `W / sigma(W)` with the singular vectors held constant), and at inference
   the layer uses whatever the optimizer wrote after the last normalisation,
   which is no longer normalised.

These layers instead keep the trainable kernel `W` untouched in float32,
compute `sigma` with one power iteration per training call in float32, and
use `W / sigma` (cast to the compute dtype) in the forward pass, so the
gradient includes the `sigma` term as in the paper.
"""

import keras
from keras import ops


def _l2_normalize(x, epsilon):
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x)), epsilon))


class _SpectralNormMixin:
    """Power iteration shared by the spectrally normalised layers.

    The kernel is viewed as a matrix `[-1, kernel.shape[-1]]`. The stored
    right singular vector estimate `u` has length `kernel.shape[-1]`.
    """

    def _init_spectral(self, power_iterations, epsilon):
        """Checks and stores the arguments; call after the base `__init__`."""
        if getattr(self, "data_format", "channels_last") != "channels_last":
            raise ValueError(f"{type(self).__name__} supports channels_last only.")
        if int(power_iterations) < 1:
            raise ValueError(f"`power_iterations` must be at least 1, got {power_iterations}.")
        self.power_iterations = power_iterations
        self.epsilon = epsilon
        # The layer casts its own inputs and kernel so that the power iteration
        # reads the float32 kernel rather than an autocast bfloat16 copy.
        self.autocast = False

    def build(self, input_shape):
        super().build(input_shape)
        # Every replica computes the same `u` from the same mirrored kernel;
        # "mean" aggregation keeps the copies bit-identical regardless.
        self.spectral_u = self.add_weight(
            name="spectral_u",
            shape=(self.kernel.shape[-1],),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
            dtype="float32",
            aggregation="mean",
        )

    def _spectral_sigma(self, matrix, training):
        u = _l2_normalize(ops.convert_to_tensor(self.spectral_u), self.epsilon)
        if training:
            for _ in range(self.power_iterations):
                v = _l2_normalize(ops.matmul(matrix, u), self.epsilon)
                u = _l2_normalize(ops.matmul(ops.transpose(matrix), v), self.epsilon)
            u = ops.stop_gradient(u)
            self.spectral_u.assign(u)
        # sigma = v^T W u with v = W u / ||W u||; u is a constant, so the
        # gradient w.r.t. W is v u^T, as in the paper.
        return ops.sqrt(ops.maximum(ops.sum(ops.square(ops.matmul(matrix, u))), self.epsilon))

    def normalized_kernel(self, training=False):
        """Returns the float32 kernel `W / sigma` the layer computes with.

        Args:
            training: if True, runs the power iteration and updates the stored
                singular vector first (what a training call does).
        """
        kernel = ops.cast(ops.convert_to_tensor(self.kernel), "float32")
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
        return kernel / self._spectral_sigma(matrix, training)

    def get_config(self):
        config = super().get_config()
        config.update({"power_iterations": self.power_iterations, "epsilon": self.epsilon})
        return config

    # Conv and Dense save only kernel and bias (their quantization/LoRA-aware
    # format); the generic Layer format also keeps `spectral_u`.
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def _add_bias_and_activate(self, outputs):
        if self.use_bias:
            outputs = ops.add(outputs, ops.cast(self.bias, self.compute_dtype))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="gan_zoo")
class SpectralConv2D(_SpectralNormMixin, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel is divided by its spectral norm.

    The kernel `[kh, kw, in, out]` is viewed as a `[kh * kw * in, out]`
    matrix; its largest singular value is estimated with `power_iterations`
    steps of power iteration on every training call (the estimate persists in
    the non-trainable `spectral_u`). The trainable kernel itself is never
    modified. Only `data_format="channels_last"` is supported.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple, as for `Conv2D`.
        power_iterations: power-iteration steps per training call (1 in the
            paper).
        epsilon: floor for squared norms, avoids division by zero.
        **kwargs: any other `keras.layers.Conv2D` argument.

    Example:

    >>> conv = SpectralConv2D(16, 3, padding="same")
    >>> y = conv(np.zeros((2, 8, 8, 3), "float32"), training=True)
    >>> y.shape
    TensorShape([2, 8, 8, 16])

    Reference: Miyato, Kataoka, Koyama & Yoshida, "Spectral Normalization for
    Generative Adversarial Networks", ICLR 2018, arXiv:1802.05957.
    """

    def __init__(self, filters, kernel_size, power_iterations=1, epsilon=1e-12, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self._init_spectral(power_iterations, epsilon)

    def call(self, inputs, training=False):
        inputs = ops.cast(inputs, self.compute_dtype)
        kernel = ops.cast(self.normalized_kernel(training), self.compute_dtype)
        return self._add_bias_and_activate(self.convolution_op(inputs, kernel))


@keras.saving.register_keras_serializable(package="gan_zoo")
class SpectralConv2DTranspose(_SpectralNormMixin, keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` with a spectrally normalised kernel.

    The kernel `[kh, kw, out, in]` is viewed as a `[kh * kw * out, in]`
    matrix: the same view as for the convolution whose adjoint this layer is
    (an operator and its adjoint share their spectral norm). Only
    `data_format="channels_last"` is supported.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple, as for `Conv2DTranspose`.
        power_iterations: power-iteration steps per training call.
        epsilon: floor for squared norms, avoids division by zero.
        **kwargs: any other `keras.layers.Conv2DTranspose` argument.

    Example:

    >>> up = SpectralConv2DTranspose(8, 4, strides=2, padding="same")
    >>> up(np.zeros((2, 4, 4, 16), "float32")).shape
    TensorShape([2, 8, 8, 8])

    Reference: Miyato et al., "Spectral Normalization for Generative
    Adversarial Networks", ICLR 2018, arXiv:1802.05957.
    """

    def __init__(self, filters, kernel_size, power_iterations=1, epsilon=1e-12, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self._init_spectral(power_iterations, epsilon)

    def call(self, inputs, training=False):
        inputs = ops.cast(inputs, self.compute_dtype)
        kernel = ops.cast(self.normalized_kernel(training), self.compute_dtype)
        outputs = ops.conv_transpose(
            inputs,
            kernel,
            strides=list(self.strides),
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        return self._add_bias_and_activate(outputs)


@keras.saving.register_keras_serializable(package="gan_zoo")
class SpectralDense(_SpectralNormMixin, keras.layers.Dense):
    """`keras.layers.Dense` with a spectrally normalised `[in, units]` kernel.

    Args:
        units: output size.
        power_iterations: power-iteration steps per training call.
        epsilon: floor for squared norms, avoids division by zero.
        **kwargs: any other `keras.layers.Dense` argument (LoRA and
            quantization are not supported).

    Example:

    >>> dense = SpectralDense(1)
    >>> dense(np.zeros((4, 32), "float32")).shape
    TensorShape([4, 1])

    Reference: Miyato et al., "Spectral Normalization for Generative
    Adversarial Networks", ICLR 2018, arXiv:1802.05957.
    """

    def __init__(self, units, power_iterations=1, epsilon=1e-12, **kwargs):
        super().__init__(units, **kwargs)
        self._init_spectral(power_iterations, epsilon)

    def call(self, inputs, training=False):
        inputs = ops.cast(inputs, self.compute_dtype)
        kernel = ops.cast(self.normalized_kernel(training), self.compute_dtype)
        return self._add_bias_and_activate(ops.matmul(inputs, kernel))


def conv2d(filters, kernel_size, *, spectral_normalization, power_iterations=1,
           kernel_initializer="glorot_uniform", **kwargs):
    """A `Conv2D`, or a `SpectralConv2D` when `spectral_normalization`.

    For blocks whose convolutions are spectrally normalised on request. The
    initializer is copied, so sibling convolutions never share (and so never
    repeat) one seeded initializer instance.

    Args:
        filters: output channels.
        kernel_size: int or tuple.
        spectral_normalization: build a `SpectralConv2D`.
        power_iterations: its power-iteration steps.
        kernel_initializer: initializer (name, config or instance).
        **kwargs: any other `Conv2D` argument.
    """
    initializer = keras.initializers.get(
        keras.initializers.serialize(keras.initializers.get(kernel_initializer))
    )
    if spectral_normalization:
        return SpectralConv2D(
            filters, kernel_size, power_iterations=power_iterations,
            kernel_initializer=initializer, **kwargs,
        )
    return keras.layers.Conv2D(filters, kernel_size, kernel_initializer=initializer, **kwargs)
