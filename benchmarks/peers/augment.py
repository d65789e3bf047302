"""Random image augmentation for the classifier peers, per sample, NCHW.

The torch counterparts of the Keras layers the zoo's classifiers hold
inside their graphs (active while training): `RandomFlip`, gan_zoo's
`RandomRot90`, `RandomRotation` / `RandomZoom` (a bilinear resampling with
reflected borders; here `affine_grid` + `grid_sample`, whose reflection
and sampling grid differ from TensorFlow's projective transform by at
most a pixel) and `GaussianNoise`. Every draw comes from the peer's
generator.
"""

import math

import torch
import torch.nn.functional as F


def _per_sample(mask):
    return mask[:, None, None, None]


def random_flip(images, dim, draws):
    """Each image mirrored along `dim` (3: horizontal, 2: vertical) with probability 1/2."""
    flip = torch.rand(len(images), generator=draws) < 0.5
    return torch.where(_per_sample(flip), images.flip(dim), images)


def random_rot90(images, draws):
    """Each square image turned by its own k x 90 degrees, k uniform in 0..3."""
    k = _per_sample(torch.randint(0, 4, (len(images),), generator=draws))
    transposed = images.transpose(2, 3)
    out = torch.where(k == 1, transposed.flip(2), images)
    out = torch.where(k == 2, images.flip(2).flip(3), out)
    return torch.where(k == 3, transposed.flip(3), out)


def _resample(images, theta):
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_rotation(images, max_radians, draws):
    """Each image rotated by an angle uniform in [-max_radians, max_radians], borders reflected."""
    angle = (torch.rand(len(images), generator=draws) * 2.0 - 1.0) * max_radians
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    return _resample(images, theta)


def random_zoom(images, low, high, draws):
    """Each image shown at 1 / f of its size, f uniform in [low, high] (Keras' 1 + factor)."""
    factor = torch.rand(len(images), generator=draws) * (high - low) + low
    zero = torch.zeros_like(factor)
    theta = torch.stack([torch.stack([factor, zero, zero], 1), torch.stack([zero, factor, zero], 1)], 1)
    return _resample(images, theta)


def gaussian_noise(images, std, draws):
    return images + std * torch.randn(images.shape, generator=draws)


def degrees(value):
    return math.radians(float(value))
