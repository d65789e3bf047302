"""Choosing a tf.distribute strategy from a command-line flag."""

import tensorflow as tf

from gan_zoo.options import STRATEGIES


def get_strategy(name="auto"):
    """A `tf.distribute.Strategy` by name.

    - "auto": `MirroredStrategy` over all GPUs when there are several, else
      the default (one device) strategy;
    - "default": one device;
    - "mirrored": `MirroredStrategy` over every local GPU (or the CPU);
    - "multiworker": `MultiWorkerMirroredStrategy`; each machine reads its
      role from the `TF_CONFIG` environment variable.

    Create the model and compile it inside `strategy.scope()`. Zoo models
    reduce losses over the global batch and draw per-replica noise, so N
    replicas with global batch B train like one device with batch B.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}.")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()
