"""PyTorch peer of `cyclegan` (Zhu et al. 2017, as Chi, Fang & Wang use it).

Same as gan_zoo: two ResNet generators (reflection pad 3 + 7x7 conv f,
two stride-2 3x3 convs to 2f and 4f with zero padding 1, `residual_blocks`
blocks of reflection-padded 3x3 convs, two stride-2 3x3 transposed convs
back to 2f and f, reflection pad 3 + 7x7 conv to C, tanh; instance norm
without affine parameters, epsilon 1e-5, and ReLU after every conv but the
last) and two PatchGANs (4x4 convs with zero padding 1: f, then doubling
up to 8f, `discriminator_downsamplings` of them stride 2, one stride 1,
instance norm after all but the first, LeakyReLU 0.2, a 4x4 conv to one
float32 score map). N(0, 0.02) kernels. Per step: one update of both
generators (one Adam) on LSGAN (D(G(x)) - 1)^2 in both directions + cycle
L1 x 10 in both + identity L1 x 0.5 x 10 in both, with both discriminators
passed through; then one update of both discriminators (one Adam) on
0.5 ((D(real) - 1)^2 + D(pooled fake)^2), the fakes going through one
image pool of 50 per direction (once full, with probability 1/2 a stored
fake is shown and replaced). Adam (learning_rate, beta_1, 0.999, 1e-7).

Differs: Keras builds each up-sampling as a 'valid' stride-2 transposed
conv giving 2n + 1 pixels and crops them to the target size; torch's
`padding=1, output_padding` computes only the kept pixels (the same
result, a few % fewer FLOPs in those two layers). The pool draws its coins
per image with torch's generator instead of TensorFlow's stateless ones.
"""

import math

import numpy as np
import torch
from torch import nn

from .base import Peer, frozen, keras_adam, uniform_images
from .layers import Float32, per_example_mean, transposed_output_padding


def default_residual_blocks(image_size):
    """The reference's rule: 9 blocks above 128 px, 6 at 128 px and below."""
    return 9 if image_size > 128 else 6


def default_downsamplings(image_size):
    """The most stride-2 layers (at most 3) whose receptive field fits the image."""
    def field(downsamplings):
        size = 7
        for _ in range(downsamplings):
            size = (size - 1) * 2 + 4
        return size

    downsamplings = 3
    while downsamplings > 1 and field(downsamplings) > image_size:
        downsamplings -= 1
    return downsamplings


def instance_norm(channels):
    return nn.InstanceNorm2d(channels, eps=1e-5, affine=False)


def reflect_conv(channels_in, channels_out, kernel):
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(channels_in, channels_out, kernel))


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            reflect_conv(channels, channels, 3), instance_norm(channels), nn.ReLU(),
            reflect_conv(channels, channels, 3), instance_norm(channels))

    def forward(self, x):
        return x + self.body(x)  # no activation after the sum


def build_generator(image_size, channels, filters, residual_blocks):
    sizes = [image_size, math.ceil(image_size / 2), math.ceil(math.ceil(image_size / 2) / 2)]
    layers = [reflect_conv(channels, filters, 7), instance_norm(filters), nn.ReLU()]
    for width_in, width in ((filters, 2 * filters), (2 * filters, 4 * filters)):
        layers += [nn.Conv2d(width_in, width, 3, stride=2, padding=1), instance_norm(width), nn.ReLU()]
    layers += [ResidualBlock(4 * filters) for _ in range(residual_blocks)]
    for i, (width_in, width) in enumerate(((4 * filters, 2 * filters), (2 * filters, filters)), start=1):
        size_in, size_out = sizes[-i], sizes[-i - 1]
        layers += [nn.ConvTranspose2d(width_in, width, 3, stride=2, padding=1,
                                      output_padding=transposed_output_padding(size_in, size_out)),
                   instance_norm(width), nn.ReLU()]
    layers += [reflect_conv(filters, channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def build_discriminator(channels, filters, downsamplings):
    layers, width_in = [], channels
    for i in range(downsamplings + 1):
        width = filters * min(2**i, 8)
        layers.append(nn.Conv2d(width_in, width, 4, stride=2 if i < downsamplings else 1, padding=1))
        if i > 0:
            layers.append(instance_norm(width))
        layers.append(nn.LeakyReLU(0.2))
        width_in = width
    layers.append(Float32(nn.Conv2d(width_in, 1, 4, padding=1)))
    return nn.Sequential(*layers)


class ImagePool:
    """Past fakes shown to a discriminator (Shrivastava et al. 2017; CycleGAN's pool)."""

    def __init__(self, size, image_shape, draws):
        self.size, self.count, self.draws = int(size), 0, draws
        self.images = torch.zeros((max(self.size, 1), *image_shape))

    def query(self, images):
        images = images.detach().float()
        if self.size == 0:
            return images
        use_stored = torch.rand(len(images), generator=self.draws) > 0.5
        slots = torch.randint(0, self.size, (len(images),), generator=self.draws)
        shown = []
        for image, stored, slot in zip(images, use_stored.tolist(), slots.tolist()):
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                shown.append(image)
            elif stored:
                shown.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                shown.append(image)
        return torch.stack(shown)


def lsgan_generator(scores):
    return per_example_mean((scores.float() - 1.0) ** 2)


def lsgan_discriminator(real_scores, fake_scores):
    return 0.5 * (per_example_mean((real_scores.float() - 1.0) ** 2) + per_example_mean(fake_scores.float() ** 2))


def l1(a, b):
    return per_example_mean(torch.abs(a.float() - b.float()))


class CycleGANPeer(Peer):
    """CycleGAN's four networks, two optimizers, pools and step (module docstring)."""

    def __init__(self, config, batch_size, precision, seed=0):
        super().__init__(precision, seed)
        size, channels = int(config["image_size"]), int(config["channels"])
        blocks = config["residual_blocks"] or default_residual_blocks(size)
        downsamplings = config["discriminator_downsamplings"] or default_downsamplings(size)
        g_filters, d_filters = int(config["generator_filters"]), int(config["discriminator_filters"])
        self.networks = {
            "generator_ab": build_generator(size, channels, g_filters, int(blocks)),
            "generator_ba": build_generator(size, channels, g_filters, int(blocks)),
            "discriminator_a": build_discriminator(channels, d_filters, int(downsamplings)),
            "discriminator_b": build_discriminator(channels, d_filters, int(downsamplings)),
        }
        for network in self.networks.values():
            for layer in network.modules():
                if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.normal_(layer.weight, std=0.02)
                    nn.init.zeros_(layer.bias)
        self.g_ab, self.g_ba = self.networks["generator_ab"], self.networks["generator_ba"]
        self.d_a, self.d_b = self.networks["discriminator_a"], self.networks["discriminator_b"]
        self.cycle_weight, self.identity_weight = float(config["cycle_weight"]), float(config["identity_weight"])
        adam = dict(learning_rate=float(config["learning_rate"]), beta_1=float(config["beta_1"]))
        self.g_optimizer = keras_adam([*self.g_ab.parameters(), *self.g_ba.parameters()], **adam)
        self.d_optimizer = keras_adam([*self.d_a.parameters(), *self.d_b.parameters()], **adam)
        self.pool_a = ImagePool(int(config["pool_size"]), (channels, size, size), self.draws)
        self.pool_b = ImagePool(int(config["pool_size"]), (channels, size, size), self.draws)
        rng = np.random.default_rng(seed)  # {"a", "b"}: a drawn first, as the Keras model does
        self.real_a = uniform_images(rng, batch_size, size, channels, -1.0, 1.0)
        self.real_b = uniform_images(rng, batch_size, size, channels, -1.0, 1.0)
        self.train()

    def train_step(self):
        real_a, real_b = self.real_a, self.real_b
        with frozen(self.d_a, self.d_b):
            fake_b, fake_a = self.g_ab(real_a), self.g_ba(real_b)
            g_loss = (lsgan_generator(self.d_b(fake_b)) + lsgan_generator(self.d_a(fake_a))
                      + self.cycle_weight * (l1(real_a, self.g_ba(fake_b)) + l1(real_b, self.g_ab(fake_a))))
            if self.identity_weight > 0:
                g_loss = g_loss + self.identity_weight * self.cycle_weight * (
                    l1(real_b, self.g_ab(real_b)) + l1(real_a, self.g_ba(real_a)))
            g_loss = g_loss.mean()
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()

        shown_a, shown_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        d_loss = (lsgan_discriminator(self.d_a(real_a), self.d_a(shown_a))
                  + lsgan_discriminator(self.d_b(real_b), self.d_b(shown_b))).mean()
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()
        return d_loss.detach()


def build(config, batch_size, precision, seed=0):
    """The CycleGAN peer for a resolved `cyclegan` registry config."""
    return CycleGANPeer(config, batch_size, precision, seed)
