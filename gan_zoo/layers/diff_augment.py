"""Differentiable augmentation of everything the discriminator sees.

A GAN trained on a few hundred images overfits its discriminator: D
memorises the real set, its outputs on real and generated images drift
apart, and G's gradients stop carrying information. Augmenting only the
real images does not help (G learns to produce the augmentations);
DiffAugment (Zhao et al. 2020) applies the SAME family of differentiable
transforms to real and generated images, in D's update and in G's, so G
is trained through the transforms. ADA (Karras et al. 2020) applies each
transform with a probability p that is tuned during training by an
overfitting heuristic: `r_t = E[sign(D(x_real))]`, the share of real images
D calls real; above `target` (0.6) D is overfitting and p grows, below it
shrinks, by `sign(r_t - target) * images / adjust_speed_images` every
`adjust_every` steps.

`DifferentiableAugmentation` is a layer a zoo GAN owns (so p and the r_t
accumulators are saved with the model and a resumed run continues them)
and calls as `augment(images, seed)` on both real and generated batches.
Randomness is stateless, from a `seed` the model derives from its stream
(`model.stream_seed(stream, per_replica=False)`): the per-image parameters
are drawn for the global batch and each replica keeps its own rows, so one
step on N replicas augments exactly as one device would, and a restored
run draws what the uninterrupted one drew.

Transforms (DiffAugment's policies; magnitudes as in its reference code,
which works on [-1, 1] images: we scale them to the layer's `data_range`):
- "color": brightness `x + (u - 0.5) * span / 2`, saturation
  `(x - mean_c) * 2u + mean_c` (mean over channels per pixel), contrast
  `(x - mean) * (u + 0.5) + mean` (mean over the image), u ~ U[0, 1) per
  image and transform;
- "translation": shift by up to `translation_ratio` (1/8) of the side in
  each axis, whole pixels, filling with the middle of the data range (the
  reference's 0 in [-1, 1]);
- "cutout": a square of `cutout_ratio` (1/2) of the side at a random
  position is set to the middle of the data range.
Each transform is applied to each image with probability p (1 = plain
DiffAugment). Gradients flow through every transform to the images.

References: Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020, arXiv:2006.10738; Karras,
Aittala, Hellsten, Laine, Lehtinen & Aila, "Training Generative Adversarial
Networks with Limited Data", NeurIPS 2020, arXiv:2006.06676.
"""

import keras
import tensorflow as tf

POLICIES = ("color", "translation", "cutout")
_DISTRIBUTIONS = ("uniform", "normal")


def replica_position():
    """(replica index, replicas in sync) of the calling replica; (0, 1) outside."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return tf.constant(0, tf.int32), 1
    return tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync


def global_batch_random(seed, shape, distribution="uniform"):
    """Random values of this replica's rows of a GLOBAL batch.

    With a seed shared by all replicas, values are drawn for
    `replicas * shape[0]` rows and each replica keeps rows
    `[index * shape[0], (index + 1) * shape[0])`: N replicas with equal
    batches get the values one device gets for the whole batch.

    Args:
        seed: stateless seed, int tensor of shape [2].
        shape: this replica's shape; `shape[0]` is its batch.
        distribution: "uniform" ([0, 1)) or "normal" (N(0, 1)).
    """
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}.")
    index, replicas = replica_position()
    shape = tf.cast(tf.convert_to_tensor(shape), tf.int32)
    local = shape[0]
    global_shape = tf.concat([[local * replicas], shape[1:]], axis=0)
    draw = tf.random.stateless_uniform if distribution == "uniform" else tf.random.stateless_normal
    values = draw(global_shape, tf.cast(seed, tf.int64))
    if replicas == 1:
        return values
    begin = tf.concat([[index * local], tf.zeros_like(shape[1:])], axis=0)
    return tf.slice(values, begin, shape)


def _fold(seed, salt):
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt)


def parse_policy(policy):
    """A policy string "color,translation,cutout" (or a sequence) -> tuple; checked."""
    if isinstance(policy, str):
        names = tuple(p.strip() for p in policy.split(",") if p.strip())
    else:
        names = tuple(policy)
    unknown = [p for p in names if p not in POLICIES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"augmentation policy must be distinct names from {POLICIES}, got {policy!r}."
        )
    return names


@keras.saving.register_keras_serializable(package="gan_zoo")
class DifferentiableAugmentation(keras.layers.Layer):
    """DiffAugment transforms applied with probability p, optionally adaptive (ADA).

    Call as `layer(images, seed)` on real and generated batches alike;
    `adapt(real_logits, step)` after D's update moves p when `adaptive`.

    Args:
        policy: transforms, a subset of ("color", "translation", "cutout"),
            as a sequence or a comma-separated string.
        probability: initial p in [0, 1] (1: every transform always, i.e.
            DiffAugment; ADA starts at 0).
        adaptive: tune p with the r_t heuristic.
        target: the r_t above which p grows (0.6 in ADA).
        adjust_every: steps between adjustments (4 in ADA).
        adjust_speed_images: images over which p may move by 1 (500,000 in
            ADA; small datasets trained briefly need fewer).
        max_probability: upper bound of p.
        translation_ratio: largest shift as a fraction of the side (1/8).
        cutout_ratio: cutout side as a fraction of the image side (1/2).
        data_range: (low, high) of the images (fills and magnitudes follow).
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> augment = DifferentiableAugmentation("color,translation,cutout")
    >>> seed = tf.constant([1, 2], tf.int64)
    >>> real_seen = augment(real, seed)
    >>> fake_seen = augment(fake, tf.constant([1, 3], tf.int64))
    """

    def __init__(
        self,
        policy=POLICIES,
        probability=1.0,
        adaptive=False,
        target=0.6,
        adjust_every=4,
        adjust_speed_images=500_000,
        max_probability=1.0,
        translation_ratio=0.125,
        cutout_ratio=0.5,
        data_range=(0.0, 1.0),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.policy = parse_policy(policy)
        checks = {
            "probability": (probability, 0.0, 1.0),
            "target": (target, 0.0, 1.0),
            "max_probability": (max_probability, 0.0, 1.0),
            "translation_ratio": (translation_ratio, 0.0, 0.5),
            "cutout_ratio": (cutout_ratio, 0.0, 1.0),
        }
        for name, (value, low, high) in checks.items():
            if not low <= float(value) <= high:
                raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}.")
        if int(adjust_every) < 1:
            raise ValueError(f"adjust_every must be at least 1, got {adjust_every!r}.")
        if float(adjust_speed_images) <= 0:
            raise ValueError(f"adjust_speed_images must be positive, got {adjust_speed_images!r}.")
        low, high = (float(v) for v in data_range)
        if not low < high:
            raise ValueError(f"data_range must be (low, high) with low < high, got {data_range!r}.")
        self.initial_probability = float(probability)
        self.adaptive = bool(adaptive)
        self.target = float(target)
        self.adjust_every = int(adjust_every)
        self.adjust_speed_images = float(adjust_speed_images)
        self.max_probability = float(max_probability)
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)
        self.data_range = (low, high)
        # Saved state: p and the r_t accumulators since the last adjustment.
        # Every replica computes the same values; only_first_replica keeps
        # the mirrored copies identical without a reduction.
        common = dict(trainable=False, dtype="float32", aggregation="only_first_replica")
        self.probability = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_probability),
            name="probability", **common,
        )
        self.sign_sum = self.add_weight(shape=(), initializer="zeros", name="sign_sum", **common)
        self.sign_count = self.add_weight(shape=(), initializer="zeros", name="sign_count", **common)
        self.built = True

    # ------------------------------------------------------------ transforms
    def call(self, images, seed):
        images = tf.convert_to_tensor(images)
        dtype = images.dtype
        x = tf.cast(images, tf.float32)
        p = tf.convert_to_tensor(self.probability)
        batch = tf.shape(x)[0]
        for index, name in enumerate(self.policy):
            op_seed = _fold(seed, 7919 * (index + 1))
            x = getattr(self, f"_{name}")(x, op_seed, p, batch)
        return tf.cast(x, dtype)

    def _apply_mask(self, seed, p, batch):
        """[B, 1, 1, 1] float: 1 where the transform is applied (u < p)."""
        u = global_batch_random(seed, [batch, 1, 1, 1])
        return tf.cast(u < p, tf.float32)

    def _mix(self, original, transformed, seed, p, batch):
        mask = self._apply_mask(seed, p, batch)
        return mask * transformed + (1.0 - mask) * original

    def _color(self, x, seed, p, batch):
        low, high = self.data_range
        span = high - low
        u = global_batch_random(_fold(seed, 1), [batch, 1, 1, 1])
        x = self._mix(x, x + (u - 0.5) * span / 2.0, _fold(seed, 2), p, batch)
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        u = global_batch_random(_fold(seed, 3), [batch, 1, 1, 1])
        x = self._mix(x, (x - mean) * (u * 2.0) + mean, _fold(seed, 4), p, batch)
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        u = global_batch_random(_fold(seed, 5), [batch, 1, 1, 1])
        return self._mix(x, (x - mean) * (u + 0.5) + mean, _fold(seed, 6), p, batch)

    def _translation(self, x, seed, p, batch):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        fill = sum(self.data_range) / 2.0
        shifts = []
        for axis, size in enumerate((height, width)):
            limit = tf.cast(tf.cast(size, tf.float32) * self.translation_ratio + 0.5, tf.int32)
            u = global_batch_random(_fold(seed, 10 + axis), [batch])
            # Uniform integer in [-limit, limit], as the reference's randint.
            shift = tf.cast(tf.floor(u * tf.cast(2 * limit + 1, tf.float32)), tf.int32) - limit
            shifts.append(shift)
        rows = tf.range(height)[None, :] - shifts[0][:, None]  # source row of each output row
        cols = tf.range(width)[None, :] - shifts[1][:, None]
        valid_rows = tf.cast((rows >= 0) & (rows < height), tf.float32)
        valid_cols = tf.cast((cols >= 0) & (cols < width), tf.float32)
        gathered = tf.gather(x, tf.clip_by_value(rows, 0, height - 1), axis=1, batch_dims=1)
        gathered = tf.gather(gathered, tf.clip_by_value(cols, 0, width - 1), axis=2, batch_dims=1)
        valid = valid_rows[:, :, None, None] * valid_cols[:, None, :, None]
        shifted = gathered * valid + fill * (1.0 - valid)
        return self._mix(x, shifted, _fold(seed, 12), p, batch)

    def _cutout(self, x, seed, p, batch):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        fill = sum(self.data_range) / 2.0
        inside = []
        for axis, size in enumerate((height, width)):
            cut = tf.cast(tf.cast(size, tf.float32) * self.cutout_ratio + 0.5, tf.int32)
            # Centre offsets in [0, size + (1 - cut % 2)), as the reference.
            span = size + (1 - cut % 2)
            u = global_batch_random(_fold(seed, 20 + axis), [batch])
            centre = tf.cast(tf.floor(u * tf.cast(span, tf.float32)), tf.int32)
            start = centre - cut // 2
            positions = tf.range(size)[None, :]
            covered = (positions >= start[:, None]) & (positions < (start + cut)[:, None])
            inside.append(tf.cast(covered, tf.float32))
        hole = inside[0][:, :, None, None] * inside[1][:, None, :, None]
        cut_out = x * (1.0 - hole) + fill * hole
        return self._mix(x, cut_out, _fold(seed, 22), p, batch)

    # ------------------------------------------------------------ adaptive p
    def adapt(self, real_logits, step):
        """Accumulates sign(D(real)) over the global batch; adjusts p every `adjust_every` steps.

        Call in the discriminator's update. Does nothing unless `adaptive`.

        Args:
            real_logits: D's logits on the real batch of this step (this
                replica's rows).
            step: the model's step counter before this step.

        Returns:
            The running r_t since the last adjustment (a float32 scalar).
        """
        if not self.adaptive:
            return tf.constant(0.0, tf.float32)
        signs = tf.sign(tf.cast(tf.reshape(real_logits, [-1]), tf.float32))
        total, count = tf.reduce_sum(signs), tf.cast(tf.size(signs), tf.float32)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            total, count = context.all_reduce("sum", total), context.all_reduce("sum", count)
        sign_sum = self.sign_sum + total
        sign_count = self.sign_count + count
        r_t = sign_sum / tf.maximum(sign_count, 1.0)
        adjust = tf.equal((tf.cast(step, tf.int64) + 1) % self.adjust_every, 0)
        moved = self.probability + tf.sign(r_t - self.target) * sign_count / self.adjust_speed_images
        moved = tf.clip_by_value(moved, 0.0, self.max_probability)
        self.probability.assign(tf.where(adjust, moved, self.probability))
        self.sign_sum.assign(tf.where(adjust, 0.0, sign_sum))
        self.sign_count.assign(tf.where(adjust, 0.0, sign_count))
        return r_t

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "policy": list(self.policy),
                "probability": self.initial_probability,
                "adaptive": self.adaptive,
                "target": self.target,
                "adjust_every": self.adjust_every,
                "adjust_speed_images": self.adjust_speed_images,
                "max_probability": self.max_probability,
                "translation_ratio": self.translation_ratio,
                "cutout_ratio": self.cutout_ratio,
                "data_range": list(self.data_range),
            }
        )
        return config
