"""The global Keras dtype policy the zoo's models are built and trained under.

`set_precision` is called once, before a model is built, by the CLI, the
recipes (`gan_zoo.experiments.start_run`) and the benchmarks. The models read the
policy back from Keras (`keras.mixed_precision.global_policy()`).
"""

import keras

from gan_zoo.options import PRECISIONS


def set_precision(policy):
    """Sets the global Keras dtype policy; one of float32 / mixed_(b)float16."""
    if policy not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {policy!r}.")
    keras.mixed_precision.set_global_policy(policy)
