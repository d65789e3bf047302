"""Building blocks shared by the zoo's GANs.

All layers are registered for `.keras` serialization under the package name
`gan_zoo`.
"""

from gan_zoo.layers.attention import SelfAttention
from gan_zoo.layers.batch_normalization import BatchNormalization
from gan_zoo.layers.noise import NoiseInjection, ScopedDropout
from gan_zoo.layers.normalization import AdaptiveInstanceNormalization
from gan_zoo.layers.spectral_norm import (
    SpectralConv2D,
    SpectralConv2DTranspose,
    SpectralDense,
)

__all__ = [
    "AdaptiveInstanceNormalization",
    "BatchNormalization",
    "NoiseInjection",
    "ScopedDropout",
    "SelfAttention",
    "SpectralConv2D",
    "SpectralConv2DTranspose",
    "SpectralDense",
]
