"""Fingerprints of DCGAN and semi_cgan weights after 3 float32 training steps.

The expected values in `tests/golden/three_steps.json` were recorded with the
base class as it was before the spine-v2 move (commit 54aee9e), by running
this module as a script:

    python tests/golden_weights.py --write   (in a checkout of 54aee9e)

`tests/test_golden_weights.py` rebuilds each model, gives it the same
deterministic start (every network variable set from a hash of its path, so
neither Keras' initialiser order nor layer creation order matters), trains
three steps on the same batch and compares.

The optimizers are SGD, not the papers' Adam: Adam divides by sqrt(v), so
for weights whose true gradient is 0 (biases feeding batch norm) it turns
float rounding noise into full-size steps, and it bounds every step by the
learning rate, so a changed loss would move weights no more than noise.
With SGD the update is lr * gradient: any change in the step shows, and
rounding noise stays at rounding size.
"""

import json
import pathlib
import sys
import zlib

import numpy as np

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "three_steps.json"
# Flat positions sampled from every variable (modulo its size).
_PROBES = (0, 1, 7, 31, 127, 511)

CASES = {
    "dcgan_v1": ("dcgan", dict(variant="v1", image_size=16, base_filters=4, latent_dim=8)),
    "dcgan_v3_conditional": (
        "dcgan", dict(variant="v3", image_size=16, base_filters=4, latent_dim=8, num_classes=2)
    ),
    # The generator without spectral norm: the reading before the reliability fix.
    "semi_cgan": ("semi_cgan", dict(width=0.0625, latent_dim=8)),
}


def deterministic_start(model):
    """Sets every network variable from a hash of its path."""
    import tensorflow as tf

    for network in (model.generator, model.discriminator):
        for variable in network.weights:
            path = variable.path
            if path.endswith("moving_variance"):
                value = np.ones(variable.shape, np.float32)
            elif path.endswith("moving_mean"):
                value = np.zeros(variable.shape, np.float32)
            else:
                seed = [zlib.crc32(path.encode()), 17]
                value = 0.05 * tf.random.stateless_normal(variable.shape, seed).numpy()
                if path.endswith("gamma"):
                    value += 1.0
            variable.assign(value.astype(variable.dtype))


def batch(model):
    import tensorflow as tf

    shape = (8, *model.image_shape)
    images = tf.random.stateless_uniform(shape, [5, 6], -1.0, 1.0)
    labels = tf.constant([0, 1, 1, 0, 1, 0, 0, 1], tf.int32)
    return images, labels


def fingerprint(model):
    """{variable path: [sum, sum of squares, probe values...]} of the networks."""
    result = {}
    for network in (model.generator, model.discriminator):
        for variable in network.weights:
            values = np.asarray(variable.numpy(), np.float64).reshape(-1)
            probes = [float(values[i % values.size]) for i in _PROBES]
            result[f"{network.name}/{variable.path}"] = [float(values.sum()), float((values**2).sum()), *probes]
    return result


def train_three_steps(name, config, extra_config=None):
    import gan_zoo

    import keras

    model = gan_zoo.load(name, **config, **(extra_config or {}))
    model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    deterministic_start(model)
    images, labels = batch(model)
    for _ in range(3):
        model.train_on_batch(images, labels)
    return fingerprint(model)


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/golden_weights.py --write")
    GOLDEN.parent.mkdir(exist_ok=True)
    expected = {case: train_three_steps(*spec) for case, spec in CASES.items()}
    GOLDEN.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
