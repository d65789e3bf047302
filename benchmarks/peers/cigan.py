"""PyTorch peer of `cigan` (Wu, Wu, Cox & Lotter 2018: conditional infilling GAN).

Same as gan_zoo: G, a cascaded refinement network on the stack (context =
the patch with the masked pixels replaced by U[0, 1) noise, mask, two
one-hot class maps) average-pooled to every scale from 4x4 up; each block
concatenates the nearest 2x upsampling of the previous block with the
stack at its scale and applies two 3x3 convs + ReLU (`widths`); a float32
1x1 conv + sigmoid, composited so that only masked pixels are generated.
D: the patch + class maps through 3x3 conv + LeakyReLU + 2x2 max pool
blocks (`discriminator_widths`), a float32 dense logit. The frozen feature
network is VGG-19 up to pool3 (Keras' "caffe" input: grey repeated to
three channels, x 255, ImageNet means subtracted), its weights never
trained, its input gradient computed for the fakes. The phases are
gan_zoo's own `UpdateSchedule` built as `cigan.alternation_schedule`:
"pretrain" (G on 10 x the feature loss, `pretrain_steps` steps), then "d"
(D on 0.5 (BCE(real, 1) + BCE(G(x), 0)) until that loss < threshold) and
"g" (G on BCE(D(G(x)), 1) + 10 x feature L1 over pool1-3 + 10,000 x the
boundary L1, the boundary being the mask's morphological gradient blurred
by a Gaussian of sigma 10 x patch / 256, until the adversarial term <
threshold), in turn. Adam (learning_rate, beta_1, beta_2, epsilon) for G
and D.

Differs: the peer's VGG-19 has random weights whatever `feature_weights`
says (the time of a step does not depend on their values; compare.py runs
gan_zoo with `feature_weights=random` too). Which phase a step is in
depends on the losses, so past the pre-training the two sides may
alternate differently; at the registry default (10,000 pre-training steps)
every benchmark step is a pre-training step on both sides.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_zoo.models.cigan import alternation_schedule  # the model's own phases, not a copy

from .base import Peer, frozen, keras_adam
from .layers import Float32, bce, one_hot_maps, per_example_mean

# Keras' ImageNet "caffe" preprocessing: BGR means of the training images.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
VGG19_TO_POOL3 = ((64, 64), (128, 128), (256, 256, 256, 256))
SIGMA_REFERENCE_SIZE = 256


def generator_scales(patch_size):
    """Sides of the cascade, 4x4 up to the patch."""
    scales, side = [], 4
    while side <= patch_size:
        scales.append(side)
        side *= 2
    return scales


class Generator(nn.Module):
    def __init__(self, patch_size, widths, num_classes=2):
        super().__init__()
        self.patch_size, self.num_classes = patch_size, num_classes
        self.scales = generator_scales(patch_size)
        blocks, width_in = [], 0
        for i, _ in enumerate(self.scales):
            width_in += 2 + num_classes  # the stack at this scale
            blocks.append(nn.Sequential(nn.Conv2d(width_in, widths[i], 3, padding=1), nn.ReLU(),
                                        nn.Conv2d(widths[i], widths[i], 3, padding=1), nn.ReLU()))
            width_in = widths[i]
        self.blocks = nn.ModuleList(blocks)
        self.to_image = Float32(nn.Conv2d(width_in, 1, 1))

    def forward(self, context, mask, labels):
        stack = torch.cat([context, mask, one_hot_maps(labels, self.num_classes, self.patch_size)], dim=1)
        x = None
        for size, block in zip(self.scales, self.blocks):
            factor = self.patch_size // size
            level = F.avg_pool2d(stack, factor) if factor > 1 else stack
            x = level if x is None else torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), level], 1)
            x = block(x)
        generated = torch.sigmoid(self.to_image(x))
        return torch.where(mask > 0.5, generated, context.float())


class Discriminator(nn.Module):
    def __init__(self, patch_size, widths, num_classes=2, negative_slope=0.2):
        super().__init__()
        self.patch_size, self.num_classes = patch_size, num_classes
        layers, width_in, side = [], 1 + num_classes, patch_size
        for width in widths:
            layers += [nn.Conv2d(width_in, width, 3, padding=1), nn.LeakyReLU(negative_slope),
                       nn.MaxPool2d(2, ceil_mode=True)]  # Keras' 'same' pool: ceil(side / 2)
            width_in, side = width, -(-side // 2)
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.logit = Float32(nn.Linear(width_in * side * side, 1))

    def forward(self, images, labels):
        maps = one_hot_maps(labels, self.num_classes, self.patch_size)
        return self.logit(self.convs(torch.cat([images, maps], dim=1)))


class VGG19Features(nn.Module):
    """Grey [0, 1] patches -> VGG-19's pool1, pool2, pool3 maps (frozen)."""

    def __init__(self):
        super().__init__()
        blocks, width_in = [], 3
        for widths in VGG19_TO_POOL3:
            layers = []
            for width in widths:
                layers += [nn.Conv2d(width_in, width, 3, padding=1), nn.ReLU()]
                width_in = width
            blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        self.blocks = nn.ModuleList(blocks)
        # A constant, as in Keras' CaffeInput (not a weight: not counted).
        self.mean = torch.tensor(IMAGENET_BGR_MEAN).reshape(1, 3, 1, 1)
        self.requires_grad_(False)

    def forward(self, images):
        x = images.expand(-1, 3, -1, -1) * 255.0 - self.mean
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps


def gaussian_taps(sigma, truncate=4.0):
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return torch.from_numpy((taps / taps.sum()).astype(np.float32))


def boundary_weights(masks, sigma):
    """The mask's morphological gradient (3x3) blurred by a separable Gaussian, zero padded."""
    dilated = F.max_pool2d(masks, 3, 1, padding=1)
    eroded = -F.max_pool2d(-masks, 3, 1, padding=1)
    taps = gaussian_taps(sigma)
    radius = len(taps) // 2
    blurred = F.conv2d(dilated - eroded, taps.reshape(1, 1, -1, 1), padding=(radius, 0))
    return F.conv2d(blurred, taps.reshape(1, 1, 1, -1), padding=(0, radius))


def synthetic_batch(batch_size, patch_size, seed):
    """`CIGAN.synthetic_batch`: uniform patches, one square mask each, classes 0/1 (NCHW)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (batch_size, 1, patch_size, patch_size)).astype(np.float32)
    masks = np.zeros_like(images)
    for mask in masks:
        side = int(rng.integers(patch_size // 8, patch_size // 3 + 1))
        y, x = rng.integers(0, patch_size - side, 2)
        mask[0, y : y + side, x : x + side] = 1.0
    labels = rng.integers(0, 2, batch_size).astype(np.int64)
    return torch.from_numpy(images), torch.from_numpy(masks), torch.from_numpy(labels)


class CIGANPeer(Peer):
    """ciGAN's networks, optimizers and phased step (module docstring)."""

    def __init__(self, config, batch_size, precision, seed=0):
        super().__init__(precision, seed)
        patch = int(config["patch_size"])
        self.generator = Generator(patch, [int(w) for w in config["widths"]])
        self.discriminator = Discriminator(patch, [int(w) for w in config["discriminator_widths"]],
                                           negative_slope=float(config["leaky_relu_slope"]))
        self.features = VGG19Features()
        self.networks = {"generator": self.generator, "discriminator": self.discriminator,
                         "features": self.features}
        adam = dict(learning_rate=float(config["learning_rate"]), beta_1=float(config["beta_1"]),
                    beta_2=float(config["beta_2"]), epsilon=float(config["epsilon"]))
        self.g_optimizer = keras_adam(self.generator.parameters(), **adam)
        self.d_optimizer = keras_adam(self.discriminator.parameters(), **adam)
        self.weights = {k: float(config[f"{k}_weight"]) for k in ("adversarial", "feature", "boundary")}
        self.schedule = alternation_schedule(int(config["pretrain_steps"]), float(config["switch_threshold"]),
                                             config["max_phase_steps"], config["switch_d_loss"])
        self.state = (0, 0)
        self.images, self.masks, self.labels = synthetic_batch(batch_size, patch, seed)
        self.boundary = boundary_weights(self.masks, float(config["boundary_sigma"]) * patch / SIGMA_REFERENCE_SIZE)
        self.train()
        self.features.eval()  # frozen, Keras' training=False

    def feature_loss(self, fake):
        with torch.no_grad():
            real_maps = self.features(self.images)
        total = 0.0
        for real, generated in zip(real_maps, self.features(fake)):
            total = total + per_example_mean(torch.abs(generated.float() - real.float()))
        return total

    def train_step(self):
        phase = self.schedule.phase(self.state[0])
        context = torch.where(self.masks > 0.5, self.uniform(*self.images.shape), self.images)
        signals = {}
        if "pretrain" in phase.updates:
            loss = (self.weights["feature"] * self.feature_loss(
                self.generator(context, self.masks, self.labels))).mean()
            self.g_optimizer.zero_grad()
            loss.backward()
            self.g_optimizer.step()
        if "d" in phase.updates:
            with torch.no_grad():
                fake = self.generator(context, self.masks, self.labels)
            loss = 0.5 * (bce(self.discriminator(self.images, self.labels), 1.0)
                          + bce(self.discriminator(fake, self.labels), 0.0))
            loss = loss.mean()
            self.d_optimizer.zero_grad()
            loss.backward()
            self.d_optimizer.step()
            signals["d_loss"] = float(loss)
        if "g" in phase.updates:
            with frozen(self.discriminator):
                fake = self.generator(context, self.masks, self.labels)
                adversarial = bce(self.discriminator(fake, self.labels), 1.0)
                boundary = per_example_mean(torch.abs(self.boundary * (self.images - fake.float())))
                loss = (self.weights["adversarial"] * adversarial + self.weights["feature"] * self.feature_loss(fake)
                        + self.weights["boundary"] * boundary).mean()
            self.g_optimizer.zero_grad()
            loss.backward()
            self.g_optimizer.step()
            signals["g_adv_loss"] = float(adversarial.mean())
        self.state = self.schedule.advance(*self.state, signals)
        return loss.detach()


def build(config, batch_size, precision, seed=0):
    """The ciGAN peer for a resolved `cigan` registry config."""
    return CIGANPeer(config, batch_size, precision, seed)
