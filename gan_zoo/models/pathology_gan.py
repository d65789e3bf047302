"""PathologyGAN (Quiros, Murray-Smith & Yuan, MIDL 2020) for H&E tissue tiles."""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo import losses
from gan_zoo.layers.diff_augment import DifferentiableAugmentation, global_batch_random, parse_policy
from gan_zoo.layers.noise import noise_seed_scope
from gan_zoo.models.gan import GAN
from gan_zoo.models.pathology_gan_latents import StyleLatents
from gan_zoo.models.pathology_gan_networks import (
    BASE_SIZE,
    NOISE_LAYOUTS,
    build_critic,
    build_generator,
    build_mapping,
    build_synthesis,
    orthogonal_penalty,
    regularised_kernels,
)
from gan_zoo.models.replicas import num_replicas
from gan_zoo.registry import register_model
from gan_zoo.schedules import TrainingPlan, UpdateSchedule

CITATION = (
    "Quiros, Murray-Smith & Yuan, 'PathologyGAN: Learning deep representations of "
    "cancer tissue', MIDL 2020 (arXiv 1907.02644); architecture from the authors' "
    "public TF1 code (github.com/AdalbertoCq/Pathology-GAN)."
)

# Random streams of a train step (see AdversarialModel.stream_seed).
_D_FAKE, _D_AUGMENT, _GP_ALPHA, _GP_AUGMENT, _G_FAKE, _G_AUGMENT = 10, 20, 30, 32, 40, 50


def _check(name, value, ok, valid):
    if not ok:
        raise ValueError(f"{name} must be {valid}, got {value!r}.")


@keras.saving.register_keras_serializable(package="gan_zoo")
class PathologyGAN(StyleLatents, GAN):
    """PathologyGAN: a style-based, self-attention, relativistic GAN for H&E tiles.

    A mapping network turns z (200-d normal) into w; w is tiled over
    `stages + 1` style slots and, with probability 0.5 per training batch,
    the slots from a random cut point in 1..stages on take the w of a second
    z (style mixing). The synthesis network grows a 7x7 map to the image
    through `stages` residual AdaIN stages with noise inputs and
    self-attention at 28x28, ending in a sigmoid (images in [0, 1]). The
    critic mirrors it with residual blocks, stride-2 down-convs,
    self-attention at 28x28 and a dense head. Spectral normalisation and
    orthogonal init everywhere (see `pathology_gan_networks` for the layer
    list and the details read from the reference code).

    Loss: relativistic average standard GAN (the means over the GLOBAL
    batch) plus a per-sample gradient penalty of weight 0.65 on random
    interpolates of real and generated images (the reference code sums its
    penalty over the batch; the per-sample mean is the standard WGAN-GP
    form, chosen by the project's notes on the paper, not stated in it).
    n_critic = 5: four critic steps, then one step of both networks, each
    on its own batch. Adam 1e-4, beta_1 0.5, beta_2 0.999 (the reference's
    0.9 is never passed to its optimizer), batch 64, 45 epochs.

    Options beyond the paper:
    - `ema_decay`: sample and export from an exponential moving average of
      the generator (off in the paper).
    - `orthogonal_regularization`: BigGAN's `||W^T W * (1 - I)||_F^2` on
      every conv / dense kernel outside AdaIN, times this weight (the
      reference builds it with scale 1e-4 but never adds it to the loss: 0
      is the paper as trained).
    - `augment_policy` (+ `augment_*`): differentiable augmentation of
      everything D sees (`gan_zoo.layers.diff_augment`), for small datasets.
    - `stages`: the image side is 7 * 2**stages (5: 224; tests use 2 or 3).

    Randomness (z, style mixing, noise inputs, penalty interpolation,
    augmentation) is drawn for the global batch from the model's stream, so
    a step on N replicas equals a step on one device and a restored run
    continues bit-exactly. Mixed float16 is refused: the gradient penalty's
    inner gradient would need its own loss scaling; use mixed_bfloat16.

    The latent space (`map_latent`, `synthesize` and their exported
    signatures) comes from `gan_zoo.models.pathology_gan_latents.StyleLatents`.

    Paper audit: docs/models/pathology_gan.md (paper item | paper | gan_zoo | option).

    Args:
        stages: generator / critic stages; image side 7 * 2**stages.
        latent_dim: size of z and w (200 in the released model).
        mapping_blocks: residual dense blocks of the mapping network.
        base_channels: channels of the last generator stage (32); stage s
            from the image has base * 2**s.
        initial_channels: channels of the 7x7 map (256).
        dense_units: width of the generator's first dense layer and the
            critic's dense head (1024).
        attention_resolution: side of the maps self-attention follows (28);
            0 for none.
        fused_scaling: ProGAN-style fused up/down-scaling kernels as in the
            reference; False for plain 2x2 / 4x4 stride-2 convs.
        noise_layout: "per_channel" (the reference) or "per_pixel" (StyleGAN).
        noise_at_inference: draw the noise inputs when sampling too (seeded
            by `generate`'s seed); False samples at their mean, 0.
        style_mixing_probability: probability of mixing two w per batch.
        gradient_penalty_weight: weight of the gradient penalty.
        n_critic: critic updates per generator update.
        learning_rate_g, learning_rate_d: Adam learning rates.
        beta_1, beta_2: Adam betas of both networks.
        orthogonal_regularization: weight of the orthogonal regulariser.
        ema_decay: None (no EMA generator) or a decay in [0, 1).
        augment_policy: None, or DiffAugment transforms, e.g.
            "color,translation,cutout".
        augment_probability: probability of each transform (1: DiffAugment).
        augment_adaptive: tune the probability with ADA's r_t heuristic.
        augment_target: ADA's r_t target.
        augment_speed_images: images over which ADA may move p by 1.
        seed: seed of the training random stream.
        **kwargs: `keras.Model` arguments (e.g. `name`).

    Example:

    >>> gan = PathologyGAN(stages=3, augment_policy="color,translation,cutout")
    >>> gan.compile()
    >>> gan.fit(images_in_0_1, epochs=45, batch_size=64)   # or gan_zoo train_gan
    >>> tiles = gan.generate(16, seed=0)                 # [16, 56, 56, 3] in [0, 1]
    """

    tracked_losses = ("d_loss", "g_loss", "gradient_penalty")

    def __init__(
        self,
        stages=5,
        latent_dim=200,
        mapping_blocks=4,
        base_channels=32,
        initial_channels=256,
        dense_units=1024,
        attention_resolution=28,
        fused_scaling=True,
        noise_layout="per_channel",
        noise_at_inference=False,
        style_mixing_probability=0.5,
        gradient_penalty_weight=0.65,
        n_critic=5,
        learning_rate_g=1e-4,
        learning_rate_d=1e-4,
        beta_1=0.5,
        beta_2=0.999,
        orthogonal_regularization=0.0,
        ema_decay=None,
        augment_policy=None,
        augment_probability=1.0,
        augment_adaptive=False,
        augment_target=0.6,
        augment_speed_images=500_000,
        seed=0,
        **kwargs,
    ):
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            raise ValueError(
                "pathology_gan does not support mixed_float16: its gradient penalty's inner "
                "gradient would underflow without a loss scale of its own; use mixed_bfloat16 "
                "or float32."
            )
        stages, latent_dim = int(stages), int(latent_dim)
        _check("stages", stages, 1 <= stages <= 6, "an integer in 1..6 (image side 7 * 2**stages)")
        _check("latent_dim", latent_dim, latent_dim >= 1, "a positive integer")
        _check("mapping_blocks", mapping_blocks, int(mapping_blocks) >= 0, "a non-negative integer")
        for name, value in (("base_channels", base_channels), ("initial_channels", initial_channels),
                            ("dense_units", dense_units)):
            _check(name, value, int(value) >= 1, "a positive integer")
        block_sizes = [BASE_SIZE * 2**s for s in range(1, stages)]
        _check("attention_resolution", attention_resolution,
               int(attention_resolution) in [0, *block_sizes],
               f"0 (none) or a residual-block side shared by both networks {block_sizes}")
        _check("noise_layout", noise_layout, noise_layout in NOISE_LAYOUTS, f"one of {NOISE_LAYOUTS}")
        _check("style_mixing_probability", style_mixing_probability,
               0.0 <= float(style_mixing_probability) <= 1.0, "in [0, 1]")
        _check("gradient_penalty_weight", gradient_penalty_weight,
               float(gradient_penalty_weight) >= 0.0, "non-negative")
        _check("n_critic", n_critic, int(n_critic) >= 1, "a positive integer")
        for name, value in (("learning_rate_g", learning_rate_g), ("learning_rate_d", learning_rate_d)):
            _check(name, value, float(value) > 0.0, "positive")
        for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            _check(name, value, 0.0 <= float(value) < 1.0, "in [0, 1)")
        _check("orthogonal_regularization", orthogonal_regularization,
               float(orthogonal_regularization) >= 0.0, "non-negative")
        _check("ema_decay", ema_decay, ema_decay is None or 0.0 <= float(ema_decay) < 1.0,
               "None or in [0, 1)")
        if augment_policy is not None:
            augment_policy = ",".join(parse_policy(augment_policy))
        for name, value in (("augment_probability", augment_probability), ("augment_target", augment_target)):
            _check(name, value, 0.0 <= float(value) <= 1.0, "in [0, 1]")
        _check("augment_speed_images", augment_speed_images, float(augment_speed_images) > 0, "positive")
        image_size = BASE_SIZE * 2**stages
        common = dict(base_channels=int(base_channels), attention_resolution=int(attention_resolution),
                      fused_scaling=bool(fused_scaling))
        mapping = build_mapping(latent_dim, int(mapping_blocks))
        synthesis = build_synthesis(
            latent_dim, stages, initial_channels=int(initial_channels), dense_units=int(dense_units),
            noise_layout=noise_layout, noise_at_inference=bool(noise_at_inference), **common,
        )
        generator = build_generator(mapping, synthesis, stages)
        critic = build_critic(image_size, stages, dense_units=int(dense_units), **common)
        super().__init__(
            generator, critic, latent_dim=latent_dim, latent_distribution="normal",
            data_range=(0.0, 1.0), seed=seed, **kwargs,
        )
        self.stages, self.image_size = stages, image_size
        self.mapping_blocks = int(mapping_blocks)
        self.base_channels, self.initial_channels = int(base_channels), int(initial_channels)
        self.dense_units = int(dense_units)
        self.attention_resolution = int(attention_resolution)
        self.fused_scaling = bool(fused_scaling)
        self.noise_layout, self.noise_at_inference = noise_layout, bool(noise_at_inference)
        self.style_mixing_probability = float(style_mixing_probability)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.n_critic = int(n_critic)
        self.learning_rate_g, self.learning_rate_d = float(learning_rate_g), float(learning_rate_d)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.orthogonal_regularization = float(orthogonal_regularization)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.augment_policy = augment_policy
        self.augment_probability = float(augment_probability)
        self.augment_adaptive = bool(augment_adaptive)
        self.augment_target = float(augment_target)
        self.augment_speed_images = float(augment_speed_images)
        self.augmentation = None
        if augment_policy is not None:
            self.augmentation = DifferentiableAugmentation(
                augment_policy, probability=augment_probability, adaptive=augment_adaptive,
                target=augment_target, adjust_speed_images=augment_speed_images,
                data_range=self.data_range, name="augmentation",
            )
            self.trackers["augment_p"] = keras.metrics.Mean(name="augment_p")
            if self.augment_adaptive:
                self.trackers["r_t"] = keras.metrics.Mean(name="r_t")
        self.set_update_schedule(UpdateSchedule.ratio(self.n_critic, critic=("d",), both=("d", "g")))
        if self.ema_decay is not None:
            self.enable_ema("generator", decay=self.ema_decay)

    # ------------------------------------------------------------- networks
    @property
    def mapping(self):
        """The mapping network z -> w (trained; part of the "g" group)."""
        return self.generator.get_layer("mapping")

    @property
    def synthesis(self):
        """The synthesis network styles [B, stages + 1, w] -> images."""
        return self.generator.get_layer("synthesis")

    def enable_ema(self, network_name, **kwargs):
        super().enable_ema(network_name, **kwargs)
        # Work-around: the base marks the copy non-trainable, which empties
        # its `trainable_weights`, so `ExponentialMovingAverage.copy_to`
        # cannot match the shadows to its weights (fails for every model).
        # The copy is not tracked by the model, so being trainable is harmless.
        self._ema_copies.items[network_name].trainable = True

    @property
    def num_style_slots(self):
        return self.stages + 1

    def default_optimizers(self):
        return {
            "g": keras.optimizers.Adam(self.learning_rate_g, beta_1=self.beta_1, beta_2=self.beta_2),
            "d": keras.optimizers.Adam(self.learning_rate_d, beta_1=self.beta_1, beta_2=self.beta_2),
        }

    def compile(self, *args, **kwargs):
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            raise ValueError("pathology_gan does not support mixed_float16; use mixed_bfloat16.")
        super().compile(*args, **kwargs)

    def training_plan(self, epochs=None, batch_size=None):
        """The paper's plan: 45 epochs of batch 64 at a constant rate."""
        return TrainingPlan(
            epochs=epochs or 45, batch_size=batch_size or 64,
            notes="PathologyGAN: 45 epochs, batch 64, Adam 1e-4 (beta 0.5, 0.999), n_critic 5",
        )

    def synthetic_batch(self, batch_size, seed=0):
        """A benchmark batch: uniform images in [0, 1]."""
        rng = np.random.default_rng(seed)
        return rng.uniform(0.0, 1.0, (batch_size, self.image_size, self.image_size, 3)).astype("float32")

    # ------------------------------------------------------------ style mixing
    def style_mixing_cut(self, seed):
        """The first slot that takes the second w (`stages + 1` = no mixing).

        One coin and one cut per global batch, as the reference: with
        probability `style_mixing_probability` a cut uniform in 1..stages.
        """
        seed = tf.cast(seed, tf.int64)
        coin = tf.random.stateless_uniform([], seed)
        cut = tf.random.stateless_uniform(
            [], tf.random.experimental.stateless_fold_in(seed, 1), minval=1,
            maxval=self.num_style_slots, dtype=tf.int32,
        )
        return tf.where(coin < self.style_mixing_probability, cut, self.num_style_slots)

    def mix_styles(self, w1, w2, cut):
        """Slots `[0, cut)` take w1, slots `[cut, stages + 1)` take w2: [B, slots, D]."""
        slots = tf.range(self.num_style_slots)[None, :, None]
        return tf.where(slots < cut, w1[:, None, :], w2[:, None, :])

    def _fakes(self, batch, stream, training=True):
        """Generated images of a train step: two z, style mixing, seeded noise."""
        z_seed = self.stream_seed(stream, per_replica=False)
        z1 = global_batch_random(z_seed, [batch, self.latent_dim], "normal")
        z2 = global_batch_random(tf.random.experimental.stateless_fold_in(z_seed, 1),
                                 [batch, self.latent_dim], "normal")
        w1 = self.mapping(z1, training=training)
        w2 = self.mapping(z2, training=training)
        cut = self.style_mixing_cut(self.stream_seed(stream + 2, per_replica=False))
        styles = self.mix_styles(w1, w2, cut)
        # The noise layers draw from a seed shared by the replicas and keep
        # their rows of the global batch (GlobalBatchNoise).
        with noise_seed_scope(self.stream_seed(stream + 3, per_replica=False)):
            return self.synthesis(styles, training=training)

    # ------------------------------------------------------------- training
    def augment(self, images, stream):
        """What D sees of `images`: augmented when the model augments."""
        if self.augmentation is None:
            return images
        return self.augmentation(images, self.stream_seed(stream, per_replica=False))

    def _critic(self, images, stream):
        return self.discriminator(self.augment(images, stream), training=True)

    def _critic_pair(self, real, fake, stream):
        """D's logits on (augmented) real and fake images, in one call of D.

        One call keeps the traced step small; D treats every image on its
        own (no batch statistics), so this equals two calls, except that
        the spectral norms' power iteration runs once instead of twice.
        """
        images = tf.concat([self.augment(real, stream), self.augment(fake, stream + 1)], axis=0)
        logits = self.discriminator(images, training=True)
        return logits[: tf.shape(real)[0]], logits[tf.shape(real)[0] :]

    def _orthogonal_penalty(self, network):
        if not self.orthogonal_regularization:
            return 0.0
        # Added once per replica and summed over replicas by the optimizer.
        return self.orthogonal_regularization * orthogonal_penalty(
            regularised_kernels(network)) / num_replicas()

    # Python control flow only (phases are chosen on the host): skipping
    # autograph's source conversion saves about a fifth of the tracing time.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        real, _ = self.unpack(data)
        batch = tf.shape(real)[0]
        logs = {}
        if self.updates("d"):
            fake = tf.stop_gradient(self._fakes(batch, _D_FAKE))
            with tf.GradientTape() as tape:
                real_logits, fake_logits = self._critic_pair(real, fake, _D_AUGMENT)
                adversarial = losses.discriminator_relativistic_average(real_logits, fake_logits)
                alpha = global_batch_random(self.stream_seed(_GP_ALPHA, per_replica=False), [batch])
                penalty = losses.gradient_penalty(
                    lambda x: self._critic(x, _GP_AUGMENT), real, fake, alpha=alpha
                )
                d_loss = adversarial + self.gradient_penalty_weight * penalty
                total = self.reduce(d_loss) + self._orthogonal_penalty(self.discriminator)
                scaled = self.scale_loss("d", total)
            self.apply_group_gradients("d", tape, scaled)
            logs.update(d_loss=d_loss, gradient_penalty=penalty)
            if self.augmentation is not None:
                r_t = self.augmentation.adapt(real_logits, self.step_counter)
                if self.augment_adaptive:
                    self.trackers["r_t"].update_state(r_t)
        if self.updates("g"):
            with tf.GradientTape() as tape:
                fake = self._fakes(batch, _G_FAKE)
                real_logits, fake_logits = self._critic_pair(real, fake, _G_AUGMENT)
                g_loss = losses.generator_relativistic_average(real_logits, fake_logits)
                total = self.reduce(g_loss) + self._orthogonal_penalty(self.generator)
                scaled = self.scale_loss("g", total)
            self.apply_group_gradients("g", tape, scaled)
            if self.ema_of("generator") is not None:
                self.update_ema("generator")
            logs["g_loss"] = g_loss
        if self.augmentation is not None:
            self.trackers["augment_p"].update_state(tf.convert_to_tensor(self.augmentation.probability))
        self.track(**logs)
        return self.finish_step()

    def get_config(self):
        return {
            "name": self.name,
            "stages": self.stages,
            "latent_dim": self.latent_dim,
            "mapping_blocks": self.mapping_blocks,
            "base_channels": self.base_channels,
            "initial_channels": self.initial_channels,
            "dense_units": self.dense_units,
            "attention_resolution": self.attention_resolution,
            "fused_scaling": self.fused_scaling,
            "noise_layout": self.noise_layout,
            "noise_at_inference": self.noise_at_inference,
            "style_mixing_probability": self.style_mixing_probability,
            "gradient_penalty_weight": self.gradient_penalty_weight,
            "n_critic": self.n_critic,
            "learning_rate_g": self.learning_rate_g,
            "learning_rate_d": self.learning_rate_d,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "orthogonal_regularization": self.orthogonal_regularization,
            "ema_decay": self.ema_decay,
            "augment_policy": self.augment_policy,
            "augment_probability": self.augment_probability,
            "augment_adaptive": self.augment_adaptive,
            "augment_target": self.augment_target,
            "augment_speed_images": self.augment_speed_images,
            "seed": self.seed,
        }


PAPER_CONFIG = {
    "stages": 5,
    "latent_dim": 200,
    "mapping_blocks": 4,
    "base_channels": 32,
    "initial_channels": 256,
    "dense_units": 1024,
    "attention_resolution": 28,
    "fused_scaling": True,
    "noise_layout": "per_channel",
    "noise_at_inference": False,
    "style_mixing_probability": 0.5,
    "gradient_penalty_weight": 0.65,
    "n_critic": 5,
    "learning_rate_g": 1e-4,
    "learning_rate_d": 1e-4,
    "beta_1": 0.5,
    "beta_2": 0.999,
    "orthogonal_regularization": 0.0,
    "ema_decay": None,
    "augment_policy": None,
    "augment_probability": 1.0,
    "augment_adaptive": False,
    "augment_target": 0.6,
    "augment_speed_images": 500_000,
    "seed": 0,
}

register_model(
    "pathology_gan",
    PathologyGAN,
    config=PAPER_CONFIG,
    citation=CITATION,
    description="PathologyGAN: style-based relativistic GAN for 224x224 H&E tissue tiles",
    modality="histology",
    capabilities=("generate",),
    inputs="latent z [{latent_dim}] ~ N(0, 1) (mapped to styles)",
    outputs="H&E tiles [7 * 2**stages, 7 * 2**stages, 3] in [0, 1] (stages={stages})",
)
