"""Semi-supervised conditional GAN for IDC detection (Johnson, FTC 2020)."""

import keras
import tensorflow as tf

from gan_zoo import config_checks as check
from gan_zoo import losses
from gan_zoo.data.splits import UNLABELLED
from gan_zoo.layers.noise import noise_seed_scope
from gan_zoo.models.classifier import UnitRangeModel
from gan_zoo.models.gan import GAN
from gan_zoo.models.roles import Classifier
from gan_zoo.models.semi_cgan_networks import (HEADS, MIN_WIDTH, REAL_AUGMENTATIONS, augment_real,
                                               build_discriminator, build_generator)
from gan_zoo.registry import register_model
from gan_zoo.schedules import LinearDecay, TrainingPlan

CITATION = (
    "Johnson, 'Detecting Invasive Ductal Carcinoma with Semi-Supervised "
    "Conditional GANs', Future Technologies Conference 2020 (arXiv 1911.06216)."
)


# The preset `idc_cv`: options beyond the paper, chosen on the training
# patients of the IDC data only (see docs/models/semi_cgan.md).
IDC_CV_PRESET = {
    "generator_loss": "feature_matching",
    "gradient_penalty_weight": 1.0,
    "labelled_class_loss_weight": 10.0,
}


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
    below), a gradient penalty, Adam 2e-4 (0.5, 0.999) with the rate
    constant for the first half of training and then linear decay to 0 (its
    `training_plan()`: `gan_zoo.schedules.LinearDecay`), 200 epochs of batch
    128, random flips. After training the discriminator's class head is the
    IDC detector: `classifier()`.

    Losses per step (labels of unlabelled real images are -1):
    - D: non-saturating BCE on the real/fake head for ALL real images
      (labelled or not) and the fakes; plus `gradient_penalty_weight` times
      the WGAN-GP penalty (Gulrajani et al. 2017; per sample, on random
      interpolates of real and fake, on the real/fake logit); plus
      `labelled_class_loss_weight` (default 1; the paper gives no loss
      weights) times the class cross-entropy of LABELLED real images,
      normalised by the number of labelled images in the global batch (so
      it keeps its scale when labels are rare); plus `fake_class_loss_weight` times the class cross-entropy
      of the fakes against the class each was generated from (as in AC-GAN,
      Odena et al. 2017: fakes are extra, synthetic training data for the
      class head).
    - G: non-saturating BCE on the real/fake head plus
      `generator_class_loss_weight` (default 1) times the class
      cross-entropy of its fakes against their conditioning class. The
      second term is not in the paper's value function (Eq. 5 has the
      real/fake term alone): without it nothing ties a fake to the class G
      was given. Set it to 0 for Eq. 5 as written.
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
    transposed convolutions. The narrower reading (spectral norm in D only)
    is `generator_spectral_norm=False`, which a saved config without this
    option also loads as.

    Options beyond the paper (defaults = the paper's text; G's class term
    above is the one default beyond it), aimed at a class head that
    classifies unseen patients better (which helped: docs/models/semi_cgan.md):
    - `discriminator_head="k_plus_one"`: one head of K class logits with the
      fake class's logit fixed at 0 (Salimans et al. 2016), P(real) =
      Z / (Z + 1), Z = sum_k exp(l_k); the real/fake loss and the penalty
      then act on logsumexp(l), so unlabelled images train the class logits.
    - `fake_class_warmup_steps`: the fakes' class loss is left out for this
      many steps (early fakes are noise labelled with a class).
    - `generator_loss="feature_matching"`: G matches the global-batch mean of
      D's last convolutional features on real and generated images
      (Salimans et al. 2016) instead of fooling the real/fake head; its
      class loss stays.
    - `real_augmentation`: "rot90" (a random quarter turn per image), "stain"
      (H&E stain jitter, Tellez et al. 2018, `stain_sigma`) or both, applied
      to the real images D sees (not to fakes: G learns the data's own
      orientation and colours).
    - `discriminator_ema_half_life_steps`: `classifier()` (and the exported
      `classify`) use an exponential moving average of D's weights, taken
      when `classifier()` is called.
    - `labelled_class_loss_weight` above 1: the labelled images' class loss
      outweighs the adversarial terms in D (the class head underfits its
      own training patches at the default weight of 1).
    - `discriminator_dropout`: dropout of this rate after each of D's hidden
      convolutions (1-4) in training, as in Salimans et al.'s (2016)
      semi-supervised discriminator (which also drops 20% of the input: not
      done here); the exported classifier runs without it. Masks are drawn
      for the global batch from the model's stream, so N replicas drop as
      one device and a resumed run drops what it would have dropped.

    Preset `idc_cv` (`gan_zoo.load("semi_cgan", preset="idc_cv")`, or
    `--preset idc_cv` in the CLI and the recipe): feature matching for G, a
    gradient-penalty weight of 1 and a labelled class-loss weight of 10
    (`IDC_CV_PRESET`), chosen on training patients of the IDC data only;
    see docs/models/semi_cgan.md.

    Paper audit: docs/models/semi_cgan.md (paper item | paper | gan_zoo | option).

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
        labelled_class_loss_weight: weight of the labelled real images'
            class loss in D.
        generator_class_loss_weight: weight of the class loss in G.
        class_weights: optional per-class weights of the real images' class
            loss (e.g. `gan_zoo.data.idc.class_weights`), for imbalance.
        learning_rate: Adam learning rate of both networks.
        beta_1: Adam beta_1.
        beta_2: Adam beta_2.
        seed: seed of the training random stream.
        discriminator_head: "two_heads" (the paper) or "k_plus_one".
        fake_class_warmup_steps: steps before the fakes' class loss counts.
        generator_loss: "bce" (the paper) or "feature_matching".
        real_augmentation: None, "rot90", "stain" or "rot90,stain".
        stain_sigma: strength of the stain jitter.
        discriminator_ema_half_life_steps: None, or the half-life in steps of
            the averaged discriminator behind `classifier()`.
        discriminator_dropout: dropout after D's hidden convolutions (0: none).

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
        "labelled_class_loss_weight", "generator_class_loss_weight", "class_weights",
        "fake_class_warmup_steps", "generator_loss", "real_augmentation", "stain_sigma",
        "discriminator_dropout",
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
        discriminator_head="two_heads",
        fake_class_warmup_steps=0,
        generator_loss="bce",
        real_augmentation=None,
        stain_sigma=0.05,
        discriminator_ema_half_life_steps=None,
        labelled_class_loss_weight=1.0,
        discriminator_dropout=0.0,
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
        discriminator_head = check.one_of("discriminator_head", discriminator_head, HEADS)
        if real_augmentation is not None:
            names = [n.strip() for n in str(real_augmentation).split(",") if n.strip()]
            if not names or any(n not in REAL_AUGMENTATIONS for n in names) or len(set(names)) < len(names):
                raise check.ConfigError(
                    f"real_augmentation must be None or distinct names from {REAL_AUGMENTATIONS} "
                    f"joined by commas; got {real_augmentation!r}."
                )
            real_augmentation = ",".join(names)
        discriminator_dropout = check.number_in_range(
            "discriminator_dropout", discriminator_dropout, 0.0, 1.0, high_inclusive=False
        )
        super().__init__(
            build_generator(
                image_size, latent_dim, num_classes, width, channels, generator_spectral_norm
            ),
            build_discriminator(image_size, num_classes, width, strides, channels, discriminator_head,
                                discriminator_dropout),
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
        self.discriminator_dropout = discriminator_dropout
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
        self.labelled_class_loss_weight = check.non_negative_number(
            "labelled_class_loss_weight", labelled_class_loss_weight
        )
        self.class_weights = None if class_weights is None else list(class_weights)
        self.learning_rate = check.positive_number("learning_rate", learning_rate)
        self.beta_1 = check.number_in_range("beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = check.number_in_range("beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
        self.discriminator_head = discriminator_head
        self.fake_class_warmup_steps = check.non_negative_int("fake_class_warmup_steps",
                                                              fake_class_warmup_steps)
        self.generator_loss = check.one_of("generator_loss", generator_loss, ("bce", "feature_matching"))
        self.real_augmentation = real_augmentation
        self.stain_sigma = check.number_in_range("stain_sigma", stain_sigma, 0.0, 1.0)
        self.discriminator_ema_half_life_steps = check.optional(
            check.positive_number, "discriminator_ema_half_life_steps", discriminator_ema_half_life_steps
        )
        if self.discriminator_ema_half_life_steps is not None:
            self.enable_ema("discriminator", half_life_steps=self.discriminator_ema_half_life_steps)

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
        if self.real_augmentation:
            real = augment_real(real, self.real_augmentation, self.stream_seed(3, per_replica=False),
                                self.data_range, self.stain_sigma)
        fake_class_weight = self.fake_class_loss_weight
        if self.fake_class_warmup_steps:
            warm = tf.cast(self.step_counter, tf.int64) >= self.fake_class_warmup_steps
            fake_class_weight = fake_class_weight * tf.cast(warm, tf.float32)

        def discriminate(images, stream):
            # The seed scope feeds D's dropout masks (if any): one stream per
            # pass, shared by the replicas (masks are drawn for the global batch).
            with noise_seed_scope(self.stream_seed(stream, per_replica=False)):
                return self.discriminator(images, training=True)

        def real_fake_logit(images):
            return discriminate(images, stream=6)["real_fake"]

        with tf.GradientTape() as tape:
            fake = self.generator([z, fake_labels], training=True)
            on_real = discriminate(real, stream=4)
            on_fake = discriminate(fake, stream=5)
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
                + fake_class_weight * fake_class
            ) + self.labelled_class_loss_weight * real_class
            d_scaled = self.scale_loss("d", d_loss)
        self.apply_group_gradients("d", tape, d_scaled)
        if self.discriminator_ema_half_life_steps is not None:
            self.update_ema("discriminator")
        if self.generator_loss == "feature_matching":
            # training=False: this pass must not advance D's spectral-norm state.
            real_features = tf.stop_gradient(self.global_mean(
                self.discriminator(real, training=False)["features"]))

        with tf.GradientTape() as tape:
            fake = self.generator([z, fake_labels], training=True)
            on_fake = discriminate(fake, stream=7)
            if self.generator_loss == "feature_matching":
                # ||E f(real) - E f(fake)||^2 over the global batch, the same
                # value for every example (so `reduce` gives it once).
                gap = real_features - self.global_mean(on_fake["features"])
                adversarial_g = tf.reduce_sum(tf.square(gap)) * tf.ones([batch], tf.float32)
            else:
                adversarial_g = losses.generator_bce(on_fake["real_fake"])
            g_per_example = adversarial_g + (
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

        Returns a Keras model mapping float32 images in [0, 1], [B, H, W, C],
        to class probabilities [B, num_classes]; for IDC column 1 is P(IDC).
        Its `predict` refuses arrays outside [0, 1] (e.g. 0-255 pixels) with
        a ValueError. It shares the discriminator's weights, so it follows
        training; with `discriminator_ema_half_life_steps` it holds the
        average as of this call instead: call `classifier()` again after
        training.
        """
        images = keras.Input((self.image_size, self.image_size, self.channels), name="images")
        low, high = self.data_range
        scaled = keras.layers.Rescaling(high - low, offset=low, name="to_model_range")(images)
        discriminator = self.sampling_network("discriminator")  # its EMA when kept
        logits = discriminator(scaled, training=False)["class"]
        probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
        return UnitRangeModel(images, probabilities, name="semi_cgan_classifier")


    @classmethod
    def from_config(cls, config):
        # A config without `generator_spectral_norm` comes from a file whose
        # generator has no spectral norm: build it without, so its weights fit.
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
            "discriminator_head": self.discriminator_head,
            "fake_class_warmup_steps": self.fake_class_warmup_steps,
            "generator_loss": self.generator_loss,
            "real_augmentation": self.real_augmentation,
            "stain_sigma": self.stain_sigma,
            "discriminator_ema_half_life_steps": self.discriminator_ema_half_life_steps,
            "discriminator_dropout": self.discriminator_dropout,
            "gradient_penalty_weight": self.gradient_penalty_weight,
            "gradient_penalty_target": self.gradient_penalty_target,
            "fake_class_loss_weight": self.fake_class_loss_weight,
            "generator_class_loss_weight": self.generator_class_loss_weight,
            "labelled_class_loss_weight": self.labelled_class_loss_weight,
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
        "discriminator_head": "two_heads",
        "fake_class_warmup_steps": 0,
        "generator_loss": "bce",
        "real_augmentation": None,
        "stain_sigma": 0.05,
        "discriminator_ema_half_life_steps": None,
        "discriminator_dropout": 0.0,
        "gradient_penalty_weight": 10.0,
        "gradient_penalty_target": 1.0,
        "fake_class_loss_weight": 1.0,
        "generator_class_loss_weight": 1.0,
        "labelled_class_loss_weight": 1.0,
        "class_weights": None,
        "learning_rate": 2e-4,
        "beta_1": 0.5,
        "beta_2": 0.999,
        "seed": 0,
    },
    citation=CITATION,
    description="Semi-supervised conditional GAN whose two-headed discriminator detects IDC",
    presets={"idc_cv": IDC_CV_PRESET},
    modality="histology", capabilities=("generate", "classify"),
    inputs="generate: latent z [{latent_dim}] and a class label in [0, {num_classes}); "
    "classify: RGB patches [{image_size}, {image_size}, {channels}] in [0, 1]",
    outputs="generate: RGB patches [{image_size}, {image_size}, {channels}] in [0, 1]; "
    "classify: class probabilities [N, {num_classes}] (column 1: P(IDC))",
)
