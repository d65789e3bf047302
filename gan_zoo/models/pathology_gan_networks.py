"""PathologyGAN's networks: mapping, synthesis (style generator) and critic.

Layer by layer as the authors' public TF1 code (Quiros, Murray-Smith & Yuan,
"PathologyGAN: Learning deep representations of cancer tissue", MIDL 2020,
arXiv:1907.02644; code github.com/AdalbertoCq/Pathology-GAN). At the paper's
224x224 (five stages, z 200):

    mapping    z 200 -> 4 x [SN-dense 200, ReLU, SN-dense 200, ReLU, + input]
               -> SN-dense 200 = w
    synthesis  styles [6, 200] (slot i feeds the layers listed with it)
               slot 0: SN-dense 1024 - AdaIN - LReLU - SN-dense 7x7x256 - AdaIN
                       - LReLU - reshape 7x7x256
               stage s = 0..4 (7 -> 14 -> 28 -> 56 -> 112 -> 224):
                 slot s:   residual block (conv3 - noise - AdaIN - LReLU -
                           conv3 - noise - AdaIN - LReLU, + input)
                           [self-attention after the 28x28 block]
                 slot s+1: stride-2 up-conv to 512, 256, 128, 64, 32 channels
                           - noise - AdaIN - LReLU
               conv3 to 3 channels - sigmoid
    critic     stage s = 0..4 (224 -> 112 -> 56 -> 28 -> 14 -> 7):
                 residual block (conv3 - LReLU - conv3 - LReLU, + input)
                 [self-attention after the 28x28 block]
                 stride-2 down-conv to 32, 64, 128, 256, 512 channels - LReLU
               flatten - SN-dense 1024 - LReLU - SN-dense 1 (logit)

Every conv and dense layer is spectrally normalised (one power iteration)
and orthogonally initialised, except the AdaIN MLPs and the noise weights
(Xavier), as in the reference. LeakyReLU slope 0.2.

Details the paper leaves out, read from the reference code:
- The up-conv is the "fused upscale" of ProGAN: a 2x2 kernel padded to 4x4
  and summed over its four 1-pixel shifts, i.e. an effective 3x3 transposed
  conv kernel; the critic's down-conv does the same with a 4x4 kernel
  (effective 5x5). Spectral normalisation acts on the effective kernel.
  `fused_scaling=False` gives plain 2x2 / 4x4 stride-2 convs instead.
- AdaIN on the dense layers' [B, F] features standardises each sample over
  its F features (the reference's rank-2 branch); on [B, H, W, C] maps it
  is instance normalisation over H, W. Epsilon 1e-5.
- The critic's first residual block runs on the 3 image channels.
- The reference's dense residual block feeds the block INPUT to its second
  dense layer (so its first one is dead weight); we chain the two layers,
  which is what the paper's "residual dense block" describes. Same
  parameter count.
- Noise: one N(0, 1) scalar per channel and sample ([B, 1, 1, C]) times a
  learned per-channel weight, added right before AdaIN. Note that the
  instance normalisation that follows subtracts each channel's mean, so
  this noise is cancelled exactly (up to rounding) and has no effect on the
  images: a property of the reference architecture, kept for fidelity;
  `noise_layout="per_pixel"` gives StyleGAN's per-pixel noise, which does
  reach the images.
"""

import keras
import tensorflow as tf
from keras import ops

from gan_zoo.layers.attention import SelfAttention
from gan_zoo.layers.diff_augment import global_batch_random
from gan_zoo.layers.noise import NoiseInjection, scoped_seed
from gan_zoo.layers.normalization import AdaptiveInstanceNormalization
from gan_zoo.layers.spectral_norm import SpectralConv2D, SpectralConv2DTranspose, SpectralDense

BASE_SIZE = 7
ORTHOGONAL = "orthogonal"
XAVIER = "glorot_uniform"
LEAKY_SLOPE = 0.2
NOISE_LAYOUTS = ("per_channel", "per_pixel")


def _fused_kernel(kernel):
    """A k x k kernel -> the (k+1) x (k+1) sum of its four 1-pixel shifts (ProGAN)."""
    padded = ops.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]


@keras.saving.register_keras_serializable(package="gan_zoo")
class FusedUpscaleConv2DTranspose(SpectralConv2DTranspose):
    """Stride-2 spectrally normalised transposed conv with a fused-upscale kernel.

    The trainable `k x k` kernel is padded and summed over its four 1-pixel
    shifts into a `(k+1) x (k+1)` kernel (Karras et al. 2018, "Progressive
    Growing of GANs"; PathologyGAN's `conv_type='upscale'`), which is then
    divided by its spectral norm. Output size: twice the input.

    Args:
        filters: output channels.
        kernel_size: side k of the trainable kernel (2 in PathologyGAN).
        **kwargs: `SpectralConv2DTranspose` arguments (strides default 2,
            padding "same").
    """

    def __init__(self, filters, kernel_size=2, **kwargs):
        kwargs.setdefault("strides", 2)
        kwargs.setdefault("padding", "same")
        super().__init__(filters, kernel_size, **kwargs)

    def normalized_kernel(self, training=False):
        kernel = _fused_kernel(ops.cast(ops.convert_to_tensor(self.kernel), "float32"))
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
        return kernel / self._spectral_sigma(matrix, training)


@keras.saving.register_keras_serializable(package="gan_zoo")
class FusedDownscaleConv2D(SpectralConv2D):
    """Stride-2 spectrally normalised conv with a fused-downscale kernel.

    The trainable `k x k` kernel becomes a `(k+1) x (k+1)` kernel as in
    `FusedUpscaleConv2DTranspose` (PathologyGAN's `conv_type='downscale'`,
    k = 4). Output size: ceil(input / 2).

    Args:
        filters: output channels.
        kernel_size: side k of the trainable kernel.
        **kwargs: `SpectralConv2D` arguments (strides default 2, padding
            "same").
    """

    def __init__(self, filters, kernel_size=4, **kwargs):
        kwargs.setdefault("strides", 2)
        kwargs.setdefault("padding", "same")
        super().__init__(filters, kernel_size, **kwargs)

    def normalized_kernel(self, training=False):
        kernel = _fused_kernel(ops.cast(ops.convert_to_tensor(self.kernel), "float32"))
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))
        return kernel / self._spectral_sigma(matrix, training)


@keras.saving.register_keras_serializable(package="gan_zoo")
class SpectralAdaIN(AdaptiveInstanceNormalization):
    """PathologyGAN's AdaIN: a spectrally normalised MLP of w, any feature rank.

    `hidden = ReLU(SN-dense(w))` with `(C + D) // 2` units, `gamma =
    ReLU(SN-dense(hidden))`, `beta = SN-dense(hidden)`; `x` is standardised
    per sample over H, W (rank 4) or over its features (rank 2), then
    `gamma * x_norm + beta`. Xavier-initialised MLP, epsilon 1e-5.

    The shared `AdaptiveInstanceNormalization` has the same MLP without
    spectral normalisation and takes rank-4 inputs only; PathologyGAN's
    reference normalises both (see the module docstring).

    Args:
        power_iterations: power-iteration steps of the spectral norms.
        **kwargs: `AdaptiveInstanceNormalization` arguments.
    """

    def __init__(self, power_iterations=1, **kwargs):
        kwargs.setdefault("kernel_initializer", XAVIER)
        super().__init__(**kwargs)
        if self.mode != "mlp":
            raise ValueError("SpectralAdaIN supports mode='mlp' only.")
        self.power_iterations = int(power_iterations)

    def _dense(self, units, name, activation=None):
        return SpectralDense(
            units, activation=activation, power_iterations=self.power_iterations,
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
            dtype=self.dtype_policy, name=name,
        )

    def build(self, input_shape):
        rank = len(input_shape[0])
        if rank not in (2, 4):
            raise ValueError(f"SpectralAdaIN takes [B, F] or [B, H, W, C] features, got rank {rank}.")
        super().build(input_shape)

    def call(self, inputs, training=False):
        x, w = inputs
        hidden = self.hidden_dense(w, training=training)
        gamma = self.gamma_dense(hidden, training=training)
        beta = self.beta_dense(hidden, training=training)
        axes = (1, 2) if len(x.shape) == 4 else (1,)
        x32 = ops.cast(x, "float32")
        mean, variance = ops.moments(x32, axes=axes, keepdims=True)
        normalized = (x32 - mean) * ops.rsqrt(variance + self.epsilon)
        if len(x.shape) == 4:
            gamma, beta = gamma[:, None, None, :], beta[:, None, None, :]
        out = ops.cast(gamma, "float32") * normalized + ops.cast(beta, "float32")
        return ops.cast(out, x.dtype)

    def get_config(self):
        config = super().get_config()
        config["power_iterations"] = self.power_iterations
        return config


@keras.saving.register_keras_serializable(package="gan_zoo")
class GlobalBatchNoise(NoiseInjection):
    """`NoiseInjection` with Xavier weights and noise drawn for the GLOBAL batch.

    Inside a `noise_seed_scope` opened with a seed that is the same on every
    replica (`model.stream_seed(..., per_replica=False)`), the layer draws
    noise for the whole global batch and keeps its replica's rows, so N
    replicas add the noise one device would (equal per-replica batches).
    With a per-replica seed it is simply per-replica noise.

    Args:
        weight_initializer: initializer of the per-channel weights (Xavier
            in PathologyGAN; the shared layer starts them at zero).
        **kwargs: `NoiseInjection` arguments (`per_pixel` defaults to
            False: one scalar per channel and sample).
    """

    def __init__(self, weight_initializer=XAVIER, **kwargs):
        kwargs.setdefault("per_pixel", False)
        super().__init__(**kwargs)
        self.weight_initializer = keras.initializers.get(weight_initializer)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError("GlobalBatchNoise needs a known channel dimension.")
        self.noise_weight = self.add_weight(
            name="noise_weight", shape=(input_shape[-1],), initializer=self.weight_initializer
        )

    def call(self, inputs, noise=None, training=False):
        if noise is None and (training or self.noise_at_inference):
            seed = scoped_seed(self.name)
            if seed is not None:
                noise = global_batch_random(seed, self.noise_shape(inputs), "normal")
        return super().call(inputs, noise=noise, training=training)

    def get_config(self):
        config = super().get_config()
        config["weight_initializer"] = keras.initializers.serialize(self.weight_initializer)
        return config


@keras.saving.register_keras_serializable(package="gan_zoo")
class StyleSlot(keras.layers.Layer):
    """Picks slot `index` of per-layer styles `[B, slots, D]` -> `[B, D]`."""

    def __init__(self, index, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, styles):
        return styles[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="gan_zoo")
class TileStyles(keras.layers.Layer):
    """Repeats one style `[B, D]` over `slots` layers -> `[B, slots, D]`."""

    def __init__(self, slots, **kwargs):
        super().__init__(**kwargs)
        self.slots = int(slots)

    def call(self, w):
        return ops.repeat(w[:, None, :], self.slots, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.slots, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "slots": self.slots}


# ------------------------------------------------------------------ builders
def stage_channels(stages, base_channels):
    """Up-conv output channels of the generator, first stage first.

    The reference takes the first `stages` of (32, 64, ..., 1024) and
    reverses them: 5 stages -> [512, 256, 128, 64, 32]. The critic's
    down-convs use them in increasing order.
    """
    return [base_channels * 2**i for i in range(stages)][::-1]


def _dense(units, name):
    return SpectralDense(units, kernel_initializer=ORTHOGONAL, name=name)


def _conv(filters, name, kernel_size=3):
    return SpectralConv2D(filters, kernel_size, padding="same", kernel_initializer=ORTHOGONAL, name=name)


def _leaky(name):
    return keras.layers.LeakyReLU(LEAKY_SLOPE, name=name)


def _noise(noise_layout, noise_at_inference, name):
    return GlobalBatchNoise(
        per_pixel=noise_layout == "per_pixel", noise_at_inference=noise_at_inference, name=name
    )


def build_mapping(latent_dim, blocks=4):
    """z [B, latent_dim] -> w [B, latent_dim]: residual SN-dense blocks + SN-dense."""
    z = keras.Input((latent_dim,), name="z")
    x = z
    for b in range(blocks):
        h = keras.layers.ReLU(name=f"block{b}_relu1")(_dense(latent_dim, f"block{b}_dense1")(x))
        h = keras.layers.ReLU(name=f"block{b}_relu2")(_dense(latent_dim, f"block{b}_dense2")(h))
        x = keras.layers.Add(name=f"block{b}_add")([x, h])
    w = _dense(latent_dim, "w")(x)
    return keras.Model(z, w, name="mapping")


def build_synthesis(
    latent_dim, stages, *, base_channels=32, initial_channels=256, dense_units=1024,
    attention_resolution=28, channels=3, fused_scaling=True, noise_layout="per_channel",
    noise_at_inference=False,
):
    """styles [B, stages + 1, latent_dim] -> images [B, S, S, channels] in [0, 1]."""
    styles = keras.Input((stages + 1, latent_dim), name="styles")
    w0 = StyleSlot(0, name="style0")(styles)

    def adain(x, w, name):
        return SpectralAdaIN(epsilon=1e-5, name=name)([x, w])

    x = _dense(dense_units, "dense1")(w0)
    x = _leaky("dense1_lrelu")(adain(x, w0, "dense1_adain"))
    x = _dense(BASE_SIZE * BASE_SIZE * initial_channels, "dense2")(x)
    x = _leaky("dense2_lrelu")(adain(x, w0, "dense2_adain"))
    x = keras.layers.Reshape((BASE_SIZE, BASE_SIZE, initial_channels), name="reshape")(x)
    size = BASE_SIZE
    for stage, filters in enumerate(stage_channels(stages, base_channels)):
        w = StyleSlot(stage, name=f"style{stage}_block")(styles) if stage else w0
        name = f"stage{stage}"
        width = x.shape[-1]
        h = x
        for part in (1, 2):
            h = _conv(width, f"{name}_res_conv{part}")(h)
            h = _noise(noise_layout, noise_at_inference, f"{name}_res_noise{part}")(h)
            h = _leaky(f"{name}_res_lrelu{part}")(adain(h, w, f"{name}_res_adain{part}"))
        x = keras.layers.Add(name=f"{name}_res_add")([x, h])
        if size == attention_resolution:
            x = SelfAttention(kernel_initializer=ORTHOGONAL, name=f"{name}_attention")(x)
        w_up = StyleSlot(stage + 1, name=f"style{stage + 1}_up")(styles)
        if fused_scaling:
            x = FusedUpscaleConv2DTranspose(
                filters, 2, kernel_initializer=ORTHOGONAL, name=f"{name}_up")(x)
        else:
            x = SpectralConv2DTranspose(
                filters, 2, strides=2, padding="same", kernel_initializer=ORTHOGONAL, name=f"{name}_up"
            )(x)
        x = _noise(noise_layout, noise_at_inference, f"{name}_up_noise")(x)
        x = _leaky(f"{name}_up_lrelu")(adain(x, w_up, f"{name}_up_adain"))
        size *= 2
    x = _conv(channels, "to_image")(x)
    images = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x)
    return keras.Model(styles, images, name="synthesis")


def build_generator(mapping, synthesis, stages):
    """The sampling generator z -> images: mapping, w tiled over the slots, synthesis."""
    z = keras.Input((mapping.input_shape[-1],), name="z")
    styles = TileStyles(stages + 1, name="tile_styles")(mapping(z))
    return keras.Model(z, synthesis(styles), name="generator")


def build_critic(
    image_size, stages, *, base_channels=32, dense_units=1024, attention_resolution=28,
    channels=3, fused_scaling=True,
):
    """images [B, S, S, channels] -> logits [B, 1]; no normalisation layers."""
    images = keras.Input((image_size, image_size, channels), name="images")
    x, size = images, image_size
    for stage, filters in enumerate(stage_channels(stages, base_channels)[::-1]):
        name = f"stage{stage}"
        width = x.shape[-1]
        h = x
        for part in (1, 2):
            h = _leaky(f"{name}_res_lrelu{part}")(_conv(width, f"{name}_res_conv{part}")(h))
        x = keras.layers.Add(name=f"{name}_res_add")([x, h])
        if size == attention_resolution:
            x = SelfAttention(kernel_initializer=ORTHOGONAL, name=f"{name}_attention")(x)
        if fused_scaling:
            x = FusedDownscaleConv2D(filters, 4, kernel_initializer=ORTHOGONAL, name=f"{name}_down")(x)
        else:
            x = SpectralConv2D(
                filters, 4, strides=2, padding="same", kernel_initializer=ORTHOGONAL, name=f"{name}_down"
            )(x)
        x = _leaky(f"{name}_down_lrelu")(x)
        size //= 2
    x = keras.layers.Flatten(name="flatten")(x)
    x = _leaky("dense_lrelu")(_dense(dense_units, "dense")(x))
    logits = SpectralDense(1, kernel_initializer=ORTHOGONAL, dtype="float32", name="logits")(x)
    return keras.Model(images, logits, name="discriminator")


def orthogonal_penalty(kernels):
    """BigGAN's orthogonal regulariser: sum over kernels of ||W^T W * (1 - I)||_F^2.

    Each kernel is viewed as `[-1, last dim]` (the reference's view).
    """
    total = tf.constant(0.0, tf.float32)
    for kernel in kernels:
        matrix = tf.reshape(tf.cast(kernel, tf.float32), (-1, kernel.shape[-1]))
        gram = tf.matmul(matrix, matrix, transpose_a=True)
        off_diagonal = gram * (1.0 - tf.eye(kernel.shape[-1]))
        total += tf.reduce_sum(tf.square(off_diagonal))
    return total


def regularised_kernels(network):
    """Kernels the reference regularises: every conv / dense kernel outside AdaIN."""
    kernels = []
    for layer in _all_layers(network):
        if isinstance(layer, (SpectralConv2D, SpectralConv2DTranspose, SpectralDense)):
            kernels.append(layer.kernel)
    return kernels


def _all_layers(network):
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        elif isinstance(layer, SpectralAdaIN):
            continue  # its MLP is not regularised in the reference
        else:
            yield layer
            for sub in getattr(layer, "_layers", []):
                if isinstance(sub, (SpectralConv2D, SpectralDense)):
                    yield sub
