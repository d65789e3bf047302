"""PyTorch peer of `semi_cgan` (Johnson, FTC 2020: semi-supervised conditional GAN).

Same as gan_zoo: G maps [z ~ N(0, 1), one-hot class] as a 1x1 map through
five 3x3 transposed convolutions, 1 -> 3 -> 7 ('valid', strides 1 and 2)
-> 13 -> 25 -> 50 (stride 2, 'same' with output padding), widths
64 * (4, 3, 2, 1) * width and the image channels, each spectrally
normalised when `generator_spectral_norm`, BN (Keras defaults: epsilon
1e-3, momentum 0.99) + ReLU between, tanh. D: five 3x3 convolutions with
strides `discriminator_strides`, widths 64 * (1..5) * width, LeakyReLU
0.2, spectral norm on all but the first and last, flatten, two float32
dense heads (real/fake logit, class logits). Per step, one D update on
BCE(real, 1) + BCE(fake, 0) + 10 x the per-sample WGAN-GP penalty on
interpolates (the real/fake logit's input gradient, kept in the graph) +
the fakes' class cross-entropy + the labelled real images' class
cross-entropy (summed / number labelled), then one G update on BCE(fake, 1)
+ the fakes' class cross-entropy (or feature matching on D's flattened
features, `generator_loss="feature_matching"`), the same z and classes.
Two Adams (learning_rate, beta_1, beta_2, epsilon 1e-7). D runs three
times per D update (real, fake, interpolates), each with a power
iteration, as the Keras model.

Differs: 'same' stride-2 convolutions pad symmetrically (TensorFlow pads
the extra pixel after; same shapes and FLOPs); channels-first flatten.
Not implemented (NotImplementedError): `discriminator_head="k_plus_one"`,
`real_augmentation`, `discriminator_dropout`, the discriminator EMA.
`fake_class_warmup_steps` changes only a loss weight, not the work, and is
ignored.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Peer, frozen, integer_labels, keras_adam, keras_batch_norm, refuse_options, uniform_images
from .layers import Float32, SNConv2d, SNConvTranspose2d, bce, gradient_penalty, transposed_output_padding


def filters(layer, width):
    """The paper's 64 * layer * width filters (at least 1)."""
    return max(1, round(64 * layer * width))


def generator_sizes(image_size):
    """1 -> 3 -> 7 -> 13 -> 25 -> image_size (the last three halving with ceil)."""
    sizes = [int(image_size)]
    for _ in range(3):
        sizes.insert(0, -(-sizes[0] // 2))
    return [1, 3, *sizes]


class Generator(nn.Module):
    def __init__(self, image_size, latent_dim, num_classes, width, channels, spectral_norm):
        super().__init__()
        self.num_classes = num_classes
        transposed = SNConvTranspose2d if spectral_norm else nn.ConvTranspose2d
        sizes = generator_sizes(image_size)
        widths = [latent_dim + num_classes] + [filters(5 - layer, width) for layer in range(1, 5)] + [channels]
        layers = []
        for layer in range(1, 6):
            size_in, size_out = sizes[layer - 1], sizes[layer]
            if layer <= 2:  # 1 -> 3 and 3 -> 7: 'valid'
                conv = transposed(widths[layer - 1], widths[layer], 3, stride=layer)
            else:
                conv = transposed(widths[layer - 1], widths[layer], 3, stride=2, padding=1,
                                  output_padding=transposed_output_padding(size_in, size_out))
            layers.append(conv)
            if layer < 5:
                layers += [keras_batch_norm(widths[layer]), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, z, labels):
        x = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return torch.tanh(self.layers(x[:, :, None, None]).float())


class Discriminator(nn.Module):
    """images -> {"real_fake": [B, 1], "class": [B, K], "features": [B, F]}."""

    def __init__(self, image_size, num_classes, width, strides, channels):
        super().__init__()
        layers, width_in, side = [], channels, image_size
        for layer, stride in enumerate(strides, start=1):
            conv = nn.Conv2d if layer in (1, len(strides)) else SNConv2d
            layers += [conv(width_in, filters(layer, width), 3, stride=stride, padding=1), nn.LeakyReLU(0.2)]
            width_in, side = filters(layer, width), -(-side // stride)
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.real_fake = Float32(nn.Linear(width_in * side * side, 1))
        self.classes = Float32(nn.Linear(width_in * side * side, num_classes))

    def forward(self, images):
        features = self.convs(images)
        return {"real_fake": self.real_fake(features), "class": self.classes(features), "features": features}


class SemiCGANPeer(Peer):
    """The semi-supervised cGAN's networks, optimizers and step (module docstring)."""

    def __init__(self, config, batch_size, precision, seed=0):
        super().__init__(precision, seed)
        refuse_options("semi_cgan", config, {
            "discriminator_head": ("two_heads",), "real_augmentation": (None,),
            "discriminator_dropout": (0, 0.0), "discriminator_ema_half_life_steps": (None,),
            "generator_loss": ("bce", "feature_matching"),
        })
        self.config = config
        size, channels = int(config["image_size"]), int(config["channels"])
        self.num_classes, self.latent_dim = int(config["num_classes"]), int(config["latent_dim"])
        self.generator = Generator(size, self.latent_dim, self.num_classes, float(config["width"]), channels,
                                   bool(config["generator_spectral_norm"]))
        self.discriminator = Discriminator(size, self.num_classes, float(config["width"]),
                                           [int(s) for s in config["discriminator_strides"]], channels)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        adam = dict(learning_rate=float(config["learning_rate"]), beta_1=float(config["beta_1"]),
                    beta_2=float(config["beta_2"]))
        self.g_optimizer = keras_adam(self.generator.parameters(), **adam)
        self.d_optimizer = keras_adam(self.discriminator.parameters(), **adam)
        weights = config.get("class_weights")
        self.class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        rng = np.random.default_rng(seed)
        self.real = uniform_images(rng, batch_size, size, channels, -1.0, 1.0)
        self.labels = integer_labels(rng, batch_size, self.num_classes)
        self.train()

    def labelled_class_loss(self, logits):
        """Summed cross-entropy of the labelled images / their number (labels -1: unlabelled)."""
        labelled = self.labels >= 0
        safe = torch.where(labelled, self.labels, torch.zeros_like(self.labels))
        mask = labelled.float()
        if self.class_weights is not None:
            mask = mask * self.class_weights[safe]
        ce = F.cross_entropy(logits.float(), safe, reduction="none") * mask
        return ce.sum() / torch.clamp(labelled.float().sum(), min=1.0)

    def train_step(self):
        c = self.config
        batch = self.real.shape[0]
        z = self.normal(batch, self.latent_dim)
        fake_labels = self.integers(self.num_classes, batch)
        alpha = self.uniform(batch)

        # D update: G runs forward but only D's weights get gradients.
        fake = self.generator(z, fake_labels).detach()
        on_real, on_fake = self.discriminator(self.real), self.discriminator(fake)
        adversarial = bce(on_real["real_fake"], 1.0) + bce(on_fake["real_fake"], 0.0)
        penalty = gradient_penalty(lambda x: self.discriminator(x)["real_fake"], self.real, fake, alpha,
                                   target=float(c["gradient_penalty_target"]))
        fake_class = F.cross_entropy(on_fake["class"].float(), fake_labels, reduction="none")
        d_loss = (adversarial + float(c["gradient_penalty_weight"]) * penalty
                  + float(c["fake_class_loss_weight"]) * fake_class).mean()
        d_loss = d_loss + float(c["labelled_class_loss_weight"]) * self.labelled_class_loss(on_real["class"])
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()

        if c["generator_loss"] == "feature_matching":
            self.discriminator.eval()  # Keras' training=False: no power iteration
            with torch.no_grad():
                real_features = self.discriminator(self.real)["features"].float().mean(dim=0)
            self.discriminator.train()
        with frozen(self.discriminator):
            on_fake = self.discriminator(self.generator(z, fake_labels))
            if c["generator_loss"] == "feature_matching":
                gap = real_features - on_fake["features"].float().mean(dim=0)
                adversarial_g = torch.sum(gap * gap).expand(batch)
            else:
                adversarial_g = bce(on_fake["real_fake"], 1.0)
            g_loss = (adversarial_g + float(c["generator_class_loss_weight"])
                      * F.cross_entropy(on_fake["class"].float(), fake_labels, reduction="none")).mean()
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()
        return g_loss.detach()


def build(config, batch_size, precision, seed=0):
    """The semi_cgan peer for a resolved `semi_cgan` registry config."""
    return SemiCGANPeer(config, batch_size, precision, seed)
