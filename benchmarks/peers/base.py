"""What every PyTorch peer shares: the `Peer` base class and its helpers.

A peer is one zoo model's architecture and training step written in
PyTorch, for `benchmarks/compare.py`. Its `step()` runs one full training
step (every optimizer update gan_zoo's `train_step` makes) on a fixed
synthetic batch and returns when the work is done: CPU ops run
synchronously, and the step ends by reading a loss as a Python float, as
`throughput.time_training` materialises the Keras logs.

Conventions shared with Keras, so both sides do the same work:

- parameter counts as `keras.Model.count_params()`: every weight, trained
  or not (batch-norm moving statistics, spectral-norm vectors, a mean
  image), i.e. parameters plus floating-point buffers (`weight_count`);
- `mixed_bfloat16` is `torch.autocast("cpu", dtype=torch.bfloat16)` around
  the step, with float32 master weights; the layers Keras pins to float32
  (logit heads) are wrapped in `layers.Float32`;
- a gradient is computed only for the weights an update changes: networks
  that a loss only passes through are `frozen` (their input gradients are
  computed, their weight gradients are not, as TensorFlow prunes them), and
  generated images an update does not train through are detached;
- Keras' optimizer defaults where the model relies on them (Adam's
  epsilon 1e-7, batch norm's epsilon 1e-3 and momentum 0.99).
"""

import contextlib

import numpy as np
import torch

PRECISIONS = ("float32", "mixed_bfloat16")


def weight_count(module):
    """Weights of `module` as Keras counts them: parameters + float buffers.

    Integer buffers (batch norm's `num_batches_tracked`) have no Keras
    counterpart and are left out.
    """
    parameters = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return parameters + buffers


@contextlib.contextmanager
def frozen(*modules):
    """Within: no weight gradients for `modules` (their input gradients still flow)."""
    saved = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for parameter, _ in saved:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in saved:
            parameter.requires_grad_(flag)


def keras_adam(parameters, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """torch Adam with Keras' defaults (epsilon 1e-7 where torch has 1e-8)."""
    return torch.optim.Adam(parameters, lr=learning_rate, betas=(beta_1, beta_2), eps=epsilon)


def keras_batch_norm(channels, momentum=0.99, epsilon=1e-3):
    """BatchNorm2d with a Keras momentum (torch's momentum is 1 - Keras')."""
    return torch.nn.BatchNorm2d(channels, eps=epsilon, momentum=1.0 - momentum)


def nchw(array):
    """A float32 NHWC numpy batch as a contiguous NCHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, np.float32).transpose(0, 3, 1, 2)))


def uniform_images(rng, batch_size, side, channels, low, high):
    """`throughput.synthetic_batch`'s images: uniform in [low, high), NHWC draw order."""
    return nchw(rng.uniform(low, high, (batch_size, side, side, channels)).astype("float32"))


def integer_labels(rng, batch_size, num_classes):
    """`throughput.synthetic_batch`'s labels: uniform class ids, int64 for torch."""
    return torch.from_numpy(rng.integers(0, num_classes, batch_size).astype("int64"))


def refuse_options(name, config, supported_values):
    """Raises NotImplementedError for an option the peer does not implement.

    Args:
        name: the registry name, for the message.
        config: the resolved registry config.
        supported_values: {option: tuple of values the peer implements}.
    """
    for option, values in supported_values.items():
        if option in config and config[option] not in values:
            raise NotImplementedError(
                f"the PyTorch peer of {name} does not implement {option}={config[option]!r} "
                f"(it implements {', '.join(repr(v) for v in values)})."
            )


class Peer:
    """One model's networks, optimizers and training step in PyTorch.

    Subclasses set `networks` ({Keras network name: nn.Module}) and
    implement `train_step()`, which returns a loss tensor; `step()` wraps
    it in the precision's autocast and returns that loss as a float.

    Args:
        precision: "float32" or "mixed_bfloat16".
        seed: seed of the weights and of the per-step random draws.

    Attributes:
        params: {network name: weight count}, as Keras' `count_params()`.
        steps_per_cycle: steps after which the update schedule repeats (1
            unless the model alternates, e.g. n_critic for PathologyGAN);
            FLOPs are counted over one cycle.
    """

    steps_per_cycle = 1

    def __init__(self, precision, seed=0):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
        self.precision = precision
        self.seed = int(seed)
        torch.manual_seed(self.seed)
        # Per-step draws (z, noise, ...); its own stream, so it never clashes with
        # a network attribute called `generator`.
        self.draws = torch.Generator().manual_seed(self.seed + 1)
        self.networks = {}

    @property
    def params(self):
        return {name: weight_count(network) for name, network in self.networks.items()}

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "mixed_bfloat16")

    def train(self):
        """Puts every network in training mode (batch statistics, power iterations)."""
        for network in self.networks.values():
            network.train()
        return self

    def step(self):
        """One full training step; returns its (last) loss as a float."""
        with self.autocast():
            loss = self.train_step()
        return float(loss)

    def train_step(self):
        raise NotImplementedError(f"{type(self).__name__} must implement train_step().")

    # ------------------------------------------------------ random draws
    def normal(self, *shape):
        return torch.randn(tuple(shape), generator=self.draws)

    def uniform(self, *shape, low=0.0, high=1.0):
        return torch.rand(tuple(shape), generator=self.draws) * (high - low) + low

    def integers(self, high, *shape):
        return torch.randint(0, high, tuple(shape), generator=self.draws)
