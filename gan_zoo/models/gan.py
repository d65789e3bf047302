"""`GAN`: the two-player latent-variable GAN (DCGAN, semi_cgan, DiaGRAM's G).

One generator from z (and class labels), one discriminator, update groups
"g" and "d" with one optimizer each: the keras.io "customize what happens
in fit" shape, on the adversarial base (`gan_zoo.models.adversarial`) with
the latent-generator role (`gan_zoo.models.roles.LatentGenerator`).
"""

import keras

from gan_zoo.models.adversarial import (  # noqa: F401  (re-exported)
    AdversarialModel,
    num_replicas,
    replica_id,
)
from gan_zoo.models.roles import LatentGenerator


@keras.saving.register_keras_serializable(package="gan_zoo")
class GAN(LatentGenerator, AdversarialModel):
    """Base class of the zoo's two-player latent GANs.

    Subclasses build `generator` and `discriminator` in their `__init__`,
    pass them here, and implement `train_step` with the base's helpers
    (`sample_latent`, `random_normal`, `reduce`, `scale_loss`,
    `apply_group_gradients`, `track`, `finish_step`). `call(z)` or
    `call([z, labels])` runs the generator.

    Args:
        generator: built `keras.Model` mapping z (and labels) to images in
            `data_range`.
        discriminator: built `keras.Model`.
        latent_dim: size of z.
        num_classes: 0 for an unconditional generator, else the number of
            classes it is conditioned on (labels are int class indices).
        latent_distribution: "normal" (N(0, 1)) or "uniform" (U[-1, 1]).
        data_range: (low, high) of the images the networks see.
        seed: base seed of the per-replica random stream.
        networks: further networks by name (e.g. a mapping network).
        **kwargs: `AdversarialModel` / `keras.Model` arguments.
    """

    tracked_losses = ("d_loss", "g_loss")

    def __init__(
        self,
        generator,
        discriminator,
        *,
        latent_dim,
        num_classes=0,
        latent_distribution="normal",
        data_range=(-1.0, 1.0),
        seed=0,
        networks=None,
        **kwargs,
    ):
        if latent_distribution not in ("normal", "uniform"):
            raise ValueError(
                "latent_distribution must be 'normal' or 'uniform', "
                f"got {latent_distribution!r}."
            )
        super().__init__(
            {"generator": generator, "discriminator": discriminator, **(networks or {})},
            data_range=data_range,
            seed=seed,
            **kwargs,
        )
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)
        self.latent_distribution = latent_distribution
        # Set by compile(); the keras.io pattern's attribute names.
        self.g_optimizer = None
        self.d_optimizer = None

    def update_groups(self):
        return {"g": ("generator",), "d": ("discriminator",)}

    def default_optimizers(self):
        """The paper's {group: optimizer}; subclasses override."""
        return {
            "g": keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999),
            "d": keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999),
        }

    def generator_variables(self):
        """Variables the generator optimizer updates."""
        return self.group_variables("g")

    def discriminator_variables(self):
        """Variables the discriminator optimizer updates."""
        return self.group_variables("d")
