"""PyTorch peer of `dcgan` (Radford et al. 2016; variants v1-v3 of Chi, Fang & Wang).

Same as gan_zoo: G = dense to 4x4x8f (sizes halving with ceil from the
image side), BN (epsilon 1e-5, momentum 0.9), ReLU, four 5x5 upsamplings
to 4f, 2f, f and C channels (stride-2 transposed convolutions with the
output padding that picks odd sizes, or for `resize_conv` nearest 2x
upsampling, a crop and a stride-1 transposed conv), BN + ReLU between,
tanh; D = four 5x5 stride-2 convolutions f..8f with LeakyReLU 0.2 and BN
after all but the first, flatten, dense logit (float32). Conditioning
(num_classes > 0): one-hot labels concatenated to z, one-hot maps to the
image. Per step: z ~ U[-1, 1]; one D update on BCE(real, real_label) +
BCE(G(z), 0), then `g_updates_per_d` G updates with the same z, each on
BCE(D(G(z)), 1); Gaussian instance noise of `instance_noise_std` on every
image D sees (v2, v3). Two Adams (learning_rate, beta_1, 0.999, 1e-7).

Differs: TensorFlow's 'same' stride-2 convolution pads 1 pixel before and
2 after where torch pads 2 on both sides (same output sizes and FLOPs, the
sampling grid shifted by one pixel); the dense output is reshaped to
channels-first and D flattens channels-first (a permutation of the same
weights). `ema_half_life_steps` and `augment_policy` are not implemented
(NotImplementedError).
"""

import math

import numpy as np
import torch
from torch import nn

from .base import Peer, frozen, integer_labels, keras_adam, refuse_options, uniform_images
from .layers import Float32, Reshape, bce, one_hot_maps, transposed_output_padding

VARIANTS = {
    "v1": {"real_label": 1.0, "instance_noise_std": 0.0, "upsampling": "transposed"},
    "v2": {"real_label": 0.9, "instance_noise_std": 0.2, "upsampling": "transposed"},
    "v3": {"real_label": 0.9, "instance_noise_std": 0.2, "upsampling": "resize_conv"},
}


def feature_sizes(image_size, num_upsamplings=4):
    """64 -> [4, 8, 16, 32, 64]; 50 -> [4, 7, 13, 25, 50] (halving with ceil)."""
    sizes = [int(image_size)]
    for _ in range(num_upsamplings):
        sizes.insert(0, math.ceil(sizes[0] / 2))
    return sizes


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)  # Keras momentum 0.9


def init_normal(module):
    """N(0, 0.02) kernels, zero biases (the reference DCGAN's initialisers)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)


class Upsample(nn.Module):
    """One 5x5 upsampling of G: size_in -> size_out pixels."""

    def __init__(self, channels_in, channels_out, size_in, size_out, upsampling):
        super().__init__()
        self.crop = 2 * size_in - size_out
        self.resize = upsampling == "resize_conv"
        if self.resize:
            self.conv = nn.ConvTranspose2d(channels_in, channels_out, 5, stride=1, padding=2)
        else:
            self.conv = nn.ConvTranspose2d(
                channels_in, channels_out, 5, stride=2, padding=2,
                output_padding=transposed_output_padding(size_in, size_out))

    def forward(self, x):
        if self.resize:
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            if self.crop:
                x = x[:, :, : x.shape[2] - self.crop, : x.shape[3] - self.crop]
        return self.conv(x)


class Generator(nn.Module):
    def __init__(self, image_size, channels, latent_dim, base_filters, upsampling, num_classes):
        super().__init__()
        sizes = feature_sizes(image_size)
        self.num_classes = num_classes
        first = base_filters * 8
        self.project = nn.Sequential(
            nn.Linear(latent_dim + num_classes, sizes[0] * sizes[0] * first),
            Reshape(first, sizes[0], sizes[0]), batch_norm(first), nn.ReLU())
        widths = [first, base_filters * 4, base_filters * 2, base_filters, channels]
        layers = []
        for i in range(4):
            layers.append(Upsample(widths[i], widths[i + 1], sizes[i], sizes[i + 1], upsampling))
            if i < 3:
                layers += [batch_norm(widths[i + 1]), nn.ReLU()]
        self.upsample = nn.Sequential(*layers)

    def forward(self, z, labels=None):
        if self.num_classes:
            z = torch.cat([z, nn.functional.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return torch.tanh(self.upsample(self.project(z)).float())


class Discriminator(nn.Module):
    def __init__(self, image_size, channels, base_filters, num_classes):
        super().__init__()
        self.num_classes, self.image_size = num_classes, image_size
        layers, width, side = [], channels + num_classes, image_size
        for i, filters in enumerate([base_filters * m for m in (1, 2, 4, 8)]):
            layers.append(nn.Conv2d(width, filters, 5, stride=2, padding=2))
            if i > 0:
                layers.append(batch_norm(filters))
            layers.append(nn.LeakyReLU(0.2))
            width, side = filters, math.ceil(side / 2)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.logits = Float32(nn.Linear(width * side * side, 1))

    def forward(self, images, labels=None):
        if self.num_classes:
            images = torch.cat([images, one_hot_maps(labels, self.num_classes, self.image_size)], dim=1)
        return self.logits(self.features(images))


class DCGANPeer(Peer):
    """DCGAN's networks, optimizers and alternating step (see the module docstring)."""

    def __init__(self, config, batch_size, precision, seed=0):
        super().__init__(precision, seed)
        refuse_options("dcgan", config, {"ema_half_life_steps": (None,), "augment_policy": (None,)})
        defaults = VARIANTS[config["variant"]]

        def option(key):
            return defaults[key] if config.get(key) is None else config[key]

        self.real_label = float(option("real_label"))
        self.noise_std = float(option("instance_noise_std"))
        self.g_updates_per_d = int(config["g_updates_per_d"])
        self.latent_dim = int(config["latent_dim"])
        self.num_classes = int(config["num_classes"])
        size, channels, filters = int(config["image_size"]), int(config["channels"]), int(config["base_filters"])
        self.generator = Generator(size, channels, self.latent_dim, filters, option("upsampling"),
                                   self.num_classes)
        self.discriminator = Discriminator(size, channels, filters, self.num_classes)
        init_normal(self.generator)
        init_normal(self.discriminator)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        rate, beta_1 = float(config["learning_rate"]), float(config["beta_1"])
        self.g_optimizer = keras_adam(self.generator.parameters(), rate, beta_1)
        self.d_optimizer = keras_adam(self.discriminator.parameters(), rate, beta_1)
        rng = np.random.default_rng(seed)
        self.real = uniform_images(rng, batch_size, size, channels, -1.0, 1.0)
        self.labels = integer_labels(rng, batch_size, self.num_classes) if self.num_classes else None
        self.train()

    def discriminate(self, images):
        if self.noise_std > 0:
            images = images + self.noise_std * self.normal(*images.shape)
        return self.discriminator(images, self.labels)

    def train_step(self):
        batch = self.real.shape[0]
        z = self.uniform(batch, self.latent_dim, low=-1.0, high=1.0)
        # D update: G runs forward (training mode) but is not trained through.
        fake = self.generator(z, self.labels).detach()
        d_loss = bce(self.discriminate(self.real), self.real_label) + bce(self.discriminate(fake), 0.0)
        self.d_optimizer.zero_grad()
        d_loss.mean().backward()
        self.d_optimizer.step()
        for _ in range(self.g_updates_per_d):  # the reference's two G updates, same z
            with frozen(self.discriminator):
                g_loss = bce(self.discriminate(self.generator(z, self.labels)), 1.0).mean()
            self.g_optimizer.zero_grad()
            g_loss.backward()
            self.g_optimizer.step()
        return g_loss.detach()


def build(config, batch_size, precision, seed=0):
    """The DCGAN peer for a resolved `dcgan` registry config."""
    return DCGANPeer(config, batch_size, precision, seed)
