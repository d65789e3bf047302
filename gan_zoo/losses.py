"""GAN losses and gradient penalties as per-example functions over logits.

Every function returns a float32 tensor of shape `[batch]`: one loss per
example. Logits may have shape `[B]`, `[B, 1]` or `[B, H, W, 1]` (patch
discriminators); all non-batch axes are averaged. Inputs are cast to float32
first, so the losses are safe under mixed precision.

Reduce with `tf.nn.compute_average_loss(per_example_loss)`, which divides by
the global batch size, so that summing gradients over replicas under
`tf.distribute.MirroredStrategy` gives the gradient of the global-batch mean.

Discriminator losses taking both `real_logits` and `fake_logits` add the two
per-example terms, so both batches must have the same size.

    >>> d_loss = tf.nn.compute_average_loss(discriminator_lsgan(real, fake))
    >>> g_loss = tf.nn.compute_average_loss(generator_lsgan(fake))
"""

import tensorflow as tf


def _per_example(values):
    """Means `values` over every non-batch axis: `[B, ...]` -> `[B]`."""
    values = tf.convert_to_tensor(values)
    return tf.reduce_mean(values, axis=tf.range(1, tf.rank(values)))


def _float32(logits):
    return tf.cast(tf.convert_to_tensor(logits), tf.float32)


def _bce(logits, label):
    """Per-example sigmoid cross-entropy of `logits` against a constant label."""
    labels = tf.fill(tf.shape(logits), tf.cast(label, tf.float32))
    return _per_example(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    )


# Non-saturating GAN --------------------------------------------------------


def discriminator_bce(real_logits, fake_logits, real_label=1.0):
    """Standard GAN discriminator loss: BCE(real, 1) + BCE(fake, 0).

    Args:
        real_logits: discriminator logits on real data, `[B, ...]`.
        fake_logits: discriminator logits on generated data, `[B, ...]`.
        real_label: target for real data; below 1 (e.g. 0.9) is one-sided
            label smoothing (Salimans et al., "Improved Techniques for
            Training GANs", NeurIPS 2016, arXiv:1606.03498); fake targets
            stay 0.

    Returns:
        Per-example loss, float32 `[B]`.

    Reference: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014,
    arXiv:1406.2661.
    """
    real_logits, fake_logits = _float32(real_logits), _float32(fake_logits)
    return _bce(real_logits, real_label) + _bce(fake_logits, 0.0)


def generator_bce(fake_logits):
    """Non-saturating generator loss: BCE(fake, 1) = -log(sigmoid(fake)).

    Args:
        fake_logits: discriminator logits on generated data, `[B, ...]`.

    Returns:
        Per-example loss, float32 `[B]`.

    Reference: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014,
    arXiv:1406.2661 (the non-saturating variant of section 3).
    """
    return _bce(_float32(fake_logits), 1.0)


# Least squares GAN ---------------------------------------------------------


def discriminator_lsgan(real_logits, fake_logits):
    """LSGAN discriminator loss: 0.5 * ((D(x) - 1)^2 + D(G(z))^2).

    Targets 1 for real and 0 for fake (the 0-1 coding used by CycleGAN, which
    also halves the discriminator loss).

    Args:
        real_logits: discriminator outputs on real data, `[B, ...]`.
        fake_logits: discriminator outputs on generated data, `[B, ...]`.

    Returns:
        Per-example loss, float32 `[B]`.

    Reference: Mao et al., "Least Squares Generative Adversarial Networks",
    ICCV 2017, arXiv:1611.04076.
    """
    real_logits, fake_logits = _float32(real_logits), _float32(fake_logits)
    return 0.5 * (
        _per_example(tf.square(real_logits - 1.0)) + _per_example(tf.square(fake_logits))
    )


def generator_lsgan(fake_logits):
    """LSGAN generator loss: (D(G(z)) - 1)^2.

    Args:
        fake_logits: discriminator outputs on generated data, `[B, ...]`.

    Returns:
        Per-example loss, float32 `[B]`.

    Reference: Mao et al., "Least Squares Generative Adversarial Networks",
    ICCV 2017, arXiv:1611.04076.
    """
    return _per_example(tf.square(_float32(fake_logits) - 1.0))


# Relativistic average standard GAN -----------------------------------------


def global_batch_mean(values):
    """Mean over the batch axis of the GLOBAL batch, differentiable.

    Under `tf.distribute` each replica holds part of the batch; the sums and
    counts are all-reduced, so every replica gets the mean one device would
    compute over the whole batch (and gradients flow through the
    all-reduce). On one device it is `reduce_mean(values, axis=0)`.
    """
    total = tf.reduce_sum(values, axis=0, keepdims=True)
    count = tf.cast(tf.shape(values)[0], values.dtype)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        total = context.all_reduce("sum", total)
        count = context.all_reduce("sum", count)
    return total / count


def _relativistic_logits(real_logits, fake_logits):
    real_logits, fake_logits = _float32(real_logits), _float32(fake_logits)
    real_vs_fake = real_logits - global_batch_mean(fake_logits)
    fake_vs_real = fake_logits - global_batch_mean(real_logits)
    return real_vs_fake, fake_vs_real


def discriminator_relativistic_average(real_logits, fake_logits):
    """RaSGAN discriminator loss.

    `BCE(C(x_r) - mean C(x_f), 1) + BCE(C(x_f) - mean C(x_r), 0)` where the
    means over the *batch* of the other set are the relativistic reference
    (for patch logits the mean is taken per position). The means are over
    the GLOBAL batch (`global_batch_mean`), so N replicas compute the loss
    one device would.

    Args:
        real_logits: critic outputs on real data, `[B, ...]`.
        fake_logits: critic outputs on generated data, `[B, ...]`.

    Returns:
        Per-example loss, float32 `[B]`.

    Reference: Jolicoeur-Martineau, "The relativistic discriminator: a key
    element missing from standard GAN", ICLR 2019, arXiv:1807.00734.
    """
    real_vs_fake, fake_vs_real = _relativistic_logits(real_logits, fake_logits)
    return _bce(real_vs_fake, 1.0) + _bce(fake_vs_real, 0.0)


def generator_relativistic_average(real_logits, fake_logits):
    """RaSGAN generator loss, the discriminator's with the labels swapped.

    `BCE(C(x_f) - mean C(x_r), 1) + BCE(C(x_r) - mean C(x_f), 0)`, with
    global-batch means as in `discriminator_relativistic_average`.

    Args:
        real_logits: critic outputs on real data, `[B, ...]`.
        fake_logits: critic outputs on generated data, `[B, ...]`.

    Returns:
        Per-example loss, float32 `[B]`.

    Reference: Jolicoeur-Martineau, "The relativistic discriminator: a key
    element missing from standard GAN", ICLR 2019, arXiv:1807.00734.
    """
    real_vs_fake, fake_vs_real = _relativistic_logits(real_logits, fake_logits)
    return _bce(fake_vs_real, 1.0) + _bce(real_vs_fake, 0.0)


# Gradient penalties --------------------------------------------------------


def _input_gradients(critic_fn, inputs, loss_scale=None):
    """d sum(critic(inputs)) / d inputs, float32 `[B, -1]`.

    Under `mixed_float16` the backward pass through the critic runs in
    float16, where small input gradients underflow to exactly 0 (3% of the
    entries on a small discriminator). As for the loss itself, the output is
    multiplied by `loss_scale` inside the tape and the gradient divided by
    it in float32; an overflow gives an infinite penalty, whose gradients
    make the `LossScaleOptimizer` skip the step and lower its scale.
    """
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = tf.cast(critic_fn(inputs), tf.float32)
        total = tf.reduce_sum(outputs)
        if loss_scale is not None:
            total = total * tf.cast(loss_scale, tf.float32)
    gradients = tf.cast(tape.gradient(total, inputs), tf.float32)
    if loss_scale is not None:
        gradients = gradients / tf.cast(loss_scale, tf.float32)
    return tf.reshape(gradients, (tf.shape(inputs)[0], -1))


def gradient_penalty(
    critic_fn, real, fake, alpha=None, target=1.0, epsilon=1e-12, loss_scale=None
):
    """WGAN-GP penalty per sample: `(||grad C(x_hat)||_2 - target)^2`.

    `x_hat = alpha * real + (1 - alpha) * fake` with one `alpha` per sample.
    The gradient is that of the critic's summed output, so with a per-sample
    critic each sample's gradient is its own. The norm is taken over all
    non-batch axes with `epsilon` inside the square root (the gradient of the
    square root at 0 is infinite). Call inside the critic's `GradientTape`:
    the penalty is differentiable w.r.t. the critic's weights.

    Args:
        critic_fn: callable `[B, ...] -> [B, ...]`, e.g.
            `lambda x: critic(x, training=True)`.
        real: real batch, `[B, ...]`.
        fake: generated batch with the same shape.
        alpha: interpolation weights, shape `[B]` (or any shape with `B`
            elements); defaults to `tf.random.uniform` in [0, 1). Pass your
            own to draw from a per-replica `tf.random.Generator`.
        target: the gradient norm the penalty pulls towards (1 in the paper).
        epsilon: added inside the square root.
        loss_scale: under `mixed_float16`, the critic optimizer's loss scale
            (`LossScaleOptimizer.dynamic_scale`): the inner gradient is
            computed on the scaled output and unscaled in float32, so it does
            not underflow in float16. None (float32, bfloat16): unscaled.

    Returns:
        Per-sample penalty, float32 `[B]`; multiply by lambda (10 in the
        paper) at the call site.

    Reference: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, "Improved
    Training of Wasserstein GANs", NeurIPS 2017, arXiv:1704.00028.
    """
    real, fake = _float32(real), _float32(fake)
    batch = tf.shape(real)[0]
    if alpha is None:
        alpha = tf.random.uniform((batch,), dtype=tf.float32)
    broadcast_shape = tf.concat([[batch], tf.ones([tf.rank(real) - 1], tf.int32)], 0)
    alpha = tf.reshape(_float32(alpha), broadcast_shape)
    interpolates = alpha * real + (1.0 - alpha) * fake
    gradients = _input_gradients(critic_fn, interpolates, loss_scale)
    norm = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=1) + epsilon)
    return tf.square(norm - target)
