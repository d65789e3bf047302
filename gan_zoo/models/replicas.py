"""Where a train step runs under `tf.distribute`: replica index, count, sums.

A zoo model reduces its losses over the GLOBAL batch and draws its random
streams per replica (`gan_zoo.models.adversarial`); these helpers give the
replica's index in the sync group, the number of replicas, and a sum over
replicas, and work the same outside any strategy (one replica, index 0).
"""

import tensorflow as tf


def replica_id():
    """This replica's index in the whole sync group (0 outside tf.distribute)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context, e.g. a callback
        return tf.constant(0, tf.int32)
    return tf.cast(ctx.replica_id_in_sync_group, tf.int32)


def num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def all_reduce_sum(value):
    """Sum over replicas in a replica context (the value itself on one device)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    value = tf.convert_to_tensor(value)
    if not value.device:
        # Reads of synced variables (metric totals) carry no device under
        # MultiWorkerMirroredStrategy, and its all-reduce needs one: an
        # identity op takes the replica's device.
        value = tf.identity(value)
    return ctx.all_reduce("sum", value)
