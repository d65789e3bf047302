"""DiaGRAM: a multi-task GAN and whole-mammogram classifier (Shams et al. 2018)."""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo import config_checks as check
from gan_zoo.export_lib import classify_endpoint
from gan_zoo.models.adversarial import AdversarialModel
from gan_zoo.models.diagram_networks import (
    DOWNSAMPLING,
    POOLINGS,
    _path_model,
    build_discriminator,
    build_extended,
    build_features,
    build_generator,
)
from gan_zoo.models.roles import Classifier, LatentGenerator
from gan_zoo.registry import register_model
from gan_zoo.schedules import TrainingPlan, UpdateSchedule

CITATION = (
    "Shams, Platania, Zhang, Kim, Lee & Park, 'Deep Generative Breast Cancer "
    "Screening and Diagnosis', MICCAI 2018, LNCS 11071, pp. 859-867 "
    "(doi:10.1007/978-3-030-00934-2_95)."
)


@keras.saving.register_keras_serializable(package="gan_zoo")
class DiaGRAM(Classifier, LatentGenerator, AdversarialModel):
    """DiaGRAM (Deep GeneRAtive Multi-task) for whole-mammogram classification.

    Shams et al., "Deep Generative Breast Cancer Screening and Diagnosis",
    MICCAI 2018. Four networks (Fig. 1a):

    - G, the generator: one dense and four transposed-convolution layers
      from z ~ U[-1, 1]^n to an s x s patch (s = 32).
    - F, the feature extractor: a four-layer CNN, fully convolutional, run
      on ROI patches (real and generated) and on whole images.
    - D, the discriminator: ONE dense layer with m + 1 outputs on F's patch
      features: m softmax class units (patch class) and one sigmoid unit
      (real vs generated).
    - E, the extended classifier: six residual blocks and an output layer
      on F's whole-image feature maps.

    Losses (Eqs. 4-7): L_g = -log P(r=1|G(z)); L_d = -[log P(r=1|C) +
    log P(r=0|G(z))]; L_c = patch cross-entropy; L_i = whole-image
    cross-entropy. Training follows Algorithm 1: an iteration is k steps
    of [update (F, D) on L_d + L_c over a minibatch of patches and as many
    z; update (F, E) on L_i over a minibatch of whole images], then one
    update of G on L_g with fresh z. Update groups: "fd" = (F, D), "fe" =
    (F, E), "g" = (G,), one optimizer each; F is in two groups. The
    schedule is `UpdateSchedule.ratio(k, critic=("fd", "fe"), both=("fd",
    "fe", "g"))`: k - 1 steps of fd + fe, then a step of fd + fe followed by
    the G update, so every train step consumes one batch of patches and
    one of images and the update order is exactly Algorithm 1's (k = 1:
    all three updates every step).

    `use_gan=False` is the paper's ablation (Sec. 3.1, Fig. 3): no
    generator, D without the real/fake unit, trained on L_c and L_i.

    Batches are dicts `{"patches": (patches, labels), "images": (images,
    labels)}` with images in [-1, 1], e.g. from
    `gan_zoo.data.mammography.streams.diagram_streams` (two unpaired
    streams, `training_streams(..., pairing="unpaired")`). The paper's m
    (patches) and n (images) per minibatch are one batch size here.

    Choices the paper leaves open (all options): widths of F (32, 64, 128,
    256), kernel 5, leaky ReLU 0.2, no normalisation in F (see
    `build_features`); E's widths 256 and strides (1, 2, 1, 2, 1, 1) with
    He et al.'s basic block and global average pooling before the output
    layer; G's widths (256, 128, 64, 32), kernel 5, batch norm + ReLU
    (DCGAN); latent size 100; whole images 256 x 256 (aspect kept, padded);
    Adam 1e-4 with beta_1 0.5 for all three groups; k = 1 (Goodfellow et
    al.'s choice; Algorithm 1 leaves k open). Batch norm is synchronized
    across replicas, so N replicas train like one device.

    Transfer (Sec. 2.4): `classification_path()` returns F + E as a plain
    Keras model of [0, 1] images (a copy, to fine-tune on a target set for
    20 epochs, `fine_tune_epochs`); `classifier()` is the same path sharing
    this model's weights (the `classify` role and signature).

    Paper audit: docs/models/diagram.md (paper item | paper | gan_zoo | option).

    Args:
        patch_size: s, the side of ROI patches and generated patches
            (a multiple of 16).
        image_size: side of the whole images (a multiple of 16).
        num_classes: m, classes of patches and images (2: benign/malignant).
        latent_dim: size of z.
        use_gan: False for the ablation without G and the real/fake unit.
        k: fd + fe steps per G step (Algorithm 1's k).
        feature_filters: widths of F's four convolutions.
        feature_kernel_size: kernel of F's convolutions.
        extended_filters: widths of E's six residual blocks.
        extended_strides: strides (1 or 2) of E's six blocks.
        extended_pooling: E's global pooling before the output layer,
            "average" (He et al.) or "max" (the strongest local evidence).
        generator_filters: widths of G's dense map and first three
            transposed convolutions.
        generator_kernel_size: kernel of G's transposed convolutions.
        batch_norm_momentum: momentum of the moving statistics of every
            batch norm (E and G; the paper is silent: Keras' 0.99). Inference
            uses those statistics, so a short run (a few hundred steps, e.g.
            fine-tuning on a few hundred images) classifies better with a
            lower momentum such as 0.9, which follows the batches faster.
        learning_rate: Adam learning rate of every group.
        beta_1: Adam beta_1.
        beta_2: Adam beta_2.
        fine_tune_epochs: epochs of fine-tuning on a target set (20).
        seed: seed of the training random stream.

    Example:

    >>> model = DiaGRAM(image_size=128)
    >>> model.compile()
    >>> streams = diagram_streams(data, batch_size=32)
    >>> model.fit(streams.dataset, steps_per_epoch=streams.steps_per_epoch, epochs=30)
    >>> p_malignant = model.classify(whole_images_0_1)[:, 1]
    """

    tracked_losses = ("d_loss", "patch_class_loss", "image_class_loss", "g_loss",
                      "patch_accuracy", "image_accuracy")
    # Options that change training, not the weights: weights load across them.
    weight_independent_options = ("batch_norm_momentum",)

    def __init__(
        self,
        patch_size=32,
        image_size=256,
        num_classes=2,
        latent_dim=100,
        use_gan=True,
        k=1,
        feature_filters=(32, 64, 128, 256),
        feature_kernel_size=5,
        extended_filters=(256, 256, 256, 256, 256, 256),
        extended_strides=(1, 2, 1, 2, 1, 1),
        extended_pooling="average",
        generator_filters=(256, 128, 64, 32),
        generator_kernel_size=5,
        batch_norm_momentum=0.99,
        learning_rate=1e-4,
        beta_1=0.5,
        beta_2=0.999,
        fine_tune_epochs=20,
        seed=0,
        **kwargs,
    ):
        self.patch_size = _multiple_of_16("patch_size", patch_size)
        self.image_size = _multiple_of_16("image_size", image_size)
        num_classes = check.integer_in_range("num_classes", num_classes, low=2)
        latent_dim = check.positive_int("latent_dim", latent_dim)
        self.use_gan = check.boolean("use_gan", use_gan)
        self.k = check.positive_int("k", k)
        self.feature_filters = check.sequence_of(check.positive_int, "feature_filters",
                                                 feature_filters, length=4)
        self.feature_kernel_size = check.positive_int("feature_kernel_size", feature_kernel_size)
        self.extended_filters = check.sequence_of(check.positive_int, "extended_filters",
                                                  extended_filters, length=6)
        self.extended_strides = check.sequence_of(
            lambda name, v: check.integer_in_range(name, v, 1, 2), "extended_strides",
            extended_strides, length=6)
        self.extended_pooling = check.one_of("extended_pooling", extended_pooling, POOLINGS)
        self.generator_filters = check.sequence_of(check.positive_int, "generator_filters",
                                                   generator_filters, length=4)
        self.generator_kernel_size = check.positive_int("generator_kernel_size", generator_kernel_size)
        self.batch_norm_momentum = check.number_in_range("batch_norm_momentum", batch_norm_momentum,
                                                         0.0, 1.0, high_inclusive=False)
        self.learning_rate = check.positive_number("learning_rate", learning_rate)
        self.beta_1 = check.number_in_range("beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = check.number_in_range("beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
        self.fine_tune_epochs = check.positive_int("fine_tune_epochs", fine_tune_epochs)
        seed = check.seed("seed", seed)

        features = build_features(self.feature_filters, self.feature_kernel_size)
        patch_map = self.patch_size // DOWNSAMPLING
        networks = {
            "features": features,
            "discriminator": build_discriminator(
                (patch_map, patch_map, self.feature_filters[-1]), num_classes, self.use_gan),
            "extended": self._build_extended(num_classes),
        }
        if self.use_gan:
            networks["generator"] = build_generator(
                self.patch_size, latent_dim, self.generator_filters, self.generator_kernel_size,
                self.batch_norm_momentum)
        super().__init__(networks, data_range=(-1.0, 1.0), seed=seed, **kwargs)
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.latent_distribution = "uniform"
        if self.use_gan:
            self.set_update_schedule(
                UpdateSchedule.ratio(self.k, critic=("fd", "fe"), both=("fd", "fe", "g")))
        else:
            self.set_update_schedule(UpdateSchedule.every_step(("fd", "fe")))
            # The ablation has no real/fake task: log no adversarial losses.
            for name in ("d_loss", "g_loss"):
                del self.trackers[name]

    def _build_extended(self, num_classes):
        return build_extended(self.feature_filters[-1], num_classes, self.extended_filters,
                              self.extended_strides, self.extended_pooling, self.batch_norm_momentum)

    # -------------------------------------------------------------- groups
    def update_groups(self):
        groups = {"fd": ("features", "discriminator"), "fe": ("features", "extended")}
        if self.use_gan:
            groups["g"] = ("generator",)
        return groups

    def default_optimizers(self):
        return {
            group: keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2)
            for group in self.update_groups()
        }

    def training_plan(self, epochs=None, batch_size=None):
        """30 epochs (of whole images) of batch 32, left-right mirroring.

        The paper mirrors images across the vertical axis only; it gives no
        epochs or batch size: these are documented choices (see
        docs/results/diagram.md).
        """
        return TrainingPlan(
            epochs=epochs or 30,
            batch_size=batch_size or 32,
            flips="horizontal",
            notes="Shams et al. 2018 give no epochs or batch size: 30 epochs, batch 32 chosen",
        )

    # -------------------------------------------------------------- losses
    def _patch_outputs(self, patches, training):
        logits = self.discriminator(self.features(patches, training=training), training=training)
        class_logits = logits[:, : self.num_classes]
        real_logit = logits[:, self.num_classes] if self.use_gan else None
        return class_logits, real_logit

    @staticmethod
    def _pair(batch, name):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"DiaGRAM needs (images, labels) in the '{name}' stream of each batch.")
        return tf.cast(batch[0], tf.float32), tf.cast(tf.reshape(batch[1], [-1]), tf.int32)

    def train_step(self, data):
        if not isinstance(data, dict) or not {"patches", "images"} <= set(data):
            raise ValueError('DiaGRAM batches are dicts {"patches": (x, y), "images": (x, y)}.')
        patches, patch_labels = self._pair(data["patches"], "patches")
        images, image_labels = self._pair(data["images"], "images")
        batch = tf.shape(patches)[0]
        logs = {}
        if self.updates("fd"):
            if self.use_gan:
                z = self.sample_latent(batch, stream=0)
            with tf.GradientTape() as tape:
                class_logits, real_logit = self._patch_outputs(patches, True)
                class_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(patch_labels, class_logits)
                loss = class_loss
                if self.use_gan:
                    fake = self.generator(z, training=True)
                    _, fake_logit = self._patch_outputs(fake, True)
                    d_loss = tf.nn.softplus(-real_logit) + tf.nn.softplus(fake_logit)
                    loss = loss + d_loss
                    logs["d_loss"] = d_loss
                scaled = self.scale_loss("fd", self.reduce(loss))
            self.apply_group_gradients("fd", tape, scaled)
            logs["patch_class_loss"] = class_loss
            logs["patch_accuracy"] = _correct(class_logits, patch_labels)
        if self.updates("fe"):
            with tf.GradientTape() as tape:
                logits = self.extended(self.features(images, training=True), training=True)
                image_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(image_labels, logits)
                scaled = self.scale_loss("fe", self.reduce(image_loss))
            self.apply_group_gradients("fe", tape, scaled)
            logs["image_class_loss"] = image_loss
            logs["image_accuracy"] = _correct(logits, image_labels)
        if self.use_gan and self.updates("g"):
            z = self.sample_latent(batch, stream=1)  # a fresh minibatch of z
            with tf.GradientTape() as tape:
                _, fake_logit = self._patch_outputs(self.generator(z, training=True), True)
                g_loss = tf.nn.softplus(-fake_logit)
                scaled = self.scale_loss("g", self.reduce(g_loss))
            self.apply_group_gradients("g", tape, scaled)
            logs["g_loss"] = g_loss
        self.track(**logs)
        return self.finish_step()

    # --------------------------------------------------------- classification
    def classifier(self):
        """F + E on [0, 1] whole images -> probabilities, sharing this model's weights."""
        return _path_model(self.features, self.extended, self.image_size, "diagram_classifier")

    def patch_classifier(self):
        """F + D's class units on [0, 1] ROI patches -> probabilities (shared weights).

        The patch (mass) classifier the multi-task training also learns.
        """
        patches = keras.Input((self.patch_size, self.patch_size, 1), name="patches")
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_model_range")(patches)
        logits = self.discriminator(self.features(x))
        class_logits = keras.layers.Lambda(lambda t: t[:, : self.num_classes], name="class_units")(logits) \
            if self.use_gan else logits
        probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(class_logits)
        return keras.Model(patches, probabilities, name="diagram_patch_classifier")

    def classification_path(self):
        """A COPY of F + E as a plain Keras model ([0, 1] images -> probabilities).

        For transfer (Sec. 2.4): fine-tune it on the target data (compile
        with `fine_tune_optimizer()`, fit for `fine_tune_epochs`) without
        touching this model. It holds only Keras layers, so it saves and
        loads as a `.keras` file without gan_zoo, and `gan_zoo.export`
        writes it with a `classify` signature.
        """
        features = build_features(self.feature_filters, self.feature_kernel_size)
        extended = self._build_extended(self.num_classes)
        features.set_weights(self.features.get_weights())
        extended.set_weights(self.extended.get_weights())
        return _path_model(features, extended, self.image_size, "diagram_classification_path")

    def fine_tune_optimizer(self):
        """The optimizer of the fine-tuning: Adam with this model's settings."""
        return keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2)

    # ------------------------------------------------------------- roles
    @property
    def conditional(self):
        # G is unconditional; num_classes counts D's and E's classes.
        return False

    def generate(self, *args, **kwargs):
        self._require_gan("generate")
        return super().generate(*args, **kwargs)

    def preview(self, seed=1234, inputs=None, per_row=8, rows=4):
        self._require_gan("preview")
        return super().preview(seed=seed, inputs=inputs, per_row=per_row, rows=rows)

    def _require_gan(self, what):
        if not self.use_gan:
            raise ValueError(f"DiaGRAM with use_gan=False has no generator: cannot {what}.")

    def serving_endpoints(self):
        if self.use_gan:
            return super().serving_endpoints()
        return {"classify": classify_endpoint(self.classifier())}

    def synthetic_batch(self, batch_size, seed=0):
        """One {"patches", "images"} batch in [-1, 1] with labels (benchmarks)."""
        rng = np.random.default_rng(seed)
        s, size = self.patch_size, self.image_size

        def part(side):
            images = rng.uniform(-1.0, 1.0, (batch_size, side, side, 1)).astype("float32")
            return images, rng.integers(0, self.num_classes, batch_size).astype("int32")

        return {"patches": part(s), "images": part(size)}

    def train_step_flops(self, network_flops):
        """FLOPs per example of one Algorithm-1 step (averaged over the k:1 cycle).

        `network_flops(net) -> (forward, first layer)` counts a network with
        concrete shapes, so F and E are cloned at the patch and image sizes.
        A backward pass costs the forward again for the weight gradients and
        again (less the first layer) for the input gradients. fd: G forward,
        F + D forward and backward on a real and a fake patch; fe: F + E
        forward and backward on a whole image; g (every k-th step): G forward
        and backward, F + D forward and input gradients on a fake patch.
        """
        def at(network, shape):
            return network_flops(keras.models.clone_model(network, input_tensors=keras.Input(shape)))

        patch = (self.patch_size, self.patch_size, 1)
        f_patch, f_first = at(self.features, patch)
        d_forward, _ = network_flops(self.discriminator)
        f_image, _ = at(self.features, (self.image_size, self.image_size, 1))
        size = self.image_size // DOWNSAMPLING
        e_forward, _ = at(self.extended, (size, size, self.feature_filters[-1]))

        def trained(forward, first):
            return forward + forward + (forward - first)

        patches = trained(f_patch + d_forward, f_first)
        step = patches + trained(f_image + e_forward, f_first)
        if self.use_gan:
            g_forward, g_first = network_flops(self.generator)
            step += g_forward + patches
            step += (trained(g_forward, g_first) + 2 * (f_patch + d_forward)) / self.k
        return step

    def get_config(self):
        return {
            "name": self.name,
            "patch_size": self.patch_size,
            "image_size": self.image_size,
            "num_classes": self.num_classes,
            "latent_dim": self.latent_dim,
            "use_gan": self.use_gan,
            "k": self.k,
            "feature_filters": list(self.feature_filters),
            "feature_kernel_size": self.feature_kernel_size,
            "extended_filters": list(self.extended_filters),
            "extended_strides": list(self.extended_strides),
            "extended_pooling": self.extended_pooling,
            "batch_norm_momentum": self.batch_norm_momentum,
            "generator_filters": list(self.generator_filters),
            "generator_kernel_size": self.generator_kernel_size,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "fine_tune_epochs": self.fine_tune_epochs,
            "seed": self.seed,
        }


def _multiple_of_16(name, value):
    value = check.integer_in_range(name, value, low=DOWNSAMPLING)
    if value % DOWNSAMPLING:
        raise check.ConfigError(f"{name} must be a multiple of {DOWNSAMPLING} (>= 16); got {value!r}.")
    return value


def _correct(logits, labels):
    return tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)


register_model(
    "diagram",
    DiaGRAM,
    config={
        "patch_size": 32,
        "image_size": 256,
        "num_classes": 2,
        "latent_dim": 100,
        "use_gan": True,
        "k": 1,
        "feature_filters": (32, 64, 128, 256),
        "feature_kernel_size": 5,
        "extended_filters": (256, 256, 256, 256, 256, 256),
        "extended_strides": (1, 2, 1, 2, 1, 1),
        "extended_pooling": "average",
        "batch_norm_momentum": 0.99,
        "generator_filters": (256, 128, 64, 32),
        "generator_kernel_size": 5,
        "learning_rate": 1e-4,
        "beta_1": 0.5,
        "beta_2": 0.999,
        "fine_tune_epochs": 20,
        "seed": 0,
    },
    citation=CITATION,
    description="DiaGRAM: multi-task GAN (ROI patches) + whole-mammogram classifier, "
                "transfer by fine-tuning F + E",
    modality="mammography",
    capabilities=("classify", "generate"),
    inputs="classify: whole grayscale mammograms [{image_size}, {image_size}, 1] in [0, 1]; "
        "generate (use_gan=True): latent z [{latent_dim}] ~ U[-1, 1]",
    outputs="classify: class probabilities [N, {num_classes}]; generate: grayscale ROI "
        "patches [{patch_size}, {patch_size}, 1] in [0, 1]",
)
