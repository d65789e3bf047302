"""Semi-supervised conditional GAN for IDC detection (Johnson, FTC 2020)."""

import keras
import tensorflow as tf

from gan_zoo import config_checks as check
from gan_zoo import losses
from gan_zoo.data.splits import UNLABELLED
from gan_zoo.layers.conditioning import OneHot
from gan_zoo.layers.spectral_norm import SpectralConv2D, SpectralConv2DTranspose
from gan_zoo.models.classifier import UnitRangeModel
from gan_zoo.models.gan import GAN
from gan_zoo.models.roles import Classifier
from gan_zoo.registry import register_model
from gan_zoo.schedules import LinearDecay, TrainingPlan

CITATION = (
    "Johnson, 'Detecting Invasive Ductal Carcinoma with Semi-Supervised "
    "Conditional GANs', Future Technologies Conference 2020 (arXiv 1911.06216)."
)


def _leaky(name):
    return keras.layers.LeakyReLU(0.2, name=name)


# The smallest width whose first layer keeps a filter: round(64 * width) >= 1.
MIN_WIDTH = 1 / 128


def filters(layer, width):
    """The paper's 64 * layer * width filters (at least 1; width may be < 1 for tests)."""
    return max(1, round(64 * layer * width))


def generator_sizes(image_size):
    """Feature-map sizes of the generator: 1 -> 3 -> 7 -> ... -> image_size.

    Layers 3-5 double with 'same' padding (2n - 1 + output_padding), so the
    sizes are found backwards by halving with ceil; layers 1-2 are 'valid'
    transposed convolutions 1 -> 3 -> 7, which fits image sizes 49 to 56.
    """
    sizes = [int(image_size)]
    for _ in range(3):
        sizes.insert(0, -(-sizes[0] // 2))
    if sizes[0] != 7:
        raise ValueError(
            f"image_size {image_size} does not fit five 3x3 transposed convolutions "
            "(1 -> 3 -> 7 -> 13 -> 25 -> 50); use an image_size from 49 to 56."
        )
    return [1, 3, *sizes]


def build_generator(image_size, latent_dim, num_classes, width, channels=3, spectral_norm=True):
    """[z, class] -> image in [-1, 1]: five 3x3 transposed convolutions.

    z and the one-hot class form a 1x1 map that is upsampled 1 -> 3 -> 7 ->
    13 -> 25 -> 50 with 64*(5-l)*width filters in layers l = 1..4 (the
    discriminator's widths mirrored) and `channels` in layer 5; batch norm
    and ReLU after each hidden layer, tanh at the end. With `spectral_norm`
    every transposed convolution is spectrally normalised.
    """
    transposed = SpectralConv2DTranspose if spectral_norm else keras.layers.Conv2DTranspose
    sizes = generator_sizes(image_size)
    z = keras.Input((latent_dim,), name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    x = keras.layers.Concatenate(name="z_and_class")([z, OneHot(num_classes, name="one_hot")(labels)])
    x = keras.layers.Reshape((1, 1, latent_dim + num_classes), name="to_map")(x)
    widths = [filters(5 - layer, width) for layer in range(1, 5)] + [channels]
    for layer, n_filters in enumerate(widths, start=1):
        size_in, size_out = sizes[layer - 1], sizes[layer]
        if layer <= 2:  # 1 -> 3 and 3 -> 7: 'valid' transposed convolutions
            conv = transposed(
                n_filters, 3, strides=layer, padding="valid", name=f"deconv{layer}"
            )
        else:  # 'same' gives 2n - 1 + output_padding
            conv = transposed(
                n_filters, 3, strides=2, padding="same",
                output_padding=size_out - 2 * size_in + 1, name=f"deconv{layer}",
            )
        x = conv(x)
        if layer < 5:
            # Synchronized: N replicas normalise like one device.
            x = keras.layers.BatchNormalization(synchronized=True, name=f"deconv{layer}_bn")(x)
            x = keras.layers.ReLU(name=f"deconv{layer}_relu")(x)
    images = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, labels], images, name="generator")


def build_discriminator(image_size, num_classes, width, strides, channels=3):
    """image -> {"real_fake": [B, 1] logits, "class": [B, num_classes] logits}.

    Five 3x3 strided convolutions with 64*l*width filters (l = 1..5), leaky
    ReLU 0.2, spectral norm on all but the first and last, no pooling and no
    class input; then two single dense heads.
    """
    images = keras.Input((image_size, image_size, channels), name="images")
    x = images
    for layer, stride in enumerate(strides, start=1):
        layer_class = keras.layers.Conv2D if layer in (1, len(strides)) else SpectralConv2D
        conv = layer_class(
            filters(layer, width), 3, strides=stride, padding="same", name=f"conv{layer}"
        )
        x = _leaky(f"conv{layer}_lrelu")(conv(x))
    features = keras.layers.Flatten(name="features")(x)
    real_fake = keras.layers.Dense(1, dtype="float32", name="real_fake")(features)
    classes = keras.layers.Dense(num_classes, dtype="float32", name="class")(features)
    return keras.Model(images, {"real_fake": real_fake, "class": classes}, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_zoo")
class SemiSupervisedCGAN(Classifier, GAN):
    """Semi-supervised conditional GAN whose discriminator detects IDC.

    Johnson, "Detecting Invasive Ductal Carcinoma with Semi-Supervised
    Conditional GANs", Future Technologies Conference 2020 (arXiv
    1911.06216): a DCGAN-style conditional GAN on 50x50 H&E patches. The
    generator is conditioned on the class (IDC / healthy); the discriminator
    is NOT given the class and has two heads, real/fake and IDC/healthy.
    Five 3x3 (transposed) convolutions on each side, 64*layer*width filters
    (width = the paper's omega: 1, 2 or 4), ReLU in G, leaky ReLU 0.2 in D,
    strided convolutions and no pooling, spectral norm on every G transposed
    convolution and on all D convolutions but the first and last (see
    below), a gradient penalty, Adam 2e-4 (0.5, 0.999) with
    the rate constant for the first half of training and then linear decay
    to 0 (its `training_plan()`: `gan_zoo.schedules.LinearDecay`), 200 epochs of batch 128, random flips.
    After training the discriminator's class head is the IDC detector:
    `classifier()`.

    Losses per step (labels of unlabelled real images are -1):
    - D: non-saturating BCE on the real/fake head for ALL real images
      (labelled or not) and the fakes; plus `gradient_penalty_weight` times
      the WGAN-GP penalty (Gulrajani et al. 2017; per sample, on random
      interpolates of real and fake, on the real/fake logit); plus the class
      cross-entropy of LABELLED real images, normalised by the number of
      labelled images in the global batch (so it keeps its scale when labels
      are rare); plus `fake_class_loss_weight` times the class cross-entropy
      of the fakes against the class each was generated from (as in AC-GAN,
      Odena et al. 2017: fakes are extra, synthetic training data for the
      class head).
    - G: non-saturating BCE on the real/fake head plus
      `generator_class_loss_weight` times the class cross-entropy of its
      fakes against their conditioning class.
    The conditioning classes of the fakes are drawn uniformly. Logged:
    `d_loss` is the adversarial term alone; `gradient_penalty`,
    `class_loss` (labelled real images) and `class_accuracy` separately.

    Choices where the paper is silent (all configurable): D strides
    (2, 2, 2, 2, 1), so 50 -> 25 -> 13 -> 7 -> 4 -> 4; the G input is a 1x1
    map of [z, one-hot class] upsampled 1 -> 3 -> 7 -> 13 -> 25 -> 50, with
    batch norm in G and no normalisation in D (the gradient penalty is per
    sample, which batch norm would break); z ~ N(0, 1) of size 100; penalty
    weight 10 towards gradient norm 1; the heads are single dense layers.

    Spectral norm, an ambiguous sentence: the paper writes "Spectral
    normalization was applied to all convolutional and transposed
    convolutional layers except the first and the last layers in the
    discriminator". Only the generator has transposed convolutions, so the
    sentence names the generator's layers too, and its exception ("in the
    discriminator") only the discriminator's first and last convolutions:
    `generator_spectral_norm=True` (default) normalises all five G
    transposed convolutions. The narrower reading (spectral norm in D only,
    the zoo's reading before this option existed) is
    `generator_spectral_norm=False`.

    Args:
        image_size: patch side (50 for IDC; 49..56 fit the layer stack).
        channels: image channels.
        latent_dim: size of z.
        num_classes: classes of the class head and the conditioning (2).
        width: the paper's width multiplier omega (1, 2, 4); filters are
            round(64 * layer * width), so tests may use a width below 1.
        discriminator_strides: strides of the five D convolutions.
        generator_spectral_norm: spectrally normalise the generator's
            transposed convolutions (the paper's reading; see above).
        gradient_penalty_weight: weight of the gradient penalty.
        gradient_penalty_target: target gradient norm of the penalty.
        fake_class_loss_weight: weight of the fakes' class loss in D.
        generator_class_loss_weight: weight of the class loss in G.
        class_weights: optional per-class weights of the real images' class
            loss (e.g. `gan_zoo.data.idc.class_weights`), for imbalance.
        learning_rate: Adam learning rate of both networks.
        beta_1: Adam beta_1.
        beta_2: Adam beta_2.
        seed: seed of the training random stream.

    Example:

    >>> gan = SemiSupervisedCGAN(width=1)
    >>> gan.compile()
    >>> train_gan(gan, records, run)  # the paper's plan: 200 epochs, decay, flips
    >>> p_idc = gan.classifier().predict(patches_in_0_1)[:, 1]
    """

    tracked_losses = ("d_loss", "g_loss", "class_loss", "gradient_penalty", "class_accuracy")
    # Options that change training, not the weights: weights load across them.
    weight_independent_options = (
        "gradient_penalty_weight", "gradient_penalty_target", "fake_class_loss_weight",
        "generator_class_loss_weight", "class_weights",
    )

    def __init__(
        self,
        image_size=50,
        channels=3,
        latent_dim=100,
        num_classes=2,
        width=1,
        discriminator_strides=(2, 2, 2, 2, 1),
        gradient_penalty_weight=10.0,
        gradient_penalty_target=1.0,
        fake_class_loss_weight=1.0,
        generator_class_loss_weight=1.0,
        class_weights=None,
        learning_rate=2e-4,
        beta_1=0.5,
        beta_2=0.999,
        seed=0,
        generator_spectral_norm=True,
        **kwargs,
    ):
        image_size = check.integer_in_range("image_size", image_size, 49, 56)
        channels = check.positive_int("channels", channels)
        latent_dim = check.positive_int("latent_dim", latent_dim)
        num_classes = check.integer_in_range("num_classes", num_classes, low=2)
        width = check.number_in_range("width", width, low=MIN_WIDTH)
        strides = check.sequence_of(
            check.positive_int, "discriminator_strides", discriminator_strides, length=5
        )
        if class_weights is not None:
            class_weights = check.sequence_of(
                check.non_negative_number, "class_weights", class_weights, length=num_classes
            )
        generator_spectral_norm = check.boolean("generator_spectral_norm", generator_spectral_norm)
        super().__init__(
            build_generator(
                image_size, latent_dim, num_classes, width, channels, generator_spectral_norm
            ),
            build_discriminator(image_size, num_classes, width, strides, channels),
            latent_dim=latent_dim,
            num_classes=num_classes,
            latent_distribution="normal",
            data_range=(-1.0, 1.0),
            seed=check.seed("seed", seed),
            **kwargs,
        )
        self.image_size = image_size
        self.channels = channels
        self.width = width
        self.discriminator_strides = strides
        self.generator_spectral_norm = generator_spectral_norm
        self.gradient_penalty_weight = check.non_negative_number(
            "gradient_penalty_weight", gradient_penalty_weight
        )
        self.gradient_penalty_target = check.non_negative_number(
            "gradient_penalty_target", gradient_penalty_target
        )
        self.fake_class_loss_weight = check.non_negative_number(
            "fake_class_loss_weight", fake_class_loss_weight
        )
        self.generator_class_loss_weight = check.non_negative_number(
            "generator_class_loss_weight", generator_class_loss_weight
        )
        self.class_weights = None if class_weights is None else list(class_weights)
        self.learning_rate = check.positive_number("learning_rate", learning_rate)
        self.beta_1 = check.number_in_range("beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = check.number_in_range("beta_2", beta_2, 0.0, 1.0, high_inclusive=False)

    def default_optimizers(self):
        return {
            group: keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2)
            for group in ("g", "d")
        }

    def training_plan(self, epochs=None, batch_size=None):
        """The paper's plan: 200 epochs of batch 128, random flips, the rate
        constant for the first half of the epochs, then linear decay to 0."""
        epochs = epochs or 200
        return TrainingPlan(
            epochs=epochs,
            batch_size=batch_size or 128,
            learning_rate=LinearDecay(constant_epochs=epochs // 2, total_epochs=epochs),
            flips=True,
            notes="Johnson 2020: 200 epochs, batch 128, constant then linear decay, flips",
        )

    def default_training(self):
        """200 epochs of batch 128; the rate decays linearly after epoch 100."""
        plan = self.training_plan()
        return {"epochs": plan.epochs, "batch_size": plan.batch_size,
                "constant_epochs": plan.learning_rate.constant_epochs}

    # ---------------------------------------------------------------- losses
    def _class_loss_of_labelled(self, logits, labels):
        """Summed CE of labelled examples / labelled examples in the global batch."""
        labelled = labels != UNLABELLED
        safe_labels = tf.where(labelled, labels, 0)
        mask = tf.cast(labelled, tf.float32)
        if self.class_weights is not None:
            mask *= tf.gather(tf.constant(self.class_weights, tf.float32), safe_labels)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(safe_labels, logits) * mask
        count = tf.reduce_sum(tf.cast(labelled, tf.float32))
        global_count = tf.distribute.get_replica_context().all_reduce("sum", count)
        correct = tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32) == safe_labels, tf.float32)
        self.trackers["class_accuracy"].update_state(correct, sample_weight=tf.cast(labelled, tf.float32))
        # Logged per labelled image, so batches with few labels weigh less.
        self.trackers["class_loss"].update_state(ce, sample_weight=tf.cast(labelled, tf.float32))
        return tf.reduce_sum(ce) / tf.maximum(global_count, 1.0)

    def _penalty_loss_scale(self):
        """The D optimizer's loss scale under mixed_float16, else None."""
        optimizer = self.optimizer_for("d")
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer.dynamic_scale
        return None

    def train_step(self, data):
        real, labels = self.unpack(data)
        if labels is None:
            raise ValueError("SemiSupervisedCGAN needs (images, labels) batches; label -1 = unlabelled.")
        batch = tf.shape(real)[0]
        z = self.sample_latent(batch, stream=0)
        fake_labels = self.sample_labels(batch, stream=1)
        alpha = self.random_uniform((batch, 1, 1, 1), stream=2)

        def real_fake_logit(images):
            return self.discriminator(images, training=True)["real_fake"]

        with tf.GradientTape() as tape:
            fake = self.generator([z, fake_labels], training=True)
            on_real = self.discriminator(real, training=True)
            on_fake = self.discriminator(fake, training=True)
            adversarial = losses.discriminator_bce(on_real["real_fake"], on_fake["real_fake"])
            penalty = losses.gradient_penalty(
                real_fake_logit, real, fake, alpha=alpha, target=self.gradient_penalty_target,
                loss_scale=self._penalty_loss_scale(),
            )
            fake_class = tf.nn.sparse_softmax_cross_entropy_with_logits(fake_labels, on_fake["class"])
            real_class = self._class_loss_of_labelled(on_real["class"], labels)
            d_loss = self.reduce(
                adversarial
                + self.gradient_penalty_weight * penalty
                + self.fake_class_loss_weight * fake_class
            ) + real_class
            d_scaled = self.scale_loss("d", d_loss)
        self.apply_group_gradients("d", tape, d_scaled)

        with tf.GradientTape() as tape:
            fake = self.generator([z, fake_labels], training=True)
            on_fake = self.discriminator(fake, training=True)
            g_per_example = losses.generator_bce(on_fake["real_fake"]) + (
                self.generator_class_loss_weight
                * tf.nn.sparse_softmax_cross_entropy_with_logits(fake_labels, on_fake["class"])
            )
            g_scaled = self.scale_loss("g", self.reduce(g_per_example))
        self.apply_group_gradients("g", tape, g_scaled)

        self.track(d_loss=adversarial, g_loss=g_per_example, gradient_penalty=penalty)
        return self.finish_step()

    # -------------------------------------------------------------- classifier
    def classifier(self):
        """The discriminator's class head as a classifier of [0, 1] images.

        Returns a Keras model (sharing the discriminator's weights) mapping
        float32 images in [0, 1], [B, H, W, C], to class probabilities
        [B, num_classes]; for IDC column 1 is P(IDC). Its `predict` refuses
        arrays outside [0, 1] (e.g. 0-255 pixels) with a ValueError.
        """
        images = keras.Input((self.image_size, self.image_size, self.channels), name="images")
        low, high = self.data_range
        scaled = keras.layers.Rescaling(high - low, offset=low, name="to_model_range")(images)
        logits = self.discriminator(scaled, training=False)["class"]
        probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
        return UnitRangeModel(images, probabilities, name="semi_cgan_classifier")


    @classmethod
    def from_config(cls, config):
        # Files saved before the option existed hold generators without
        # spectral norm: rebuild those, so their weights fit.
        config = dict(config)
        config.setdefault("generator_spectral_norm", False)
        return cls(**config)

    def get_config(self):
        return {
            "name": self.name,
            "image_size": self.image_size,
            "channels": self.channels,
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "width": self.width,
            "discriminator_strides": list(self.discriminator_strides),
            "generator_spectral_norm": self.generator_spectral_norm,
            "gradient_penalty_weight": self.gradient_penalty_weight,
            "gradient_penalty_target": self.gradient_penalty_target,
            "fake_class_loss_weight": self.fake_class_loss_weight,
            "generator_class_loss_weight": self.generator_class_loss_weight,
            "class_weights": self.class_weights,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "seed": self.seed,
        }


register_model(
    "semi_cgan",
    SemiSupervisedCGAN,
    config={
        "image_size": 50,
        "channels": 3,
        "latent_dim": 100,
        "num_classes": 2,
        "width": 1,
        "discriminator_strides": (2, 2, 2, 2, 1),
        "generator_spectral_norm": True,
        "gradient_penalty_weight": 10.0,
        "gradient_penalty_target": 1.0,
        "fake_class_loss_weight": 1.0,
        "generator_class_loss_weight": 1.0,
        "class_weights": None,
        "learning_rate": 2e-4,
        "beta_1": 0.5,
        "beta_2": 0.999,
        "seed": 0,
    },
    citation=CITATION,
    description="Semi-supervised conditional GAN whose two-headed discriminator detects IDC",
)
