"""PyTorch peer of `diagram` (Shams et al., MICCAI 2018: DiaGRAM).

Same as gan_zoo: F = four stride-2 convolutions (`feature_filters`,
`feature_kernel_size`, 'same', bias) with LeakyReLU 0.2, run on patches and
whole images; D = one float32 dense layer on F's flattened patch features
with m class logits + the real/fake logit; E = six He et al. basic blocks
(`extended_filters`, `extended_strides`, 3x3 convs without bias, BN with
Keras' epsilon 1e-3 and `batch_norm_momentum`, a 1x1 projection + BN when
the stride or width changes), global average (or max) pooling, float32
dense logits; G = dense to (s/16)^2 x g0, BN, ReLU, four stride-2
transposed convs (`generator_kernel_size`) to g1, g2, g3 and 1 channel, BN
+ ReLU between, tanh. Three Adams (learning_rate, beta_1, beta_2,
epsilon 1e-7): "fd" over F and D, "fe" over F and E (F's weights in both,
each optimizer with its own moments), "g" over G. Algorithm 1 with
`UpdateSchedule.ratio(k)` (gan_zoo's schedule class itself): every step an
fd update (patch cross-entropy + softplus(-D(F(x))) + softplus(D(F(G(z)))),
z ~ U[-1, 1], G not trained through) and an fe update (whole-image
cross-entropy through F + E); every k-th step also a G update on
softplus(-D(F(G(z)))) with fresh z, F and D passed through. `use_gan=False`
(the ablation) drops G and the real/fake logit.

Differs: 'same' stride-2 convolutions and transposed convolutions pad
symmetrically in torch (TensorFlow puts the extra pixel after; same shapes
and FLOPs); G's dense output is reshaped and D flattens channels-first.
"""

import numpy as np
import torch.nn.functional as F
from torch import nn

from gan_zoo.schedules import UpdateSchedule

from .base import Peer, frozen, integer_labels, keras_adam, keras_batch_norm, uniform_images
from .layers import Float32, Reshape

DOWNSAMPLING = 16


def build_features(filters, kernel_size):
    layers, width_in = [], 1
    for width in filters:
        layers += [nn.Conv2d(width_in, width, kernel_size, stride=2, padding=kernel_size // 2), nn.LeakyReLU(0.2)]
        width_in = width
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """He et al.'s basic block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""

    def __init__(self, width_in, width, stride, momentum):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width_in, width, 3, stride=stride, padding=1, bias=False),
            keras_batch_norm(width, momentum), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), keras_batch_norm(width, momentum))
        self.shortcut = nn.Identity()
        if stride != 1 or width_in != width:
            self.shortcut = nn.Sequential(nn.Conv2d(width_in, width, 1, stride=stride, bias=False),
                                          keras_batch_norm(width, momentum))

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class Extended(nn.Module):
    def __init__(self, feature_channels, num_classes, filters, strides, pooling, momentum):
        super().__init__()
        blocks, width_in = [], feature_channels
        for width, stride in zip(filters, strides):
            blocks.append(ResidualBlock(width_in, width, stride, momentum))
            width_in = width
        self.blocks = nn.Sequential(*blocks)
        self.max_pool = pooling == "max"
        self.logits = Float32(nn.Linear(width_in, num_classes))

    def forward(self, x):
        x = self.blocks(x)
        x = x.amax(dim=(2, 3)) if self.max_pool else x.mean(dim=(2, 3))
        return self.logits(x)


def build_generator(patch_size, latent_dim, filters, kernel_size, momentum):
    start = patch_size // DOWNSAMPLING
    layers = [nn.Linear(latent_dim, start * start * filters[0]), Reshape(filters[0], start, start),
              keras_batch_norm(filters[0], momentum), nn.ReLU()]
    widths = [*filters, 1]
    for index in range(4):  # 'same' stride 2: 2n pixels
        layers.append(nn.ConvTranspose2d(widths[index], widths[index + 1], kernel_size, stride=2,
                                         padding=kernel_size // 2, output_padding=1))
        if index < 3:
            layers += [keras_batch_norm(widths[index + 1], momentum), nn.ReLU()]
    layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class DiaGRAMPeer(Peer):
    """DiaGRAM's four networks, three optimizers and Algorithm-1 step (module docstring)."""

    def __init__(self, config, batch_size, precision, seed=0):
        super().__init__(precision, seed)
        self.num_classes, self.latent_dim = int(config["num_classes"]), int(config["latent_dim"])
        self.use_gan, self.k = bool(config["use_gan"]), int(config["k"])
        patch, size = int(config["patch_size"]), int(config["image_size"])
        feature_filters = [int(f) for f in config["feature_filters"]]
        momentum = float(config["batch_norm_momentum"])
        self.features = build_features(feature_filters, int(config["feature_kernel_size"]))
        patch_map = patch // DOWNSAMPLING
        self.discriminator = nn.Sequential(
            nn.Flatten(), Float32(nn.Linear(patch_map * patch_map * feature_filters[-1],
                                            self.num_classes + int(self.use_gan))))
        self.extended = Extended(feature_filters[-1], self.num_classes, [int(f) for f in config["extended_filters"]],
                                 [int(s) for s in config["extended_strides"]], config["extended_pooling"], momentum)
        self.networks = {"features": self.features, "discriminator": self.discriminator, "extended": self.extended}
        adam = dict(learning_rate=float(config["learning_rate"]), beta_1=float(config["beta_1"]),
                    beta_2=float(config["beta_2"]))
        self.fd_optimizer = keras_adam([*self.features.parameters(), *self.discriminator.parameters()], **adam)
        self.fe_optimizer = keras_adam([*self.features.parameters(), *self.extended.parameters()], **adam)
        if self.use_gan:
            self.generator = build_generator(patch, self.latent_dim, [int(f) for f in config["generator_filters"]],
                                             int(config["generator_kernel_size"]), momentum)
            self.networks["generator"] = self.generator
            self.g_optimizer = keras_adam(self.generator.parameters(), **adam)
            self.schedule = UpdateSchedule.ratio(self.k, critic=("fd", "fe"), both=("fd", "fe", "g"))
            self.steps_per_cycle = self.k
        else:
            self.schedule = UpdateSchedule.every_step(("fd", "fe"))
        self.state = (0, 0)
        rng = np.random.default_rng(seed)  # patches (images, labels), then whole images
        self.patches = uniform_images(rng, batch_size, patch, 1, -1.0, 1.0)
        self.patch_labels = integer_labels(rng, batch_size, self.num_classes)
        self.images = uniform_images(rng, batch_size, size, 1, -1.0, 1.0)
        self.image_labels = integer_labels(rng, batch_size, self.num_classes)
        self.train()

    def patch_outputs(self, patches):
        logits = self.discriminator(self.features(patches))
        real_logit = logits[:, self.num_classes] if self.use_gan else None
        return logits[:, : self.num_classes], real_logit

    def train_step(self):
        updates = self.schedule.phase(self.state[0]).updates
        batch = self.patches.shape[0]
        class_logits, real_logit = self.patch_outputs(self.patches)
        loss = F.cross_entropy(class_logits, self.patch_labels, reduction="none")
        if self.use_gan:
            z = self.uniform(batch, self.latent_dim, low=-1.0, high=1.0)
            _, fake_logit = self.patch_outputs(self.generator(z).detach())
            loss = loss + F.softplus(-real_logit) + F.softplus(fake_logit)
        self.fd_optimizer.zero_grad()
        loss.mean().backward()
        self.fd_optimizer.step()

        image_loss = F.cross_entropy(self.extended(self.features(self.images)), self.image_labels)
        self.fe_optimizer.zero_grad()
        image_loss.backward()
        self.fe_optimizer.step()
        last = image_loss

        if "g" in updates:
            z = self.uniform(batch, self.latent_dim, low=-1.0, high=1.0)  # a fresh minibatch of z
            with frozen(self.features, self.discriminator):
                _, fake_logit = self.patch_outputs(self.generator(z))
                g_loss = F.softplus(-fake_logit).mean()
            self.g_optimizer.zero_grad()
            g_loss.backward()
            self.g_optimizer.step()
            last = g_loss
        self.state = self.schedule.advance(*self.state)
        return last.detach()


def build(config, batch_size, precision, seed=0):
    """The DiaGRAM peer for a resolved `diagram` registry config."""
    return DiaGRAMPeer(config, batch_size, precision, seed)
