"""Timing the peers: torch's matmul peak, a peer's training steps, its FLOPs.

The torch side of `benchmarks/compare.py`, measured the way
`benchmarks/throughput.py` measures gan_zoo: the peak from a square matmul
repeated after a warm-up, the steps timed one by one after as many warm-up
steps as gan_zoo takes (`max(2, warmup)`), each ending on a finished step
(`Peer.step()` returns a float).
"""

import math
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import build

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def matmul_peak(dtype, size=4096, min_seconds=3.0):
    """GFLOP/s of a [size, size] x [size, size] torch matmul in `dtype` ("float32", "bfloat16").

    As `throughput.measure_matmul_peak`: entries ~ N(0, 1/size), the product
    reduced to a float so each timing covers a finished matmul, one
    warm-up call, then repeats until `min_seconds` have passed (at least 3).
    """
    generator = torch.Generator().manual_seed(1)
    a = (torch.randn(size, size, generator=generator) * size**-0.5).to(DTYPES[dtype])
    b = (torch.randn(size, size, generator=generator) * size**-0.5).to(DTYPES[dtype])

    def matmul_sum():
        return float(torch.matmul(a, b).float().sum())

    matmul_sum()
    seconds = []
    while len(seconds) < 3 or sum(seconds) < min_seconds:
        start = time.perf_counter()
        matmul_sum()
        seconds.append(time.perf_counter() - start)
    flops = 2.0 * size**3
    return {
        "dtype": dtype,
        "size": size,
        "repeats": len(seconds),
        "best_gflops": flops / min(seconds) / 1e9,
        "median_gflops": flops / statistics.median(seconds) / 1e9,
    }


def time_peer(name, config, precision, batch_size, warmup, steps, seed=0):
    """Builds the peer of `name`, warms it up and times `steps` steps; returns the row.

    Args:
        name: registry name.
        config: the resolved registry config.
        precision: "float32" or "mixed_bfloat16".
        batch_size: images per step.
        warmup: untimed steps, at least 2 (as gan_zoo's warm-up).
        steps: timed steps.
        seed: seed of the weights, the batch and the draws.
    """
    start = time.perf_counter()
    peer = build(name, config, batch_size, precision, seed)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    peer.step()
    first_step_s = time.perf_counter() - start
    warmup_steps = max(2, warmup)
    for _ in range(warmup_steps - 1):
        peer.step()
    seconds, loss = [], None
    for _ in range(steps):
        start = time.perf_counter()
        loss = peer.step()
        seconds.append(time.perf_counter() - start)
    total = sum(seconds)
    row = {
        "build_s": build_s,
        "first_step_s": first_step_s,
        "warmup_steps": warmup_steps,
        "seconds": total,
        "images_per_s": batch_size * steps / total,
        "ms_per_step": 1000 * total / steps,
        "ms_per_step_median": 1000 * statistics.median(seconds),
        "ms_per_step_min": 1000 * min(seconds),
        "last_loss": loss,
        "loss_finite": math.isfinite(loss),
        "params": peer.params,
    }
    del peer
    return row


def count_peer_flops(name, config, batch_size, seed=0):
    """Conv / matmul FLOPs per step of a fresh float32 peer, by torch's FlopCounterMode.

    The counter sees the ops that actually run (forward, both backward
    convolution gradients only where needed, the penalty's second
    backward), so it counts what `throughput.profiler_flops` counts as
    conv / matmul work. A peer whose updates cycle (`steps_per_cycle`,
    e.g. PathologyGAN's n_critic) is counted over one cycle, per step.
    """
    peer = build(name, config, batch_size, "float32", seed)
    cycle = int(peer.steps_per_cycle)
    counter = FlopCounterMode(display=False)
    with counter:
        for _ in range(cycle):
            peer.step()
    return {"method": "torch FlopCounterMode", "steps_counted": cycle,
            "flops_per_step": float(counter.get_total_flops()) / cycle, "params": peer.params}
