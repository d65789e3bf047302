"""CycleGAN (Zhu et al. 2017) as Chi, Fang & Wang use it: IDC <-> non-IDC patches.

Two generators (`generator_ab`: A -> B, `generator_ba`: B -> A), two
PatchGAN discriminators (`discriminator_a` judges images of domain A,
`discriminator_b` of domain B), one image pool of past fakes per direction,
LSGAN losses, cycle-consistency and identity losses. Training takes two
unpaired streams: every batch is `{"a": images_a, "b": images_b}`, as
`gan_zoo.data.streams.training_streams(..., pairing="unpaired")` yields
(`gan_zoo.data.streams.unpaired_source` builds that stream from image
records for `train_gan`).
"""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo import losses
from gan_zoo.layers.image_pool import ImagePool
from gan_zoo.models.adversarial import AdversarialModel
from gan_zoo.models.cyclegan_networks import (
    MAX_DOWNSAMPLINGS,
    build_discriminator,
    build_generator,
    cycle_loss,
    default_downsamplings,
    default_residual_blocks,
    identity_loss,
)
from gan_zoo.models.roles import ImageTranslator
from gan_zoo.registry import register_model
from gan_zoo.schedules import LinearDecay, TrainingPlan

CITATION = (
    "Zhu, Park, Isola & Efros, 'Unpaired Image-to-Image Translation using "
    "Cycle-Consistent Adversarial Networks', ICCV 2017 (arXiv 1703.10593); used "
    "for IDC augmentation by Chi, Fang & Wang, 'Synthetic Data Augmentation using "
    "GAN for Improved Breast Cancer Classification' (UC Berkeley, 2018)."
)
DIRECTIONS = ("a_to_b", "b_to_a")
LR_DECAYS = ("run", "reference")
def _check(name, value, valid, description):
    if not valid:
        raise ValueError(f"{name} must be {description}, got {value!r}.")


@keras.saving.register_keras_serializable(package="gan_zoo")
class CycleGAN(ImageTranslator, AdversarialModel):
    """CycleGAN (Zhu et al. 2017), the translator Chi et al. use between IDC classes.

    Follows the official implementation's defaults: ResNet generators
    (c7s1-64, d128, d256, residual blocks R256, u128, u64, c7s1-3, tanh;
    reflection padding, instance normalisation without affine parameters),
    PatchGAN discriminators (C64-C128-C256 stride 2, C512 stride 1, a 4x4
    convolution to one channel; LeakyReLU 0.2), N(0, 0.02) initialisation,
    LSGAN losses (the discriminator loss halved), cycle weight 10 in both
    directions, identity weight 0.5 x 10, an image pool of 50 past fakes per
    direction (once full, with probability 1/2 a stored fake is shown and
    replaced), one Adam(2e-4, beta_1 0.5) for both generators and one for
    both discriminators, the rate constant for half the epochs then linearly
    decayed to 0 (`training_plan`). Per step: one update of both generators,
    then one of both discriminators on the (pooled) fakes of that forward
    pass, as the reference orders them.

    Choices for small patches (documented, and options):

    - `residual_blocks=None`: 9 above 128 px, 6 at 128 px and below (the
      reference's `resnet_9blocks` / `resnet_6blocks` rule): 6 for IDC.
    - `discriminator_downsamplings=None`: the 70x70 PatchGAN has three
      stride-2 layers; on a 50x50 patch each of its outputs would see the
      whole patch plus padding (a global discriminator). We keep the most
      stride-2 layers, at most 3, whose receptive field fits the image:
      2 for 50 px, so each of the 10x10 outputs judges a 34x34 window, 68% of
      the patch side (the reference's 70 px window is 27% of 256 px; a 16 px
      window would keep that ratio but see little more than a few nuclei).
    - Batch size 1 in the reference; `training_plan(batch_size=...)` may
      raise it (instance norm makes the networks independent of the batch).
    - `lr_decay`: the reference keeps the rate for 100 epochs and decays it
      to 0 over 100 more. Chi et al. trained 25 epochs and do not say how
      the rate moved. "run" (default) fits the reference's shape to the
      epochs trained (constant for the first half, decay over the second);
      "reference" keeps its epoch numbers (100 + 100), so a 25-epoch run
      trains at a constant rate.

    Domains: Chi et al. translate non-IDC (A, label 0) <-> IDC (B, label 1).

    Paper audit: docs/models/cyclegan.md (paper item | paper | gan_zoo | option).

    Args:
        image_size: side of the square images.
        channels: image channels.
        generator_filters: width of the generators' first layer (64).
        discriminator_filters: width of the discriminators' first layer (64).
        residual_blocks: residual blocks of each generator (None: by size).
        discriminator_downsamplings: stride-2 layers of each PatchGAN
            (None: by size, see above).
        cycle_weight: lambda of both cycle losses (10).
        identity_weight: the identity loss weight as a fraction of the
            cycle weight (0.5; 0 turns it off).
        pool_size: past fakes kept per direction (50; 0: no pool).
        learning_rate: Adam learning rate of both groups.
        beta_1: Adam beta_1 of both groups.
        lr_decay: "run" or "reference" (see above).
        seed: seed of the training random stream (the pools' draws).
        **kwargs: `keras.Model` arguments (e.g. `name`).

    Example:

    >>> gan = CycleGAN(image_size=50)
    >>> gan.compile()
    >>> source = unpaired_source(non_idc_records, idc_records, image_size=50)
    >>> train_gan(gan, source, run, epochs=25)
    >>> fake_idc = gan.translate(non_idc_images, direction="a_to_b")
    """

    tracked_losses = (
        "g_loss", "d_loss", "g_ab_loss", "g_ba_loss", "cycle_loss", "identity_loss",
        "d_a_loss", "d_b_loss",
    )

    def __init__(
        self,
        image_size=50,
        channels=3,
        generator_filters=64,
        discriminator_filters=64,
        residual_blocks=None,
        discriminator_downsamplings=None,
        cycle_weight=10.0,
        identity_weight=0.5,
        pool_size=50,
        learning_rate=2e-4,
        beta_1=0.5,
        lr_decay="run",
        seed=0,
        **kwargs,
    ):
        image_size = int(image_size)
        _check("image_size", image_size, image_size >= 8, "at least 8")
        _check("channels", channels, channels in (1, 3), "1 or 3")
        for option, value in (("generator_filters", generator_filters),
                              ("discriminator_filters", discriminator_filters)):
            _check(option, value, int(value) >= 1, "a positive integer")
        blocks = (
            default_residual_blocks(image_size) if residual_blocks is None else int(residual_blocks)
        )
        _check("residual_blocks", residual_blocks, blocks >= 1, "a positive integer or None")
        downsamplings = (
            default_downsamplings(image_size)
            if discriminator_downsamplings is None else int(discriminator_downsamplings)
        )
        _check("discriminator_downsamplings", discriminator_downsamplings,
               1 <= downsamplings <= MAX_DOWNSAMPLINGS and image_size >= 2 ** (downsamplings + 1),
               f"in 1..{MAX_DOWNSAMPLINGS} with image_size >= 2**(downsamplings + 1), or None")
        _check("cycle_weight", cycle_weight, float(cycle_weight) >= 0, ">= 0")
        _check("identity_weight", identity_weight, float(identity_weight) >= 0, ">= 0")
        _check("pool_size", pool_size, int(pool_size) >= 0, ">= 0")
        _check("learning_rate", learning_rate, float(learning_rate) > 0, "> 0")
        _check("beta_1", beta_1, 0 <= float(beta_1) < 1, "in [0, 1)")
        _check("lr_decay", lr_decay, lr_decay in LR_DECAYS, f"one of {LR_DECAYS}")
        g_filters, d_filters = int(generator_filters), int(discriminator_filters)
        networks = {
            name: build_generator(image_size, channels, g_filters, blocks, name)
            for name in ("generator_ab", "generator_ba")
        }
        networks.update({
            name: build_discriminator(image_size, channels, d_filters, downsamplings, name)
            for name in ("discriminator_a", "discriminator_b")
        })
        super().__init__(networks, data_range=(-1.0, 1.0), seed=seed, **kwargs)
        self.image_size, self.channels = image_size, int(channels)
        self.generator_filters, self.discriminator_filters = g_filters, d_filters
        self.residual_blocks_option, self.residual_blocks = residual_blocks, blocks
        self.downsamplings_option = discriminator_downsamplings
        self.discriminator_downsamplings = downsamplings
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.pool_size = int(pool_size)
        self.learning_rate, self.beta_1 = float(learning_rate), float(beta_1)
        self.lr_decay = lr_decay
        # One pool per direction: fakes of A for discriminator_a, of B for
        # discriminator_b. Built now, so their buffers exist before a
        # distributed fit and are saved with the model.
        shape = (None, image_size, image_size, self.channels)
        self.pool_a = ImagePool(self.pool_size, name="pool_a")
        self.pool_b = ImagePool(self.pool_size, name="pool_b")
        self.pool_a.build(shape)
        self.pool_b.build(shape)

    # ------------------------------------------------------------ training
    def update_groups(self):
        # The reference chains both generators into one optimizer, and both
        # discriminators into another.
        return {
            "g": ("generator_ab", "generator_ba"),
            "d": ("discriminator_a", "discriminator_b"),
        }

    def default_optimizers(self):
        return {
            group: keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1, beta_2=0.999)
            for group in ("g", "d")
        }

    def training_plan(self, epochs=None, batch_size=None):
        """The reference's plan: batch 1, 200 epochs, rate constant for the first half
        then linearly decayed to 0 (with `epochs` given and `lr_decay="run"`, the
        same halves of it; with "reference", the reference's 100 + 100 epochs)."""
        epochs = int(epochs or 200)
        decay = (LinearDecay(constant_epochs=epochs // 2, total_epochs=epochs) if self.lr_decay == "run"
                 else LinearDecay(constant_epochs=100, total_epochs=max(200, epochs)))
        return TrainingPlan(
            epochs=epochs,
            batch_size=batch_size or 1,
            learning_rate=decay,
            flips=True,
            notes=(
                "CycleGAN reference: 100 epochs constant + 100 linear decay, batch 1, "
                "random flips (histology has no orientation: horizontal and vertical); "
                "Chi et al. trained 25 epochs"
            ),
        )

    @staticmethod
    def _domain(batch):
        images, _ = AdversarialModel.unpack(batch)
        return images

    def generator_losses(self, real_a, real_b, training=True):
        """Per-example generator losses and the fakes of one forward pass.

        Returns:
            ({name: per-example loss [B]}, fake_a, fake_b), the losses being
            `g_ab_loss`, `g_ba_loss` (LSGAN), `cycle_loss` (both directions,
            weighted), `identity_loss` (both, weighted) and their sum `g_loss`.
        """
        g_ab, g_ba = self.generator_ab, self.generator_ba
        fake_b = g_ab(real_a, training=training)
        fake_a = g_ba(real_b, training=training)
        reconstructed_a = g_ba(fake_b, training=training)
        reconstructed_b = g_ab(fake_a, training=training)
        found = {
            "g_ab_loss": losses.generator_lsgan(self.discriminator_b(fake_b, training=training)),
            "g_ba_loss": losses.generator_lsgan(self.discriminator_a(fake_a, training=training)),
            "cycle_loss": cycle_loss(real_a, reconstructed_a, self.cycle_weight)
            + cycle_loss(real_b, reconstructed_b, self.cycle_weight),
        }
        if self.identity_weight > 0:
            found["identity_loss"] = identity_loss(
                real_b, g_ab(real_b, training=training), self.cycle_weight, self.identity_weight
            ) + identity_loss(
                real_a, g_ba(real_a, training=training), self.cycle_weight, self.identity_weight
            )
        else:
            found["identity_loss"] = tf.zeros_like(found["cycle_loss"])
        parts = ("g_ab_loss", "g_ba_loss", "cycle_loss", "identity_loss")
        found["g_loss"] = sum(found[k] for k in parts)
        return found, fake_a, fake_b

    def train_step(self, data):
        if isinstance(data, (tuple, list)) and data and isinstance(data[0], dict):
            data = data[0]  # train_on_batch packs x as (x, None, None)
        if not isinstance(data, dict) or set(data) != {"a", "b"}:
            raise ValueError(
                "CycleGAN trains on {'a': images, 'b': images} batches (two unpaired "
                "streams, e.g. training_streams(..., pairing='unpaired'))."
            )
        real_a, real_b = self._domain(data["a"]), self._domain(data["b"])

        with tf.GradientTape() as tape:
            g_losses, fake_a, fake_b = self.generator_losses(real_a, real_b)
            scaled = self.scale_loss("g", self.reduce(g_losses["g_loss"]))
        self.apply_group_gradients("g", tape, scaled)

        # The pools see the global batch and draw the same on every replica.
        shown_a = self.pool_a.query(fake_a, self.stream_seed(31, per_replica=False))
        shown_b = self.pool_b.query(fake_b, self.stream_seed(32, per_replica=False))
        with tf.GradientTape() as tape:
            d_a, d_b = (
                losses.discriminator_lsgan(critic(real, training=True), critic(shown, training=True))
                for critic, real, shown in (
                    (self.discriminator_a, real_a, shown_a),
                    (self.discriminator_b, real_b, shown_b),
                )
            )
            scaled = self.scale_loss("d", self.reduce(d_a + d_b))
        self.apply_group_gradients("d", tape, scaled)

        self.track(**g_losses, d_loss=d_a + d_b, d_a_loss=d_a, d_b_loss=d_b)
        return self.finish_step()

    def synthetic_batch(self, batch_size, seed=0):
        """One {"a", "b"} batch of uniform images in [-1, 1] (for benchmarks)."""
        rng = np.random.default_rng(seed)
        shape = (batch_size, self.image_size, self.image_size, self.channels)
        return {domain: rng.uniform(-1.0, 1.0, shape).astype("float32") for domain in ("a", "b")}

    def train_step_flops(self, network_flops):
        """Conv FLOPs per example of one train step, for `benchmarks/throughput.py`.

        `network_flops(net) -> (forward, first layer)`. G step: each generator
        runs forward three times (fake, reconstruction, identity), each pass
        backpropagated to its weights and input (F + F + F), except the
        input gradient of the first layer for the passes on real images
        (fake and identity); each discriminator runs forward and back to its
        input once. D step: each discriminator forward and back to its
        weights on a real and a pooled fake image. (The profiler counts the
        input gradients of the reflection-padded convolutions on the padded
        size, so its total is higher.)
        """
        g_forward, g_first = network_flops(self.generator_ab)
        d_forward, _ = network_flops(self.discriminator_a)
        passes, on_real = (3, 2) if self.identity_weight > 0 else (2, 1)
        g_step = 2 * (passes * 3 * g_forward - on_real * g_first) + 2 * (2 * d_forward)
        d_step = 2 * 2 * (2 * d_forward)
        return g_step + d_step

    # ------------------------------------------------------------ translating
    def call(self, inputs, training=False):
        return self.generator_ab(inputs, training=training)

    def translation_directions(self):
        return DIRECTIONS

    def translation_image_shape(self):
        return (self.image_size, self.image_size, self.channels)

    def check_conditions(self, images, direction="a_to_b", **conditions):
        if conditions:
            raise ValueError(f"CycleGAN.translate takes direction= only, not {sorted(conditions)}.")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}.")
        if tuple(images.shape[1:]) != self.translation_image_shape():
            raise ValueError(
                f"CycleGAN translates {self.translation_image_shape()} images, "
                f"got {tuple(images.shape[1:])}."
            )
        return {"direction": direction}

    def _translate(self, images, direction="a_to_b"):
        network = self.generator_ab if direction == "a_to_b" else self.generator_ba
        return network(images, training=False)

    def preview(self, seed=1234, inputs=None, per_row=8, rows=4):
        """Rows: images of A, their translations to B, images of B, theirs to A.

        `inputs` is `{"a": images, "b": images}` in [0, 1] (fixed across epochs).
        """
        if not isinstance(inputs, dict) or set(inputs) != {"a", "b"}:
            raise ValueError("CycleGAN.preview needs inputs={'a': images, 'b': images} in [0, 1].")
        a = np.asarray(inputs["a"], np.float32)[:per_row]
        b = np.asarray(inputs["b"], np.float32)[:per_row]
        grid = [a, self.translate(a, direction="a_to_b"), b, self.translate(b, direction="b_to_a")]
        return np.concatenate(grid, axis=0), 4

    def get_config(self):
        return {
            "name": self.name,
            "image_size": self.image_size,
            "channels": self.channels,
            "generator_filters": self.generator_filters,
            "discriminator_filters": self.discriminator_filters,
            "residual_blocks": self.residual_blocks_option,
            "discriminator_downsamplings": self.downsamplings_option,
            "cycle_weight": self.cycle_weight,
            "identity_weight": self.identity_weight,
            "pool_size": self.pool_size,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "lr_decay": self.lr_decay,
            "seed": self.seed,
        }


register_model(
    "cyclegan",
    CycleGAN,
    config={
        "image_size": 50,
        "channels": 3,
        "generator_filters": 64,
        "discriminator_filters": 64,
        "residual_blocks": None,
        "discriminator_downsamplings": None,
        "cycle_weight": 10.0,
        "identity_weight": 0.5,
        "pool_size": 50,
        "learning_rate": 2e-4,
        "beta_1": 0.5,
        "lr_decay": "run",
        "seed": 0,
    },
    citation=CITATION,
    description="CycleGAN (ResNet generators, PatchGAN, LSGAN, image pools) for IDC <-> non-IDC "
    "translation as in Chi et al.",
    modality="histology",
    capabilities=("translate",),
    inputs="RGB patches [{image_size}, {image_size}, {channels}] in [0, 1] of one domain "
        "(a: non-IDC, b: IDC) and a direction, a_to_b or b_to_a",
    outputs="patches of the other domain, same shape, in [0, 1]",
)
