"""Shared test set-up: quiet TensorFlow on two logical CPUs, where a test uses it.

TensorFlow is configured only when the collected tests import it: a run of
the pure-Python tests (splits, operating points, code quality) does not
load it at all.
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


def _two_logical_cpus():
    """Two logical CPU devices, so MirroredStrategy tests run on one CPU.

    Must run before TensorFlow initialises its devices (its first op).
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    if tf.config.get_logical_device_configuration(cpu) is None:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def pytest_collection_finish(session):
    if "tensorflow" in sys.modules:  # a collected test module imported it
        _two_logical_cpus()

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
