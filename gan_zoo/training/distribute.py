"""Choosing a tf.distribute strategy from a command-line flag."""

import tensorflow as tf

from gan_zoo.options import STRATEGIES


_MULTI_WORKER = None


def get_strategy(name="auto"):
    """A `tf.distribute.Strategy` by name.

    - "auto": `MirroredStrategy` over all GPUs when there are several, else
      the default (one device) strategy;
    - "default": one device;
    - "mirrored": `MirroredStrategy` over every local GPU (or the CPU);
    - "multiworker": `MultiWorkerMirroredStrategy`; each machine reads its
      role from the `TF_CONFIG` environment variable.

    `MultiWorkerMirroredStrategy` must be created before anything else
    touches TensorFlow's context (collective ops are configured at program
    start), so commands create it first, when their options are parsed;
    later calls return that same strategy.

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
    global _MULTI_WORKER
    if _MULTI_WORKER is None:  # one per process: collective ops are configured once
        _MULTI_WORKER = tf.distribute.MultiWorkerMirroredStrategy()
    return _MULTI_WORKER


def worker_role(strategy=None):
    """(task type, task id) of this process; ("chief", 0) outside multi-worker.

    Under `MultiWorkerMirroredStrategy` the role comes from `TF_CONFIG`
    through the strategy's cluster resolver.
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None) if resolver is not None else None
    if not task_type:
        return "chief", 0
    return task_type, int(resolver.task_id or 0)


def is_chief(strategy=None):
    """True for the one process that writes checkpoints, logs and samples.

    The chief is the "chief" task, or worker 0 when the cluster has no chief
    (the `TF_CONFIG` convention Keras follows).
    """
    strategy = strategy or tf.distribute.get_strategy()
    task_type, task_id = worker_role(strategy)
    if task_type == "chief":
        return True
    resolver = strategy.cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def write_directory(directory, strategy=None):
    """Where this process writes what belongs in `directory`.

    The chief writes into `directory` itself. Every other worker must still
    run the same saves (reading synchronised variables is a collective
    operation that all workers join), so it writes into a temporary folder of
    its own beside it, `.<name>-worker-<id>`, which it deletes afterwards
    (`remove_worker_directory`), as Keras' `BackupAndRestore` does. Nothing a
    worker writes can collide with the chief's files or be deleted by
    another worker's clean-up.
    """
    import pathlib

    directory = pathlib.Path(directory)
    if is_chief(strategy):
        return directory
    task_type, task_id = worker_role(strategy)
    return directory.parent / f".{directory.name}-{task_type}-{task_id}"


def remove_worker_directory(directory, strategy=None):
    """Deletes a non-chief worker's temporary folder (no-op on the chief)."""
    import pathlib
    import shutil

    directory = pathlib.Path(directory)
    if not is_chief(strategy) and directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
