"""Shared test set-up: quiet, deterministic TensorFlow on two logical CPUs.

TensorFlow is configured only when a collected test file uses it, so a run
of TensorFlow-free tests (`pytest tests/test_splits.py`) never loads it.
"""

import os
import pathlib
import re
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _two_logical_cpus():
    """Splits the CPU into two logical devices, so MirroredStrategy tests run on one CPU.

    This must happen before TensorFlow initialises its devices, i.e. before
    any test runs an operation.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) != 2:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def pytest_collectstart(collector):
    # Before a test module is imported: one may run TensorFlow ops at
    # import, after which the devices cannot change.
    if isinstance(collector, pytest.Module) and re.search(r"\b(tensorflow|keras)\b", collector.path.read_text()):
        _two_logical_cpus()


@pytest.fixture(autouse=True)
def float32_after_each_test(request):
    """Puts the global dtype policy back to float32 after a test that changed it.

    Tests share a worker process: a mixed_bfloat16 policy left behind would
    build the next test's models in bfloat16. The warning names the test.
    """
    yield
    if "keras" in sys.modules:
        import keras

        policy = keras.mixed_precision.global_policy().name
        if policy != "float32":
            keras.mixed_precision.set_global_policy("float32")
            warnings.warn(f"{request.node.nodeid} left the dtype policy {policy}; reset to float32", stacklevel=1)


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Several strategy objects in one process reuse collective-op instance keys
    and then fail with "Shape mismatch in the collective instance", so every
    test shares this one.
    """
    import tensorflow as tf

    _two_logical_cpus()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy


@pytest.fixture
def shared_data():
    """Path to ../shared/data; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
