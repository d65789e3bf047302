"""PyTorch peers of the zoo's models, found by registry name.

Each `benchmarks/peers/<registry name>.py` holds one model's architecture
and training step in PyTorch and exposes

    build(config: dict, batch_size: int, precision: str, seed: int = 0) -> Peer

with `config` the resolved registry config (`gan_zoo.registry.resolve_config`),
`precision` "float32" or "mixed_bfloat16"; the `Peer` (`peers.base`) has
`step()` (one full training step on a fixed synthetic batch) and `params`
({network name: weight count}). `benchmarks/compare.py` times them against
gan_zoo. Torch is needed only here (`pip install -e ".[bench]"`).
"""

import importlib

# Registry name -> module of this package (one per zoo model).
MODELS = (
    "cigan",
    "cruz_roa_cnn",
    "cyclegan",
    "dcgan",
    "diagram",
    "pathology_gan",
    "resnet18_classifier",
    "resnet50_classifier",
    "semi_cgan",
    "small_cnn",
)


def load(name):
    """The peer module of registry model `name` (KeyError when it has none)."""
    if name not in MODELS:
        raise KeyError(f"no PyTorch peer for {name!r}; peers exist for {', '.join(MODELS)}.")
    return importlib.import_module(f"{__name__}.{name}")


def build(name, config, batch_size, precision, seed=0):
    """The built peer of `name`: `load(name).build(config, batch_size, precision, seed)`."""
    return load(name).build(config, batch_size, precision, seed)
