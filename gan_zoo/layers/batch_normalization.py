"""Batch normalization that keeps bfloat16 activations in one fused kernel.

Keras 3's `BatchNormalization` casts bfloat16 inputs to float32 and computes
the moments and the normalisation as separate element-wise ops, then casts
back. On a CPU with AMX-BF16 the convolutions of a ResNet-50 step in
mixed_bfloat16 take about a third of its time and these element-wise ops most
of the rest, so bfloat16 barely pays (benchmarks/README.md). TensorFlow's
`FusedBatchNormV3` takes bfloat16 activations with float32 statistics and
parameters (oneDNN has a kernel for it, forward and backward), which removes
the casts and the element-wise chain.

`BatchNormalization` here is a drop-in for Keras's: the same arguments,
weights and float32 maths, and the same class name on purpose, because
Keras names a layer's entry in a `.weights.h5` file after its class: weights
saved from either load into the other.
"""

import keras
from keras import ops

_FUSED_DTYPES = ("bfloat16", "float16")


@keras.saving.register_keras_serializable(package="gan_zoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with a fused half-precision path.

    Under a float32 policy, or whenever the fused kernel does not apply, it
    is Keras's layer, op for op. With bfloat16 or float16 activations on the
    TensorFlow backend, a 4-D input normalised over its last axis, no mask,
    no renormalisation and (for `synchronized=True`) a single replica, it
    runs TensorFlow's fused kernel: the statistics, the parameters and the
    moving averages stay float32, the activations stay in half precision.
    The moving variance is updated with the biased batch variance, as Keras
    does (the kernel's own output carries Bessel's correction).

    Takes `keras.layers.BatchNormalization`'s arguments.

    Reference: Ioffe & Szegedy, "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", ICML 2015,
    arXiv:1502.03167.
    """

    def _fused_kernel_applies(self, inputs, mask):
        if keras.backend.backend() != "tensorflow" or mask is not None or self.renorm:
            return False
        if keras.backend.standardize_dtype(inputs.dtype) not in _FUSED_DTYPES:
            return False
        if len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return False
        if self.synchronized:
            import tensorflow as tf

            context = tf.distribute.get_replica_context()
            return context is None or context.num_replicas_in_sync == 1
        return True

    def call(self, inputs, training=None, mask=None):
        if not self._fused_kernel_applies(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        ones, zeros = tf.ones([channels], "float32"), tf.zeros([channels], "float32")
        gamma = ops.cast(self.gamma, "float32") if self.scale else ones
        beta = ops.cast(self.beta, "float32") if self.center else zeros
        train = bool(training) and self.trainable
        if not train:
            outputs, *_ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta,
                mean=ops.cast(self.moving_mean, "float32"),
                variance=ops.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon, data_format="NHWC", is_training=False)
            return outputs
        empty = tf.zeros([0], "float32")
        outputs, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=gamma, offset=beta, mean=empty, variance=empty,
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32")
        variance = unbiased_variance * tf.maximum(count - 1.0, 0.0) / count
        momentum = self.momentum
        self.moving_mean.assign(
            self.moving_mean * momentum + ops.cast(mean, self.moving_mean.dtype) * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum
            + ops.cast(variance, self.moving_variance.dtype) * (1.0 - momentum))
        return outputs


def fuse_batch_normalization(model):
    """Gives `model`'s `keras.layers.BatchNormalization` layers the fused half-precision path.

    For backbones built by other libraries (keras-hub's ResNet, keras.applications'
    ResNet50), in place, before the model is traced: each layer becomes a
    `gan_zoo.layers.BatchNormalization` and keeps its weights, configuration
    and name. Returns the number of layers changed.
    """
    changed = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer) is keras.layers.BatchNormalization:
            layer.__class__ = BatchNormalization
            changed += 1
    return changed
