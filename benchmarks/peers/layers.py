"""PyTorch layers the peers share: spectral norm, float32 heads, losses.

The spectrally normalised layers follow `gan_zoo.layers.spectral_norm`:
the trainable weight stays untouched in float32, one power iteration per
training call (in float32, also under autocast) updates a stored singular
vector `u`, and the layer computes with `W / sigma(W)`, differentiating
through sigma with `u` held constant (Miyato et al. 2018). `u` has the
length of the weight's first torch dimension: output channels of a
convolution or dense layer, input channels of a transposed convolution,
the same vector as Keras' (an operator and its adjoint share their norm).
"""

import torch
import torch.nn.functional as F
from torch import nn


def _normalize(vector, epsilon):
    return vector * torch.rsqrt(torch.clamp(torch.sum(vector * vector), min=epsilon))


class SpectralNormMixin:
    """Power iteration and `normalized_weight()` for a layer with a `weight`."""

    def init_spectral(self, epsilon=1e-12):
        self.epsilon = epsilon
        self.register_buffer("spectral_u", torch.randn(self.effective_weight().shape[0]))

    def effective_weight(self):
        """The kernel before normalisation (fused-scaling layers override it)."""
        return self.weight

    def normalized_weight(self):
        with torch.autocast("cpu", enabled=False):
            weight = self.effective_weight().float()
            matrix = weight.reshape(weight.shape[0], -1)
            u = _normalize(self.spectral_u, self.epsilon)
            if self.training:
                with torch.no_grad():
                    v = _normalize(matrix.t() @ u, self.epsilon)
                    u = _normalize(matrix @ v, self.epsilon)
                    self.spectral_u.copy_(u)
            product = matrix.t() @ u
            sigma = torch.sqrt(torch.clamp(torch.sum(product * product), min=self.epsilon))
            return weight / sigma


class SNConv2d(SpectralNormMixin, nn.Conv2d):
    """`nn.Conv2d` whose weight is divided by its spectral norm."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_spectral()

    def forward(self, x):
        return self._conv_forward(x, self.normalized_weight(), self.bias)


class SNConvTranspose2d(SpectralNormMixin, nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` whose weight is divided by its spectral norm."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_spectral()

    def forward(self, x):
        return F.conv_transpose2d(x, self.normalized_weight(), self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


class SNLinear(SpectralNormMixin, nn.Linear):
    """`nn.Linear` whose weight is divided by its spectral norm."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_spectral()

    def forward(self, x):
        return F.linear(x, self.normalized_weight(), self.bias)


class Float32(nn.Module):
    """Runs `layer` in float32 under autocast, as a Keras layer with dtype="float32"."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        with torch.autocast("cpu", enabled=False):
            return self.layer(x.float())


class Reshape(nn.Module):
    """[B, ...] -> [B, *shape] (Keras' Reshape, channels first)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


def one_hot_maps(labels, num_classes, side):
    """int labels [B] -> constant one-hot maps [B, K, side, side] (Keras' LabelMaps)."""
    one_hot = F.one_hot(labels, num_classes).float()
    return one_hot[:, :, None, None].expand(-1, -1, side, side)


def transposed_output_padding(size_in, size_out, stride=2):
    """The `output_padding` of a 'same' transposed conv (odd kernel k, padding (k - 1) / 2).

    Such a conv gives `stride * (n - 1) + 1 + output_padding` pixels: with
    stride 2, `2n - 1 + output_padding`, as Keras' 'same' with output_padding.
    """
    padding_out = size_out - stride * size_in + stride - 1
    if not 0 <= padding_out < stride:
        raise ValueError(f"a stride-{stride} transposed conv cannot map {size_in} to {size_out} pixels.")
    return padding_out


# ------------------------------------------------------------------ losses
# Per-example losses on float32 logits, as gan_zoo.losses computes them.
def bce(logits, label):
    """Per-example sigmoid cross-entropy against a constant label, mean over non-batch axes."""
    logits = logits.float()
    target = torch.full_like(logits, float(label))
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return loss.reshape(loss.shape[0], -1).mean(dim=1)


def per_example_mean(values):
    return values.reshape(values.shape[0], -1).mean(dim=1)


def gradient_penalty(critic, real, fake, alpha, target=1.0, epsilon=1e-12):
    """WGAN-GP per sample: (||d sum(critic(x_hat)) / d x_hat||_2 - target)^2.

    `x_hat = alpha * real + (1 - alpha) * fake`, one alpha per sample; the
    inner gradient keeps its graph, so the penalty trains the critic
    (Gulrajani et al. 2017), as `gan_zoo.losses.gradient_penalty`.
    """
    alpha = alpha.reshape(-1, *([1] * (real.dim() - 1)))
    leaf = (alpha * real.float() + (1.0 - alpha) * fake.float()).detach().requires_grad_(True)
    # A view, not the leaf itself: torch's FlopCounterMode (compare.py counts
    # the peers' FLOPs with it) rejects autograd.grad w.r.t. a leaf.
    interpolates = leaf.view_as(leaf)
    outputs = critic(interpolates).float().sum()
    (gradients,) = torch.autograd.grad(outputs, interpolates, create_graph=True)
    gradients = gradients.float().reshape(gradients.shape[0], -1)
    norm = torch.sqrt(torch.sum(gradients * gradients, dim=1) + epsilon)
    return (norm - target) ** 2
