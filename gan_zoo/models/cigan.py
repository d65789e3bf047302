"""ciGAN: the conditional infilling GAN of Wu, Wu, Cox & Lotter (2018).

The generator paints a lesion of a chosen class (malignant or not) into a
masked region of a mammogram patch, or removes one; everything outside the
mask is the input's. It is trained with an adversarial, a VGG-19 feature and
a boundary loss, after a pre-training of the generator on the feature loss
alone, with the paper's alternation rule.

    >>> gan = CIGAN(patch_size=64, feature_weights="imagenet")
    >>> gan.compile()                       # Adam 1e-4 for both networks
    >>> gan.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch, epochs=E)
    >>> malignant = gan.infill(patches, masks, target_class=MALIGNANT)
"""

import math

import keras
import numpy as np
import tensorflow as tf

from gan_zoo import config_checks as check
from gan_zoo import losses as gan_losses
from gan_zoo.models.adversarial import AdversarialModel
from gan_zoo.models.cigan_infilling import (  # noqa: F401  (class indices and names re-exported)
    CLASS_NAMES,
    MALIGNANT,
    NON_MALIGNANT,
    InfillingTranslator,
)
from gan_zoo.models.cigan_networks import (
    binarize,
    boundary_l1,
    boundary_weights,
    build_discriminator,
    build_generator,
    corrupt,
    feature_l1,
    generator_scales,
)
from gan_zoo.models.feature_networks import load_feature_network
from gan_zoo.models.replicas import num_replicas, replica_id
from gan_zoo.registry import register_model
from gan_zoo.schedules import Phase, TrainingPlan, UpdateSchedule

CITATION = (
    "Wu, E., Wu, K., Cox, D. & Lotter, W., 'Conditional Infilling GANs for Data "
    "Augmentation in Mammogram Classification', Image Analysis for Moving Organ, Breast, "
    "and Thoracic Images (RAMBO/BIA/TIA, MICCAI workshops) 2018, arXiv 1807.08093."
)
PAPER_WIDTHS = (128, 128, 64, 64, 32, 32, 32)  # 4x4 ... 256x256
PAPER_DISCRIMINATOR_WIDTHS = (32, 64, 128, 256, 512)
SIGMA_REFERENCE_SIZE = 256  # the paper's sigma 10 is in pixels of 256-px patches
_FEATURES = "features"


SWITCH_D_LOSSES = ("mean", "sum")


def alternation_schedule(pretrain_steps, threshold, max_phase_steps=None, d_loss="mean"):
    """Pre-training of G, then D and G in turn, each until its loss < threshold.

    Phases: "pretrain" (G on the feature loss, `pretrain_steps` steps; left
    out when 0), "d" (until D's loss < threshold), "g" (until `g_adv_loss` <
    threshold), then "d" again. `max_phase_steps` also ends a d or g phase
    after that many steps (not in the paper).

    Args:
        pretrain_steps: steps of the pre-training phase.
        threshold: the paper's 0.3.
        max_phase_steps: optional cap on a d or g phase.
        d_loss: which D loss the rule compares: "mean" (`d_loss`, the mean
            of the real and fake BCE terms, on the scale of G's loss) or
            "sum" (their sum, 2 x `d_loss`: the phase ends when `d_loss`
            < threshold / 2).
    """
    if d_loss not in SWITCH_D_LOSSES:
        raise ValueError(f"d_loss must be one of {SWITCH_D_LOSSES}; got {d_loss!r}.")
    d_threshold = threshold if d_loss == "mean" else threshold / 2
    phases = []
    if pretrain_steps:
        phases.append(Phase("pretrain", ("pretrain",), steps=int(pretrain_steps), next="d"))
    phases += [
        Phase("d", ("d",), steps=max_phase_steps, until_below=("d_loss", d_threshold)),
        Phase("g", ("g",), steps=max_phase_steps, until_below=("g_adv_loss", threshold), next="d"),
    ]
    return UpdateSchedule(phases)


# ------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="gan_zoo")
class CIGAN(InfillingTranslator, AdversarialModel):
    """Conditional infilling GAN (Wu et al. 2018) for mammogram patches.

    Generator (`build_generator`): a cascaded refinement network on the
    stack (context, mask, 2 one-hot class channels) from 4x4 up to the
    patch, widths 128, 128, 64, 64, 32, 32, 32 for 256-px patches; smaller
    patches have fewer scales and keep the widths of the coarse end (64 px:
    128, 128, 64, 64, 32). Discriminator (`build_discriminator`): five
    blocks of 3x3 conv + LeakyReLU + 2x2 max pool, 32 to 512 filters, and a
    dense unit with a sigmoid; the class enters as one-hot maps concatenated
    to the image. Class 0 is non-malignant ([1, 0]), class 1 malignant.

    Losses, weighted 1 / 10 / 10000 as in the paper:
    - adversarial: D minimises the mean of BCE(D(c, R), 1) and BCE(D(c, S),
      0) (`d_loss`, on the scale of G's loss); G minimises the
      non-saturating -log D(c, S) (`g_adv_loss`);
    - feature: the sum over pool1, pool2, pool3 of the mean absolute
      difference of the feature maps of R and S (`feature_loss`);
    - boundary: the mean over pixels of |w * (R - S)|, w the mask boundary
      blurred with a Gaussian of sigma 10 at 256 px, scaled with the patch
      (sigma 2.5 at 64 px; `boundary_weights`).

    Training (`alternation_schedule`): G is pre-trained on the feature loss
    alone for `pretrain_steps` steps (10,000 in the paper); then D trains
    until its loss drops below `switch_threshold` (0.3), then G on all
    losses until `g_adv_loss` drops below it, and so on. The paper's rule
    ("when the loss for either drops below 0.3") does not say whether D's
    loss is the sum of its real and fake terms or their mean; by default
    (`switch_d_loss="mean"`) it is the mean, `d_loss`, which is on the
    scale of G's loss (both are log 2 = 0.69 where D cannot tell real from
    fake), so one threshold means the same for both players;
    `switch_d_loss="sum"` compares the sum (D phases then run until
    `d_loss` < 0.15). The watched losses
    are those of each step's global batch; the phase is saved state, so a
    resumed run continues in the same phase. Epoch logs average each loss
    over the steps that computed it (0 when no step of the epoch did, e.g.
    `d_loss` during pre-training). Adam 1e-4 (0.9, 0.999, 1e-8)
    for both networks, batch 8. The masked region is filled with uniform
    noise drawn for the GLOBAL batch (each replica takes its rows), so N
    replicas train exactly as one device.

    The feature network (`gan_zoo.models.feature_networks`) is frozen and
    never saved with the model; it is built from `feature_weights` when
    training starts ("imagenet" as in the paper, a local VGG-19 weights
    file, a domain substitute `.keras` file, or "random" for tests), so
    loading a trained ciGAN for inference needs none of them. Inference
    (`infill`, its exported signature, the Fig. 1 rows) comes from
    `gan_zoo.models.cigan_infilling.InfillingTranslator`.

    Paper audit: docs/models/cigan.md (paper item | paper | gan_zoo | option).

    Args:
        patch_size: side of the square patches, a power of two >= 8 (256 in
            the paper; 64 or 128 for 256x256 whole mammograms).
        widths: generator widths from 4x4 up (the first
            `len(generator_scales(patch_size))` are used).
        discriminator_widths: filters of the discriminator's blocks.
        leaky_relu_slope: negative slope of D's LeakyReLUs (the paper does
            not give it).
        feature_weights: the feature network (see above).
        adversarial_weight: weight of the adversarial loss of G.
        feature_weight: weight of the feature loss.
        boundary_weight: weight of the boundary loss.
        boundary_sigma: the Gaussian's sigma in pixels of a 256-px patch.
        pretrain_steps: steps of feature-loss pre-training of G (0: none).
        train_steps: steps after pre-training (for `paper_epochs`).
        switch_threshold: the alternation rule's loss threshold.
        switch_d_loss: "mean" or "sum": which D loss the rule compares
            (see above).
        max_phase_steps: optional cap on the steps of one d or g phase.
        learning_rate: Adam learning rate of both networks.
        beta_1: Adam beta_1.
        beta_2: Adam beta_2.
        epsilon: Adam epsilon.
        seed: seed of the training noise stream.

    Example:

    >>> gan = gan_zoo.load("cigan", patch_size=64, feature_weights="vgg19_notop.h5")
    >>> gan.compile()
    >>> gan.fit(batches, epochs=gan.paper_epochs(steps_per_epoch), ...)
    >>> benign_version = gan.infill(malignant_patches, their_masks, target_class=0)
    """

    tracked_losses = ("d_loss", "g_adv_loss", "feature_loss", "boundary_loss", "g_loss")
    # Training options: weights saved under other values still fit (e.g. a
    # feature network file at another path on another machine).
    weight_independent_options = ("feature_weights", "adversarial_weight", "feature_weight",
                                  "boundary_weight", "boundary_sigma", "train_steps",
                                  "switch_threshold", "switch_d_loss", "max_phase_steps", "epsilon")

    def __init__(
        self,
        patch_size=256,
        widths=PAPER_WIDTHS,
        discriminator_widths=PAPER_DISCRIMINATOR_WIDTHS,
        leaky_relu_slope=0.2,
        feature_weights="imagenet",
        adversarial_weight=1.0,
        feature_weight=10.0,
        boundary_weight=10000.0,
        boundary_sigma=10.0,
        pretrain_steps=10000,
        train_steps=100000,
        switch_threshold=0.3,
        switch_d_loss="mean",
        max_phase_steps=None,
        learning_rate=1e-4,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        seed=0,
        **kwargs,
    ):
        patch_size = check.positive_int("patch_size", patch_size)
        if patch_size < 8 or patch_size & (patch_size - 1):
            raise check.ConfigError(f"patch_size must be a power of two >= 8; got {patch_size!r}.")
        scales = generator_scales(patch_size)
        widths = check.sequence_of(check.positive_int, "widths", widths)
        if len(widths) < len(scales):
            raise check.ConfigError(
                f"widths must hold {len(scales)} values for {patch_size}-px patches (scales {scales}); "
                f"got {list(widths)!r}."
            )
        discriminator_widths = check.sequence_of(check.positive_int, "discriminator_widths",
                                                 discriminator_widths)
        slope = check.number_in_range("leaky_relu_slope", leaky_relu_slope, 0.0, 1.0,
                                      high_inclusive=False)
        if not isinstance(feature_weights, str) or not feature_weights:
            raise check.ConfigError(
                f"feature_weights must be 'imagenet', 'random' or a file path; got {feature_weights!r}."
            )
        self.adversarial_weight = check.non_negative_number("adversarial_weight", adversarial_weight)
        self.feature_weight = check.non_negative_number("feature_weight", feature_weight)
        self.boundary_weight = check.non_negative_number("boundary_weight", boundary_weight)
        self.boundary_sigma = check.positive_number("boundary_sigma", boundary_sigma)
        self.pretrain_steps = check.non_negative_int("pretrain_steps", pretrain_steps)
        self.train_steps = check.positive_int("train_steps", train_steps)
        self.switch_threshold = check.positive_number("switch_threshold", switch_threshold)
        self.switch_d_loss = check.one_of("switch_d_loss", switch_d_loss, SWITCH_D_LOSSES)
        self.max_phase_steps = check.optional(check.positive_int, "max_phase_steps", max_phase_steps)
        self.learning_rate = check.positive_number("learning_rate", learning_rate)
        self.beta_1 = check.number_in_range("beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = check.number_in_range("beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
        self.epsilon = check.positive_number("epsilon", epsilon)
        seed = check.seed("seed", seed)
        super().__init__(
            {
                "generator": build_generator(patch_size, widths),
                "discriminator": build_discriminator(patch_size, discriminator_widths,
                                                     negative_slope=slope),
            },
            # Built when training starts (build_feature_network): inference
            # needs no feature network, and "imagenet" downloads.
            frozen_networks={},
            data_range=(0.0, 1.0),
            seed=seed,
            **kwargs,
        )
        self.patch_size = patch_size
        self.widths = list(widths)
        self.discriminator_widths = list(discriminator_widths)
        self.leaky_relu_slope = slope
        self.feature_weights = feature_weights
        self.feature_network_info = None
        self.set_update_schedule(
            alternation_schedule(self.pretrain_steps, self.switch_threshold, self.max_phase_steps,
                                 self.switch_d_loss)
        )

    # ------------------------------------------------------------ training
    @property
    def effective_boundary_sigma(self):
        """The boundary blur's sigma at this patch size (10 at 256 px)."""
        return self.boundary_sigma * self.patch_size / SIGMA_REFERENCE_SIZE

    def update_groups(self):
        return {"g": ("generator",), "d": ("discriminator",)}

    def default_optimizers(self):
        return {
            group: keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2,
                                         epsilon=self.epsilon)
            for group in ("g", "d")
        }

    def training_plan(self, epochs=None, batch_size=None):
        """Batch 8, constant rate; epochs from `paper_epochs(steps_per_epoch)`."""
        return TrainingPlan(
            epochs=epochs or 1,
            batch_size=batch_size or 8,
            notes="Wu et al.: batch 8, Adam 1e-4, 10,000 pre-training + 100,000 iterations "
                  "(paper_epochs(steps_per_epoch) turns them into epochs)",
        )

    def paper_epochs(self, steps_per_epoch):
        """Epochs that cover `pretrain_steps + train_steps` iterations."""
        return math.ceil((self.pretrain_steps + self.train_steps) / int(steps_per_epoch))

    def build_feature_network(self, allow_random_fallback=False):
        """Builds (once) the frozen feature network named by `feature_weights`.

        Args:
            allow_random_fallback: when the ImageNet weights cannot be had,
                use random VGG-19 weights with a warning instead of failing
                (benchmarks only: the time of a step does not depend on
                the weights' values).

        Returns:
            The network: grayscale [0, 1] images -> [pool1, pool2, pool3].
        """
        frozen = self._frozen.items
        if _FEATURES not in frozen:
            with self.distribute_strategy.scope():
                try:
                    network, info = load_feature_network(self.feature_weights, self.patch_size)
                except RuntimeError:
                    if not allow_random_fallback:
                        raise
                    network, info = load_feature_network("random", self.patch_size)
            network.trainable = False
            frozen[_FEATURES] = network
            self.feature_network_info = info
        return frozen[_FEATURES]

    def make_train_function(self, force=False):
        self.build_feature_network()
        return super().make_train_function(force)

    def updates(self, name):
        # A direct trace of train_step (e.g. a FLOP count) runs the phase a
        # fresh model starts in.
        phase = self.active_phase or self.update_schedule.phases[0]
        return name in phase.updates

    def feature_loss(self, real, fake):
        network = self.build_feature_network()
        return feature_l1(network(real, training=False), network(fake, training=False))

    def unpack_infill(self, data):
        """(images, binary masks, labels) of a training batch.

        Batches are dicts `{"images": x or (x, y), "masks": m or (m, y)}`
        (aligned `training_streams`), optionally with `"labels"`, or tuples
        `(images, masks, labels)`.
        """
        if isinstance(data, dict):
            images, labels = _split(data["images"])
            masks, mask_labels = _split(data["masks"])
            labels = data.get("labels", labels if labels is not None else mask_labels)
        elif isinstance(data, (tuple, list)) and len(data) == 3:
            images, masks, labels = data
        else:
            raise ValueError("ciGAN batches are {'images', 'masks'} dicts or (images, masks, labels).")
        if labels is None:
            raise ValueError("ciGAN is class-conditional: its batches need labels.")
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        return tf.cast(images, tf.float32), binarize(masks), labels

    def _corruption_noise(self, images):
        # Noise for the whole global batch from one seed; each replica takes
        # its rows, so the replicas together draw what one device would.
        local = tf.shape(images)[0]
        replicas = num_replicas()
        shape = tf.concat([[local * replicas], tf.shape(images)[1:]], axis=0)
        noise = tf.random.stateless_uniform(shape, self.stream_seed(0, per_replica=False))
        start = replica_id() * local
        return noise[start : start + local]

    def train_step(self, data):
        images, masks, labels = self.unpack_infill(data)
        context = corrupt(images, masks, self._corruption_noise(images))
        g_inputs = [context, masks, labels]
        logged = {}
        if self.updates("pretrain"):
            with tf.GradientTape() as tape:
                fake = self.generator(g_inputs, training=True)
                feature = self.feature_loss(images, fake)
                scaled = self.scale_loss("g", self.reduce(self.feature_weight * feature))
            self.apply_group_gradients("g", tape, scaled)
            logged.update(feature_loss=feature, g_loss=self.feature_weight * feature)
        if self.updates("d"):
            fake = tf.stop_gradient(self.generator(g_inputs, training=True))
            with tf.GradientTape() as tape:
                real_logits = self.discriminator([images, labels], training=True)
                fake_logits = self.discriminator([fake, labels], training=True)
                d_loss = 0.5 * gan_losses.discriminator_bce(real_logits, fake_logits)
                scaled = self.scale_loss("d", self.reduce(d_loss))
            self.apply_group_gradients("d", tape, scaled)
            logged.update(d_loss=d_loss)
        if self.updates("g"):
            weights = boundary_weights(masks, self.effective_boundary_sigma)
            with tf.GradientTape() as tape:
                fake = self.generator(g_inputs, training=True)
                fake_logits = self.discriminator([fake, labels], training=True)
                adversarial = gan_losses.generator_bce(fake_logits)
                feature = self.feature_loss(images, fake)
                boundary = boundary_l1(images, fake, weights)
                total = (self.adversarial_weight * adversarial + self.feature_weight * feature
                         + self.boundary_weight * boundary)
                scaled = self.scale_loss("g", self.reduce(total))
            self.apply_group_gradients("g", tape, scaled)
            logged.update(g_adv_loss=adversarial, feature_loss=feature, boundary_loss=boundary,
                          g_loss=total)
        self.track(**logged)
        return self.finish_step()

    def train_step_flops(self, network_flops):
        """FLOPs per example of a step of the first phase (benchmarks/throughput.py).

        `network_flops(network)` -> (forward FLOPs, first layer's FLOPs).
        Backpropagation costs the forward again for weight gradients and
        again (less the first layer) for input gradients.
        """
        g, g_first = network_flops(self.generator)
        d, d_first = network_flops(self.discriminator)
        f, f_first = network_flops(self.build_feature_network(allow_random_fallback=True))
        features = 2 * f + (f - f_first)  # real and fake forward, input gradients of the fake
        updates = self.update_schedule.phases[0].updates
        if "pretrain" in updates:
            return 3 * g - g_first + features
        if "d" in updates:
            return g + 2 * (3 * d - d_first)
        return 3 * g - g_first + features + 2 * d - d_first

    def synthetic_batch(self, batch_size, seed=0):
        """A benchmark batch: patches, non-empty square masks and classes."""
        self.build_feature_network(allow_random_fallback=True)
        rng = np.random.default_rng(seed)
        size = self.patch_size
        images = rng.uniform(0, 1, (batch_size, size, size, 1)).astype(np.float32)
        masks = np.zeros_like(images)
        for mask in masks:
            side = int(rng.integers(size // 8, size // 3 + 1))
            y, x = rng.integers(0, size - side, 2)
            mask[y : y + side, x : x + side] = 1.0
        labels = rng.integers(0, 2, batch_size).astype(np.int32)
        return {"images": images, "masks": masks, "labels": labels}

    def get_config(self):
        return {
            "name": self.name,
            "patch_size": self.patch_size,
            "widths": list(self.widths),
            "discriminator_widths": list(self.discriminator_widths),
            "leaky_relu_slope": self.leaky_relu_slope,
            "feature_weights": self.feature_weights,
            "adversarial_weight": self.adversarial_weight,
            "feature_weight": self.feature_weight,
            "boundary_weight": self.boundary_weight,
            "boundary_sigma": self.boundary_sigma,
            "pretrain_steps": self.pretrain_steps,
            "train_steps": self.train_steps,
            "switch_threshold": self.switch_threshold,
            "switch_d_loss": self.switch_d_loss,
            "max_phase_steps": self.max_phase_steps,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "seed": self.seed,
        }


def _split(value):
    if isinstance(value, (tuple, list)):
        return value[0], (value[1] if len(value) > 1 else None)
    return value, None


register_model(
    "cigan",
    CIGAN,
    config={
        "patch_size": 256,
        "widths": list(PAPER_WIDTHS),
        "discriminator_widths": list(PAPER_DISCRIMINATOR_WIDTHS),
        "leaky_relu_slope": 0.2,
        "feature_weights": "imagenet",
        "adversarial_weight": 1.0,
        "feature_weight": 10.0,
        "boundary_weight": 10000.0,
        "boundary_sigma": 10.0,
        "pretrain_steps": 10000,
        "train_steps": 100000,
        "switch_threshold": 0.3,
        "switch_d_loss": "mean",
        "max_phase_steps": None,
        "learning_rate": 1e-4,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
        "seed": 0,
    },
    citation=CITATION,
    description="ciGAN: class-conditional infilling of mammogram lesions (cascaded refinement G, "
    "VGG-19 feature + boundary losses, loss-triggered alternation)",
    modality="mammography",
    capabilities=("infill",),
    inputs="grayscale patches [{patch_size}, {patch_size}, 1] in [0, 1], lesion masks of "
        "the same shape, a target class (1: malignant lesion, 0: non-malignant tissue)",
    outputs="the patches with the masked region infilled, same shape, in [0, 1]",
)
