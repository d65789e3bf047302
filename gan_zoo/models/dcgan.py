"""DCGAN and the three variants of Chi, Fang & Wang for IDC augmentation."""

import math

import keras
import tensorflow as tf

from gan_zoo import config_checks as check
from gan_zoo import losses
from gan_zoo.layers.batch_normalization import BatchNormalization
from gan_zoo.layers.conditioning import LabelMaps, OneHot
from gan_zoo.layers.diff_augment import DifferentiableAugmentation, parse_policy
from gan_zoo.models.gan import GAN
from gan_zoo.registry import register_model
from gan_zoo.schedules import TrainingPlan

CITATION = (
    "Radford, Metz & Chintala, 'Unsupervised Representation Learning with Deep "
    "Convolutional Generative Adversarial Networks', ICLR 2016 (arXiv 1511.06434); "
    "variants v1-v3 from Chi, Fang & Wang, 'Synthetic Data Augmentation using GAN "
    "for Improved Breast Cancer Classification' (UC Berkeley, 2018)."
)

# What each variant of Chi et al. changes; explicit constructor values win.
VARIANTS = {
    # The reference TensorFlow DCGAN (carpedm20), 25 epochs.
    "v1": {"real_label": 1.0, "instance_noise_std": 0.0, "upsampling": "transposed", "epochs": 25},
    # + one-sided label smoothing (real labels 0.9) and N(0, 0.2) noise on D's inputs.
    "v2": {"real_label": 0.9, "instance_noise_std": 0.2, "upsampling": "transposed", "epochs": 25},
    # + stride-1 transposed convs after nearest upsampling (no checkerboards), 50 epochs.
    "v3": {"real_label": 0.9, "instance_noise_std": 0.2, "upsampling": "resize_conv", "epochs": 50},
}
_UPSAMPLING = ("transposed", "resize_conv")


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _batch_norm(name, synchronized):
    # TF1's decay 0.9 is Keras' momentum 0.9. Synchronized statistics make a
    # step on N replicas equal a step on one device with the global batch.
    return BatchNormalization(
        momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name
    )


def feature_sizes(image_size, num_upsamplings=4):
    """Spatial sizes from the first feature map to the image, halving with ceil.

    64 -> [4, 8, 16, 32, 64]; 50 -> [4, 7, 13, 25, 50].
    """
    sizes = [int(image_size)]
    for _ in range(num_upsamplings):
        sizes.insert(0, math.ceil(sizes[0] / 2))
    return sizes


def _upsample(x, filters, size_in, size_out, upsampling, name):
    if upsampling == "transposed":
        # 'same' 5x5 stride 2 gives 2n - 1 + output_padding pixels.
        return keras.layers.Conv2DTranspose(
            filters, 5, strides=2, padding="same",
            output_padding=size_out - 2 * size_in + 1,
            kernel_initializer=_init(), name=name,
        )(x)
    # Nearest upsampling then a stride-1 transposed conv: every output pixel
    # gets the same number of kernel taps (Odena et al. 2016).
    x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    extra = 2 * size_in - size_out
    if extra:
        x = keras.layers.Cropping2D(((0, extra), (0, extra)), name=f"{name}_crop")(x)
    return keras.layers.Conv2DTranspose(
        filters, 5, strides=1, padding="same", kernel_initializer=_init(), name=name
    )(x)


def build_generator(
    image_size, channels, latent_dim, base_filters, upsampling, num_classes=0, sync_bn=True
):
    """z [B, latent_dim] (+ labels [B]) -> images [B, S, S, C] in [-1, 1].

    dense -> 4x4x8f -> BN -> ReLU -> 4 x (5x5 upsampling to 4f, 2f, f, C;
    BN + ReLU except after the last) -> tanh.
    """
    sizes = feature_sizes(image_size)
    z = keras.Input((latent_dim,), name="z")
    inputs, x = [z], z
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        x = keras.layers.Concatenate(name="z_and_label")([z, OneHot(num_classes, name="one_hot")(labels)])
    x = keras.layers.Dense(
        sizes[0] * sizes[0] * base_filters * 8, kernel_initializer=_init(), name="project"
    )(x)
    x = keras.layers.Reshape((sizes[0], sizes[0], base_filters * 8), name="reshape")(x)
    x = keras.layers.ReLU(name="project_relu")(_batch_norm("project_bn", sync_bn)(x))
    widths = [base_filters * 4, base_filters * 2, base_filters, channels]
    for i, filters in enumerate(widths):
        x = _upsample(x, filters, sizes[i], sizes[i + 1], upsampling, name=f"deconv{i + 1}")
        if i < len(widths) - 1:
            x = _batch_norm(f"deconv{i + 1}_bn", sync_bn)(x)
            x = keras.layers.ReLU(name=f"deconv{i + 1}_relu")(x)
    images = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(inputs if num_classes else z, images, name="generator")


def build_discriminator(image_size, channels, base_filters, num_classes=0, sync_bn=True):
    """images [B, S, S, C] (+ labels [B]) -> real/fake logits [B, 1].

    4 x (5x5 stride-2 conv to f, 2f, 4f, 8f; LeakyReLU 0.2; BN except the
    first) -> flatten -> dense 1.
    """
    images = keras.Input((image_size, image_size, channels), name="images")
    inputs, x = [images], images
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        inputs.append(labels)
        maps = LabelMaps(image_size, image_size, num_classes, name="label_maps")(labels)
        x = keras.layers.Concatenate(name="image_and_label")([images, maps])
    for i, filters in enumerate([base_filters, base_filters * 2, base_filters * 4, base_filters * 8]):
        x = keras.layers.Conv2D(
            filters, 5, strides=2, padding="same", kernel_initializer=_init(), name=f"conv{i + 1}"
        )(x)
        if i > 0:
            x = _batch_norm(f"conv{i + 1}_bn", sync_bn)(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i + 1}_lrelu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logits = keras.layers.Dense(1, kernel_initializer=_init(), dtype="float32", name="logits")(x)
    return keras.Model(inputs if num_classes else images, logits, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_zoo")
class DCGAN(GAN):
    """DCGAN (Radford et al. 2016) as used by Chi, Fang & Wang for IDC patches.

    The architecture follows the reference TensorFlow DCGAN the paper builds
    on: G = dense to 4x4x512, BN, ReLU, then 5x5 transposed convolutions to
    256, 128, 64 channels (BN + ReLU) and to the image (tanh); D = 5x5 stride-2
    convolutions 64-128-256-512 with LeakyReLU 0.2 (BN except the first), then
    a dense logit. Weights N(0, 0.02), BN epsilon 1e-5 / momentum 0.9,
    z ~ U[-1, 1]^100, Adam 2e-4 (beta_1 0.5), batch 64, non-saturating BCE.
    Every step makes one D update and then `g_updates_per_d` G updates with
    the same z (2 in the reference).

    Variants (Chi et al., section 4.4):
    - `v1`: the reference DCGAN, 25 epochs.
    - `v2`: + one-sided label smoothing (real label 0.9) + Gaussian instance
      noise on every D input. The paper writes N(0, 0.2); we read 0.2 as the
      standard deviation (configurable: `instance_noise_std`).
    - `v3`: v2 with stride-1 transposed convolutions, 50 epochs. The paper
      only says the strides became 1; for the image to still grow, each
      stride-2 transposed conv becomes nearest-neighbour 2x upsampling then a
      stride-1 5x5 transposed conv (the resize-convolution of Odena et al.
      2016, which removes the checkerboard the paper targets).

    For 50x50 IDC patches the sizes go 4 -> 7 -> 13 -> 25 -> 50 (output
    padding, or a crop after upsampling, picks the odd sizes).

    Conditioning (optional, `num_classes > 0`; not in the paper, which trains
    one GAN per class or cluster): G gets one-hot labels concatenated to z, D
    gets one-hot label maps concatenated to the image.

    Paper audit: docs/models/dcgan.md (paper item | paper | gan_zoo | option).

    Args:
        variant: "v1", "v2" or "v3".
        image_size: side of the square images (64 reference, 50 for IDC).
        channels: image channels.
        latent_dim: size of z.
        num_classes: 0 for unconditional, else the number of classes.
        base_filters: width f of the first D / last G hidden layer.
        g_updates_per_d: generator updates per discriminator update.
        real_label: D's target for real images (None = the variant's).
        instance_noise_std: std of the noise added to D's inputs (None = the
            variant's).
        upsampling: "transposed" or "resize_conv" (None = the variant's).
        synchronized_batch_norm: batch statistics over the global batch
            under tf.distribute (so N replicas train like one device);
            no effect on one device.
        learning_rate: Adam learning rate of both networks.
        beta_1: Adam beta_1 of both networks.
        ema_half_life_steps: sample from an exponential moving average of the
            generator's weights with this half-life in steps (None: the raw
            generator, as the paper). Not in the paper: averaged weights give
            visibly cleaner samples early in training (Yazici et al. 2019).
        augment_policy: None (the paper), or differentiable augmentation of
            every image D sees, real and generated alike, e.g.
            "color,translation,cutout" (DiffAugment, Zhao et al. 2020;
            `gan_zoo.layers.diff_augment`): for small datasets, where D
            memorises the training images.
        seed: seed of the training random stream.

    Example:

    >>> gan = DCGAN(variant="v3", image_size=50)
    >>> gan.compile()  # the paper's optimizers
    >>> gan.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch, epochs=50)
    >>> images = gan.generate(16, seed=0)
    """

    # Options that change training, not the weights: weights load across them.
    weight_independent_options = ("g_updates_per_d", "real_label", "instance_noise_std",
                                  "synchronized_batch_norm")

    def __init__(
        self,
        variant="v1",
        image_size=64,
        channels=3,
        latent_dim=100,
        num_classes=0,
        base_filters=64,
        g_updates_per_d=2,
        real_label=None,
        instance_noise_std=None,
        upsampling=None,
        synchronized_batch_norm=True,
        learning_rate=2e-4,
        beta_1=0.5,
        ema_half_life_steps=None,
        augment_policy=None,
        seed=0,
        **kwargs,
    ):
        variant = check.one_of("variant", variant, sorted(VARIANTS))
        defaults = VARIANTS[variant]
        upsampling = check.one_of(
            "upsampling", defaults["upsampling"] if upsampling is None else upsampling, _UPSAMPLING
        )
        image_size = check.integer_in_range("image_size", image_size, low=16)
        channels = check.positive_int("channels", channels)
        latent_dim = check.positive_int("latent_dim", latent_dim)
        num_classes = check.non_negative_int("num_classes", num_classes)
        if num_classes == 1:
            raise check.ConfigError(
                "num_classes must be 0 (unconditional) or at least 2; got 1."
            )
        base_filters = check.positive_int("base_filters", base_filters)
        g_updates_per_d = check.positive_int("g_updates_per_d", g_updates_per_d)
        real_label = check.optional(
            check.number_in_range, "real_label", real_label, 0.0, 1.0, low_inclusive=False
        )
        instance_noise_std = check.optional(
            check.non_negative_number, "instance_noise_std", instance_noise_std
        )
        synchronized_batch_norm = check.boolean("synchronized_batch_norm", synchronized_batch_norm)
        learning_rate = check.positive_number("learning_rate", learning_rate)
        beta_1 = check.number_in_range("beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        ema_half_life_steps = check.optional(
            check.positive_number, "ema_half_life_steps", ema_half_life_steps
        )
        if augment_policy is not None:
            try:
                augment_policy = ",".join(parse_policy(augment_policy))
            except ValueError as error:
                raise check.ConfigError(f"augment_policy: {error}") from None
        seed = check.seed("seed", seed)
        sync_bn = bool(synchronized_batch_norm)
        generator = build_generator(
            image_size, channels, latent_dim, base_filters, upsampling, num_classes, sync_bn
        )
        discriminator = build_discriminator(
            image_size, channels, base_filters, num_classes, sync_bn
        )
        super().__init__(
            generator,
            discriminator,
            latent_dim=latent_dim,
            num_classes=num_classes,
            latent_distribution="uniform",
            data_range=(-1.0, 1.0),
            seed=seed,
            **kwargs,
        )
        self.variant = variant
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.base_filters = int(base_filters)
        self.g_updates_per_d = int(g_updates_per_d)
        self.real_label = float(defaults["real_label"] if real_label is None else real_label)
        self.instance_noise_std = float(
            defaults["instance_noise_std"] if instance_noise_std is None else instance_noise_std
        )
        self.upsampling = upsampling
        self.synchronized_batch_norm = sync_bn
        self.learning_rate = float(learning_rate)
        self.beta_1 = float(beta_1)
        self.ema_half_life_steps = ema_half_life_steps
        if ema_half_life_steps is not None:
            self.enable_ema("generator", half_life_steps=ema_half_life_steps)
        self.augment_policy = augment_policy
        self.augmentation = None
        if augment_policy is not None:
            self.augmentation = DifferentiableAugmentation(
                augment_policy, data_range=self.data_range, name="augmentation"
            )

    def default_optimizers(self):
        return {
            group: keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1)
            for group in ("g", "d")
        }

    def training_plan(self, epochs=None, batch_size=None):
        """The reference's plan: batch 64, constant rate, 25 epochs (v3: 50)."""
        return TrainingPlan(
            epochs=epochs or VARIANTS[self.variant]["epochs"],
            batch_size=batch_size or 64,
            notes="Chi et al.: 25 epochs (v1, v2), 50 (v3); the reference DCGAN's batch 64",
        )

    def default_training(self):
        """The paper's epochs and batch size for this variant."""
        plan = self.training_plan()
        return {"epochs": plan.epochs, "batch_size": plan.batch_size}

    def _discriminate(self, images, labels, stream):
        if self.augmentation is not None:
            # One draw for the global batch (each replica takes its rows).
            images = self.augmentation(images, self.stream_seed(stream + 100, per_replica=False))
        if self.instance_noise_std > 0:
            images = images + self.random_normal(
                tf.shape(images), stream, stddev=self.instance_noise_std
            )
        inputs = [images, labels] if self.conditional else images
        return self.discriminator(inputs, training=True)

    def train_step(self, data):
        real, labels = self.unpack(data)
        if self.conditional and labels is None:
            raise ValueError("A conditional DCGAN needs (images, labels) batches.")
        z = self.sample_latent(tf.shape(real)[0], stream=0)
        g_inputs = self.generator_inputs(z, labels)

        with tf.GradientTape() as tape:
            fake = self.generator(g_inputs, training=True)
            d_per_example = losses.discriminator_bce(
                self._discriminate(real, labels, stream=10),
                self._discriminate(fake, labels, stream=11),
                real_label=self.real_label,
            )
            d_scaled = self.scale_loss("d", self.reduce(d_per_example))
        self.apply_group_gradients("d", tape, d_scaled)

        # The reference updates G twice per D update, with the same z.
        for i in range(self.g_updates_per_d):
            with tf.GradientTape() as tape:
                fake = self.generator(g_inputs, training=True)
                g_per_example = losses.generator_bce(
                    self._discriminate(fake, labels, stream=20 + i)
                )
                g_scaled = self.scale_loss("g", self.reduce(g_per_example))
            self.apply_group_gradients("g", tape, g_scaled)
        if self.ema_half_life_steps is not None:
            self.update_ema("generator")

        self.track(d_loss=d_per_example, g_loss=g_per_example)
        return self.finish_step()

    def get_config(self):
        return {
            "name": self.name,
            "variant": self.variant,
            "image_size": self.image_size,
            "channels": self.channels,
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "base_filters": self.base_filters,
            "g_updates_per_d": self.g_updates_per_d,
            "real_label": self.real_label,
            "instance_noise_std": self.instance_noise_std,
            "upsampling": self.upsampling,
            "synchronized_batch_norm": self.synchronized_batch_norm,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "ema_half_life_steps": self.ema_half_life_steps,
            "augment_policy": self.augment_policy,
            "seed": self.seed,
        }


register_model(
    "dcgan",
    DCGAN,
    config={
        "variant": "v1",
        "image_size": 64,
        "channels": 3,
        "latent_dim": 100,
        "num_classes": 0,
        "base_filters": 64,
        "g_updates_per_d": 2,
        "real_label": None,
        "instance_noise_std": None,
        "upsampling": None,
        "synchronized_batch_norm": True,
        "learning_rate": 2e-4,
        "beta_1": 0.5,
        "ema_half_life_steps": None,
        "augment_policy": None,
        "seed": 0,
    },
    citation=CITATION,
    description="DCGAN with the v1/v2/v3 variants of Chi et al. for IDC patch synthesis",
    modality="histology",
    capabilities=("generate",),
    inputs="latent z [{latent_dim}] ~ N(0, 1), and a class label when num_classes > 0",
    outputs="RGB patches [{image_size}, {image_size}, {channels}], float32 in [0, 1]",
)
