"""PyTorch peer of `pathology_gan` (Quiros, Murray-Smith & Yuan, MIDL 2020).

Same as gan_zoo (`gan_zoo.models.pathology_gan_networks`): every conv and
dense layer spectrally normalised with one power iteration and
orthogonally initialised, the AdaIN MLPs Xavier-initialised, LeakyReLU 0.2.

- mapping: z -> `mapping_blocks` x [SN-dense, ReLU, SN-dense, ReLU, + input]
  -> SN-dense = w (all `latent_dim` wide);
- synthesis: styles [B, stages + 1, D]; slot 0: SN-dense `dense_units` -
  AdaIN - LReLU - SN-dense 7x7x`initial_channels` - AdaIN - LReLU -
  reshape; per stage: a residual block (3x3 SN conv - noise - AdaIN -
  LReLU, twice, + input), self-attention after the block at
  `attention_resolution`, then (next slot) the fused-upscale transposed
  conv (a 2x2 kernel padded and summed over its four shifts into 3x3,
  stride 2, spectrally normalised as the 3x3 kernel) - noise - AdaIN -
  LReLU; a 3x3 SN conv to RGB and a sigmoid. AdaIN: hidden = ReLU(SN-dense
  (C + D) // 2 (w)), gamma = ReLU(SN-dense C), beta = SN-dense C, the
  features standardised per sample in float32 (over H, W, or over the
  features of a dense layer). Noise: N(0, 1) per channel and sample (or
  per pixel) times a learned per-channel weight. Self-attention (SAGAN):
  1x1 SN convs to C / 8 keys and queries and C values, float32 softmax
  over positions, gamma * attended + input;
- critic: per stage a residual block (3x3 SN conv - LReLU, twice, +
  input), self-attention at `attention_resolution`, the fused-downscale
  conv (4x4 -> 5x5, stride 2) - LReLU; flatten, SN-dense `dense_units`,
  LReLU, float32 SN-dense logit.

Step: gan_zoo's own `UpdateSchedule.ratio(n_critic)`: n_critic - 1 critic
steps, then a step of both. Critic update: fakes from two z ~ N(0, 1)
with style mixing (probability 0.5, one cut in 1..stages per batch), not
trained through; the critic on [real, fake] in one call; RaSGAN loss with
batch means + 0.65 x the per-sample WGAN-GP penalty on interpolates. G
update (after the critic's): fresh fakes, the critic (passed through) on
[real, fake], the RaSGAN generator loss. Adam (learning rates, beta_1,
beta_2, epsilon 1e-7) for G (mapping + synthesis) and the critic.

Differs: reshapes and flattens are channels-first (a permutation of the
same weights). Not implemented (NotImplementedError):
`orthogonal_regularization` > 0, `ema_decay`, `augment_policy`.
"""

import numpy as np
import torch
import torch.nn.functional as F
from gan_zoo.schedules import UpdateSchedule
from torch import nn

from .base import Peer, frozen, keras_adam, refuse_options, uniform_images
from .layers import Float32, SNConv2d, SNConvTranspose2d, SNLinear, bce, gradient_penalty

BASE_SIZE = 7


def _orthogonal(layer):
    nn.init.orthogonal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def sn_linear(units_in, units):
    return _orthogonal(SNLinear(units_in, units))


def sn_conv(channels_in, channels, kernel=3):
    return _orthogonal(SNConv2d(channels_in, channels, kernel, padding=kernel // 2))


def leaky(x):
    return F.leaky_relu(x, 0.2)


def fused_kernel(weight):
    """A k x k kernel -> the (k+1) x (k+1) sum of its four 1-pixel shifts (ProGAN)."""
    padded = F.pad(weight, (1, 1, 1, 1))
    return padded[..., 1:, 1:] + padded[..., :-1, 1:] + padded[..., 1:, :-1] + padded[..., :-1, :-1]


class FusedUpscale(SNConvTranspose2d):
    """Stride-2 transposed conv whose 2x2 kernel acts as a fused 3x3 one: n -> 2n."""

    def __init__(self, channels_in, channels):
        super().__init__(channels_in, channels, 2, stride=2, padding=1, output_padding=1)

    def effective_weight(self):
        return fused_kernel(self.weight)


class FusedDownscale(SNConv2d):
    """Stride-2 conv whose 4x4 kernel acts as a fused 5x5 one: n -> ceil(n / 2)."""

    def __init__(self, channels_in, channels):
        super().__init__(channels_in, channels, 4, stride=2, padding=2)

    def effective_weight(self):
        return fused_kernel(self.weight)


class AdaIN(nn.Module):
    """PathologyGAN's AdaIN: a spectrally normalised MLP of w re-styles standardised x."""

    def __init__(self, channels, style_dim, epsilon=1e-5):
        super().__init__()
        hidden = (channels + style_dim) // 2
        self.hidden, self.gamma, self.beta = (
            SNLinear(style_dim, hidden), SNLinear(hidden, channels), SNLinear(hidden, channels))
        for layer in (self.hidden, self.gamma, self.beta):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.epsilon = epsilon

    def forward(self, x, w):
        hidden = F.relu(self.hidden(w))
        gamma, beta = F.relu(self.gamma(hidden)).float(), self.beta(hidden).float()
        axes = (2, 3) if x.dim() == 4 else (1,)
        x32 = x.float()
        mean, variance = x32.mean(dim=axes, keepdim=True), x32.var(dim=axes, unbiased=False, keepdim=True)
        normalized = (x32 - mean) * torch.rsqrt(variance + self.epsilon)
        if x.dim() == 4:
            gamma, beta = gamma[:, :, None, None], beta[:, :, None, None]
        return (gamma * normalized + beta).to(x.dtype)


class Noise(nn.Module):
    """x + weight * N(0, 1): one draw per channel and sample, or per pixel."""

    def __init__(self, channels, per_pixel, draws):
        super().__init__()
        limit = (3.0 / channels) ** 0.5  # Xavier-uniform of a [C] weight, as Keras' glorot_uniform
        self.weight = nn.Parameter(torch.empty(channels).uniform_(-limit, limit))
        self.per_pixel, self.draws = per_pixel, draws

    def forward(self, x):
        b, c, h, w = x.shape
        shape = (b, 1, h, w) if self.per_pixel else (b, c, 1, 1)
        noise = torch.randn(shape, generator=self.draws).to(x.dtype)
        return x + self.weight.to(x.dtype)[None, :, None, None] * noise


class SelfAttention(nn.Module):
    """SAGAN self-attention with spectrally normalised 1x1 projections, gamma from 0."""

    def __init__(self, channels, reduction=8):
        super().__init__()
        keys = max(1, channels // reduction)
        self.key, self.query, self.value = sn_conv(channels, keys, 1), sn_conv(channels, keys, 1), \
            sn_conv(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        b, c, h, w = x.shape
        keys = self.key(x).reshape(b, -1, h * w)
        queries = self.query(x).reshape(b, -1, h * w).transpose(1, 2)
        values = self.value(x).reshape(b, c, h * w).transpose(1, 2)
        attention = torch.softmax((queries @ keys).float(), dim=-1)
        attended = (attention.to(values.dtype) @ values).transpose(1, 2).reshape(b, c, h, w)
        return self.gamma.to(attended.dtype) * attended + x


def stage_channels(stages, base_channels):
    """Up-conv widths of the generator, first stage first: 5 stages -> 512 ... 32."""
    return [base_channels * 2**i for i in range(stages)][::-1]


class Mapping(nn.Module):
    def __init__(self, latent_dim, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList([sn_linear(latent_dim, latent_dim), sn_linear(latent_dim, latent_dim)])
            for _ in range(blocks))
        self.w = sn_linear(latent_dim, latent_dim)

    def forward(self, z):
        x = z
        for first, second in self.blocks:
            x = x + F.relu(second(F.relu(first(x))))
        return self.w(x)


class Synthesis(nn.Module):
    def __init__(self, c, draws):
        super().__init__()
        d, stages = int(c["latent_dim"]), int(c["stages"])
        units, initial = int(c["dense_units"]), int(c["initial_channels"])
        per_pixel = c["noise_layout"] == "per_pixel"
        self.initial = initial
        self.dense1, self.adain1 = sn_linear(d, units), AdaIN(units, d)
        self.dense2 = sn_linear(units, BASE_SIZE * BASE_SIZE * initial)
        self.adain2 = AdaIN(BASE_SIZE * BASE_SIZE * initial, d)
        self.stages = nn.ModuleList()
        width, size = initial, BASE_SIZE
        for filters in stage_channels(stages, int(c["base_channels"])):
            stage = nn.Module()
            stage.convs = nn.ModuleList([sn_conv(width, width), sn_conv(width, width)])
            stage.noises = nn.ModuleList([Noise(width, per_pixel, draws), Noise(width, per_pixel, draws)])
            stage.adains = nn.ModuleList([AdaIN(width, d), AdaIN(width, d)])
            stage.attention = SelfAttention(width) if size == int(c["attention_resolution"]) else None
            stage.up = (_orthogonal(FusedUpscale(width, filters)) if c["fused_scaling"]
                        else _orthogonal(SNConvTranspose2d(width, filters, 2, stride=2)))
            stage.up_noise, stage.up_adain = Noise(filters, per_pixel, draws), AdaIN(filters, d)
            self.stages.append(stage)
            width, size = filters, size * 2
        self.to_image = sn_conv(width, 3)

    def forward(self, styles):
        w0 = styles[:, 0]
        x = leaky(self.adain1(self.dense1(w0), w0))
        x = leaky(self.adain2(self.dense2(x), w0))
        x = x.reshape(x.shape[0], self.initial, BASE_SIZE, BASE_SIZE)
        for index, stage in enumerate(self.stages):
            w = styles[:, index]
            h = x
            for conv, noise, adain in zip(stage.convs, stage.noises, stage.adains):
                h = leaky(adain(noise(conv(h)), w))
            x = x + h
            if stage.attention is not None:
                x = stage.attention(x)
            x = leaky(stage.up_adain(stage.up_noise(stage.up(x)), styles[:, index + 1]))
        return torch.sigmoid(self.to_image(x).float())


class Generator(nn.Module):
    """The "generator" network: mapping + synthesis."""

    def __init__(self, config, draws):
        super().__init__()
        self.mapping = Mapping(int(config["latent_dim"]), int(config["mapping_blocks"]))
        self.synthesis = Synthesis(config, draws)


class Critic(nn.Module):
    def __init__(self, c):
        super().__init__()
        stages, image_size = int(c["stages"]), BASE_SIZE * 2 ** int(c["stages"])
        self.stages = nn.ModuleList()
        width, size = 3, image_size
        for filters in stage_channels(stages, int(c["base_channels"]))[::-1]:
            stage = nn.Module()
            stage.convs = nn.ModuleList([sn_conv(width, width), sn_conv(width, width)])
            stage.attention = SelfAttention(width) if size == int(c["attention_resolution"]) else None
            stage.down = (_orthogonal(FusedDownscale(width, filters)) if c["fused_scaling"]
                          else _orthogonal(SNConv2d(width, filters, 4, stride=2, padding=1)))
            self.stages.append(stage)
            width, size = filters, size // 2
        self.dense = sn_linear(width * size * size, int(c["dense_units"]))
        self.logits = Float32(sn_linear(int(c["dense_units"]), 1))

    def forward(self, images):
        x = images
        for stage in self.stages:
            h = x
            for conv in stage.convs:
                h = leaky(conv(h))
            x = x + h
            if stage.attention is not None:
                x = stage.attention(x)
            x = leaky(stage.down(x))
        return self.logits(leaky(self.dense(x.flatten(1))))


def _relativistic(real_logits, fake_logits):
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return real_logits - fake_logits.mean(dim=0, keepdim=True), fake_logits - real_logits.mean(dim=0, keepdim=True)


class PathologyGANPeer(Peer):
    """PathologyGAN's networks, optimizers and n_critic schedule (module docstring)."""

    def __init__(self, config, batch_size, precision, seed=0):
        super().__init__(precision, seed)
        refuse_options("pathology_gan", config, {
            "orthogonal_regularization": (0, 0.0), "ema_decay": (None,), "augment_policy": (None,)})
        self.latent_dim, self.stages = int(config["latent_dim"]), int(config["stages"])
        self.mixing_probability = float(config["style_mixing_probability"])
        self.penalty_weight = float(config["gradient_penalty_weight"])
        self.generator = Generator(config, self.draws)
        self.discriminator = Critic(config)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        betas = dict(beta_1=float(config["beta_1"]), beta_2=float(config["beta_2"]))
        self.g_optimizer = keras_adam(self.generator.parameters(), float(config["learning_rate_g"]), **betas)
        self.d_optimizer = keras_adam(self.discriminator.parameters(), float(config["learning_rate_d"]), **betas)
        self.schedule = UpdateSchedule.ratio(int(config["n_critic"]), critic=("d",), both=("d", "g"))
        self.steps_per_cycle = int(config["n_critic"])
        self.state = (0, 0)
        side = BASE_SIZE * 2**self.stages
        self.real = uniform_images(np.random.default_rng(seed), batch_size, side, 3, 0.0, 1.0)
        self.train()

    def fakes(self):
        """Generated images: two z, style mixing from one cut per batch, noise inputs."""
        batch, slots = self.real.shape[0], self.stages + 1
        w1 = self.generator.mapping(self.normal(batch, self.latent_dim))
        w2 = self.generator.mapping(self.normal(batch, self.latent_dim))
        cut = slots
        if float(self.uniform(1)) < self.mixing_probability:
            cut = int(self.integers(slots - 1, 1)) + 1
        styles = torch.where(torch.arange(slots)[None, :, None] < cut, w1[:, None, :], w2[:, None, :])
        return self.generator.synthesis(styles)

    def critic_pair(self, fake):
        logits = self.discriminator(torch.cat([self.real, fake.to(self.real.dtype)], dim=0))
        return logits[: len(self.real)], logits[len(self.real):]

    def train_step(self):
        updates = self.schedule.phase(self.state[0]).updates
        with torch.no_grad():
            fake = self.fakes()
        real_vs_fake, fake_vs_real = _relativistic(*self.critic_pair(fake))
        adversarial = bce(real_vs_fake, 1.0) + bce(fake_vs_real, 0.0)
        penalty = gradient_penalty(self.discriminator, self.real, fake, self.uniform(len(self.real)))
        d_loss = (adversarial + self.penalty_weight * penalty).mean()
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()
        loss = d_loss
        if "g" in updates:
            with frozen(self.discriminator):
                real_vs_fake, fake_vs_real = _relativistic(*self.critic_pair(self.fakes()))
                loss = (bce(fake_vs_real, 1.0) + bce(real_vs_fake, 0.0)).mean()
            self.g_optimizer.zero_grad()
            loss.backward()
            self.g_optimizer.step()
        self.state = self.schedule.advance(*self.state)
        return loss.detach()


def build(config, batch_size, precision, seed=0):
    """The PathologyGAN peer for a resolved `pathology_gan` registry config."""
    return PathologyGANPeer(config, batch_size, precision, seed)
