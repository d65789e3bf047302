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

How close is close enough. oneDNN and Eigen choose kernels and summation
orders by instruction set, CPU model and thread count, so the same three
steps give slightly different float32 weights on another CPU (an AMD EPYC
moved the sum of a kernel by 9.9e-6, 2.2e-5 of a sum of cancelling entries:
a relative tolerance on the values fails there). Measured on an Intel Xeon
against the recorded values (`python tests/golden_weights.py --measure`
writes `tests/golden/kernel_variation.json`): with oneDNN limited to AVX2,
with oneDNN off and with one intra-op thread, an entry moved by up to
5.4e-4 of the largest 3-step displacement in its variable (the last layer
of DCGAN v1's generator, batch norm over 8 images amplifying rounding), and
biases feeding batch norm, whose true gradient is zero, by a few float32
ulps. `tolerance()` therefore scales with what the steps did, not with the
values: `RELATIVE_STEP` of the variable's largest displacement plus `ULPS`
float32 ulps per entry, grown by sqrt(entries) for the sum and by 2 x the
norm for the sum of squares (independent rounding errors add in
quadrature). Those settings use at most 32% of it; every update 0.1%
larger uses it 30-450 times over (the test checks a 1% change).
"""

import json
import pathlib
import sys
import zlib

import numpy as np

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "three_steps.json"
VARIATION = GOLDEN.with_name("kernel_variation.json")
# Flat positions sampled from every variable (modulo its size).
_PROBES = (0, 1, 7, 31, 127, 511)

# Tolerance per fingerprint entry (see the module docstring): 5.5x the
# largest measured cross-kernel difference relative to a step, and 16 ulps
# where a variable's true step is zero.
RELATIVE_STEP = 3e-3
ULPS = 16

CASES = {
    "dcgan_v1": ("dcgan", dict(variant="v1", image_size=16, base_filters=4, latent_dim=8)),
    "dcgan_v3_conditional": (
        "dcgan", dict(variant="v3", image_size=16, base_filters=4, latent_dim=8, num_classes=2)
    ),
    # The generator without spectral norm: the reading before the reliability fix.
    "semi_cgan": ("semi_cgan", dict(width=0.0625, latent_dim=8)),
}
# Settings that restore the architecture the values were recorded with,
# where a later fix changed a paper default on purpose.
THEN = {"dcgan_v1": {}, "dcgan_v3_conditional": {}, "semi_cgan": {"generator_spectral_norm": False}}


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


def _values(model):
    return {
        f"{network.name}/{variable.path}": np.asarray(variable.numpy(), np.float64).reshape(-1)
        for network in (model.generator, model.discriminator)
        for variable in network.weights
    }


def train_three_steps(name, config, extra_config=None, learning_rate=0.1):
    """Returns (fingerprint after 3 SGD steps, {path: (entries, largest step, largest value)}).

    The scales are what `tolerance` needs: the largest displacement of any
    entry of the variable over the three steps (the probes may all sit on
    entries that never move, such as taps that only see padding) and its
    largest magnitude (for ulps).
    """
    import gan_zoo

    import keras

    model = gan_zoo.load(name, **config, **(extra_config or {}))
    model.compile(keras.optimizers.SGD(learning_rate), keras.optimizers.SGD(learning_rate))
    deterministic_start(model)
    start = _values(model)
    images, labels = batch(model)
    for _ in range(3):
        model.train_on_batch(images, labels)
    end = _values(model)
    scales = {
        path: (values.size, float(np.abs(values - start[path]).max()), float(np.abs(values).max()))
        for path, values in end.items()
    }
    return fingerprint(model), scales


def tolerance(expected, scale):
    """Allowed |got - expected| per fingerprint entry of one variable."""
    size, step, magnitude = scale
    per_entry = RELATIVE_STEP * step + ULPS * float(np.spacing(np.float32(magnitude)))
    norm = np.sqrt(expected[1])
    return np.array([np.sqrt(size) * per_entry, 2 * norm * per_entry, *[per_entry] * len(_PROBES)])


def worst_fraction(got, expected, scales):
    """(largest |got - expected| / tolerance over all entries, where it is)."""
    worst, where = 0.0, None
    for path, values in expected.items():
        allowed = tolerance(values, scales[path])
        fraction = np.abs(np.asarray(got[path]) - np.asarray(values)) / allowed
        if fraction.max() > worst:
            worst, where = float(fraction.max()), f"{path}[{int(fraction.argmax())}]"
    return worst, where


def _measure():
    """Fraction of the tolerance used under kernel settings of this machine.

    Each setting runs in a fresh process (oneDNN reads its variables once).
    """
    import os
    import subprocess

    settings = {
        "default": {},
        "oneDNN at most AVX-512 with bf16, no AMX (as on AMD Zen 4)": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
        "oneDNN at most AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
        "oneDNN off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
        "one intra-op thread": {"TF_NUM_INTRAOP_THREADS": "1"},
    }
    result = {}
    for label, env in settings.items():
        output = subprocess.run(
            [sys.executable, __file__, "--fractions"],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
            check=True, capture_output=True, text=True,
        ).stdout
        result[label] = {"environment": env, **json.loads(output.splitlines()[-1])}
        print(label, result[label])
    VARIATION.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {VARIATION}")


def _fractions():
    import os

    import tensorflow as tf

    threads = os.environ.get("TF_NUM_INTRAOP_THREADS")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    expected = json.loads(GOLDEN.read_text())
    fractions = {}
    for case, (name, config) in CASES.items():
        got, scales = train_three_steps(name, config, THEN[case])
        worst, where = worst_fraction(got, expected[case], scales)
        fractions[case] = {"fraction_of_tolerance": worst, "at": where}
    print(json.dumps(fractions))


if __name__ == "__main__":
    if "--measure" in sys.argv:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
        _measure()
    elif "--fractions" in sys.argv:
        _fractions()
    elif "--write" in sys.argv:
        GOLDEN.parent.mkdir(exist_ok=True)
        expected = {case: train_three_steps(*spec)[0] for case, spec in CASES.items()}
        GOLDEN.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN}")
    else:
        sys.exit("usage: python tests/golden_weights.py --write | --measure")
