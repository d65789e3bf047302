"""Roles a zoo model mixes in: what it offers users, exports and previews.

- `LatentGenerator`: `generate(n, labels, seed)` from a latent z (and class
  labels); exported `generate(z[, labels])`; sample grids of fixed z.
- `ImageTranslator`: `translate(images, **conditions)` (CycleGAN's
  directions, ciGAN's masks and classes); exported `translate*`
  signatures; sample grids of fixed input images.
- `Classifier`: `classify(images)` -> class probabilities; exported
  `classify`.

Each role adds its signatures to `serving_endpoints()` by cooperative
`super()` calls, so a model that mixes several exports all of them. Every
role works with images in [0, 1] at its boundary (float32), whatever range
the networks see inside.
"""

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.export_lib import assert_class_labels, assert_unit_range, classify_endpoint


def check_unit_range(images, where):
    """Raises a ValueError unless float images are finite and in [0, 1].

    Refuses 0-255 pixels (float or uint8) and NaN or infinite values, which
    a network would spread over its whole output.
    """
    array = np.asarray(images)
    if array.size and np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"{where} expects float images in [0, 1]; got NaN or infinite values.")
        low, high = float(array.min()), float(array.max())
        if low < -1e-3 or high > 1.0 + 1e-3:
            raise ValueError(
                f"{where} expects float images in [0, 1]; got values in [{low:g}, {high:g}] "
                "(divide 8-bit pixels by 255)."
            )
    elif array.size and array.dtype == np.uint8:
        raise ValueError(f"{where} expects float images in [0, 1]; got uint8 pixels (divide by 255).")
    return array


class LatentGenerator:
    """Role: a generator of images from a latent vector z (and class labels).

    The model sets `latent_dim`, `num_classes` (0 = unconditional) and
    `latent_distribution` ("normal" or "uniform") and has a network named
    `generator` (sampled through its EMA copy when the model keeps one).
    """

    generator_name = "generator"

    @property
    def conditional(self):
        return self.num_classes > 0

    @property
    def image_shape(self):
        return tuple(self.network(self.generator_name).output_shape[1:])

    def call(self, inputs, training=False):
        return self.network(self.generator_name)(inputs, training=training)

    def sample_latent(self, batch_size, stream=0):
        shape = (batch_size, self.latent_dim)
        if self.latent_distribution == "uniform":
            return self.random_uniform(shape, stream, -1.0, 1.0)
        return self.random_normal(shape, stream)

    def sample_labels(self, batch_size, stream=1):
        return tf.random.stateless_uniform(
            (batch_size,), self.stream_seed(stream), 0, self.num_classes, dtype=tf.int32
        )

    def generator_inputs(self, z, labels):
        return [z, labels] if self.conditional else z

    def latent(self, n, seed=0):
        """n latent vectors drawn deterministically from `seed`."""
        seed = tf.constant([int(seed), 0x5EED], tf.int64)
        shape = (int(n), self.latent_dim)
        if self.latent_distribution == "uniform":
            return tf.random.stateless_uniform(shape, seed, -1.0, 1.0)
        return tf.random.stateless_normal(shape, seed)

    def generate(self, n=None, labels=None, seed=None, z=None, batch_size=256):
        """Generates images in [0, 1] as a float32 numpy array [n, H, W, C].

        Args:
            n: number of images, >= 1 (optional when `z` or `labels` is given).
            labels: for a conditional model, an int (every image of that
                class), a sequence of int class indices, or None (classes
                cycle 0, 1, ..., so each class gets an equal share).
            seed: seed of the latent draw (and of any noise layers); None
                draws a fresh one.
            z: explicit latent vectors [n, latent_dim] (overrides `seed`).
            batch_size: images generated per forward pass.
        """
        if z is not None:
            z = tf.convert_to_tensor(np.asarray(z, np.float32))
            if z.shape.rank != 2 or z.shape[1] != self.latent_dim:
                raise ValueError(f"z must have shape [n, {self.latent_dim}], got {list(z.shape)}.")
            n = int(z.shape[0])
        elif n is None and labels is not None and not np.isscalar(labels):
            n = len(labels)
        if n is None:
            raise ValueError("generate() needs n, z, or a sequence of labels.")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"generate(): n must be a positive integer, got {n!r}.")
        if int(batch_size) < 1:
            raise ValueError(f"generate(): batch_size must be positive, got {batch_size!r}.")
        seed = np.random.randint(2**31 - 1) if seed is None else int(seed)
        if z is None:
            z = self.latent(n, seed)
        labels = self._labels_for(n, labels)
        network = self.sampling_network(self.generator_name)
        batches = []
        for start in range(0, n, batch_size):
            inputs = self.generator_inputs(
                z[start : start + batch_size],
                None if labels is None else labels[start : start + batch_size],
            )
            with _inference_noise(seed, start):
                batches.append(self.to_unit_range(network(inputs, training=False)))
        return keras.ops.convert_to_numpy(tf.concat(batches, axis=0))

    def _labels_for(self, n, labels):
        if not self.conditional:
            if labels is not None:
                raise ValueError("This generator is unconditional; pass labels=None.")
            return None
        if labels is None:
            labels = np.arange(n) % self.num_classes
        elif np.isscalar(labels):
            labels = np.full(n, labels)
        labels = np.asarray(labels).reshape(-1)
        if labels.size and not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(f"labels must be whole class indices, got {labels[:5].tolist()}.")
        labels = labels.astype(np.int32)
        if labels.shape[0] != n:
            raise ValueError(f"Got {labels.shape[0]} labels for {n} images.")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"labels must be in [0, {self.num_classes}), got {labels.min()}..{labels.max()}."
            )
        return tf.constant(labels)

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()
        endpoints["generate"] = _generate_endpoint(self)
        return endpoints

    def preview(self, seed=1234, inputs=None, per_row=8, rows=4):
        """Fixed-z samples: one row per class for a conditional generator."""
        rows = self.num_classes if self.conditional else rows
        labels = np.repeat(np.arange(rows), per_row) if self.conditional else None
        return self.generate(rows * per_row, labels=labels, seed=seed), rows


class ImageTranslator:
    """Role: maps images (and conditions) to images.

    The model implements `translation_inputs()` -> {name: TensorSpec of one
    example} for every condition besides `images`, and
    `_translate(images, **conditions)` on tensors in the networks' range;
    `translate` checks, batches and converts to and from [0, 1].
    `translation_directions()` names the exported signatures (CycleGAN:
    "a_to_b", "b_to_a" -> `translate_a_to_b`, `translate_b_to_a`).
    """

    def translation_inputs(self):
        return {}

    def translation_directions(self):
        return (None,)

    def translate(self, images, batch_size=64, **conditions):
        """Translated images in [0, 1], float32 numpy [N, H, W, C].

        Args:
            images: float images in [0, 1], [N, H, W, C] (or [H, W, C]).
            batch_size: images per forward pass.
            **conditions: the model's conditions (e.g. `direction=`,
                `masks=`, `target_class=`).
        """
        images = check_unit_range(images, f"{type(self).__name__}.translate")
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"translate(): images must be [N, H, W, C] with N >= 1, got {images.shape}.")
        conditions = self.check_conditions(images, **conditions)
        outputs = []
        for start in range(0, len(images), int(batch_size)):
            part = {
                k: (v[start : start + batch_size] if isinstance(v, np.ndarray) else v)
                for k, v in conditions.items()
            }
            model_images = self.from_unit_range(images[start : start + batch_size])
            outputs.append(self.to_unit_range(self._translate(model_images, **part)))
        return keras.ops.convert_to_numpy(tf.concat(outputs, axis=0))

    def check_conditions(self, images, **conditions):
        """Validates and normalises the conditions (override)."""
        if conditions:
            raise ValueError(f"{type(self).__name__}.translate takes no {sorted(conditions)}.")
        return {}

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()
        for direction in self.translation_directions():
            name = "translate" if direction is None else f"translate_{direction}"
            endpoints[name] = translate_endpoint(self, direction)
        return endpoints

    def preview(self, seed=1234, inputs=None, per_row=8, rows=4):
        """Inputs and their translations, one row each (inputs given by the caller)."""
        if inputs is None:
            raise ValueError(f"{type(self).__name__}.preview needs input images.")
        images = np.asarray(inputs, np.float32)[:per_row]
        grid = [images]
        for direction in self.translation_directions():
            conditions = {} if direction is None else {"direction": direction}
            grid.append(self.translate(images, **conditions))
        return np.concatenate(grid, axis=0), len(grid)


class Classifier:
    """Role: class probabilities of images in [0, 1].

    The model implements `classifier()` -> a Keras model mapping float32
    images in [0, 1] to probabilities [N, num_classes].
    """

    def classify(self, images, batch_size=256):
        """Class probabilities `[N, num_classes]` of float32 images in [0, 1].

        `images` is `[N, H, W, C]` or one `[H, W, C]` image; 0-255 pixels,
        NaN and wrong shapes raise a ValueError; an empty batch gives `[0, k]`.
        """
        from gan_zoo.models.classifier import check_image_shape, check_images

        where = f"{type(self).__name__}.classify"
        classifier = self.classifier()
        images = check_images(images, where)
        if images.ndim == len(classifier.input_shape) - 1:
            images = images[None]
        check_image_shape(images.shape, classifier.input_shape, where)
        if len(images) == 0:
            return np.zeros((0, *classifier.output_shape[1:]), np.float32)
        return classifier.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()
        endpoints["classify"] = classify_endpoint(self.classifier())
        return endpoints


class _inference_noise:
    """Seeds the noise layers of one generate() batch from (seed, batch start)."""

    def __init__(self, seed, start):
        from gan_zoo.layers.noise import noise_seed_scope

        self._scope = noise_seed_scope(tf.constant([int(seed), int(start) + 1], tf.int64))

    def __enter__(self):
        return self._scope.__enter__()

    def __exit__(self, *exc):
        return self._scope.__exit__(*exc)


def _generate_endpoint(model):
    """(fn, signature) mapping z (and int labels) to images in [0, 1]."""
    z_spec = tf.TensorSpec((None, model.latent_dim), tf.float32, name="z")
    network = model.sampling_network(model.generator_name)
    if model.conditional:
        label_spec = tf.TensorSpec((None,), tf.int32, name="labels")

        def generate(z, labels):
            labels = assert_class_labels(labels, model.num_classes, "generate labels")
            return {"images": model.to_unit_range(network([z, labels], training=False))}

        return generate, [z_spec, label_spec]

    def generate(z):
        return {"images": model.to_unit_range(network(z, training=False))}

    return generate, [z_spec]


def translate_endpoint(model, direction, name=None):
    """(fn, signature) of one translation direction, [0, 1] in and out.

    Args:
        model: the `ImageTranslator`.
        direction: its direction, or None for a model with one.
        name: the endpoint's name in error messages (default `translate`
            or `translate_<direction>`).
    """
    shape = tuple(model.translation_image_shape())
    specs = [tf.TensorSpec((None, *shape), tf.float32, name="images")]
    names = list(model.translation_inputs())
    specs += [model.translation_inputs()[n] for n in names]

    endpoint = name or ("translate" if direction is None else f"translate_{direction}")
    num_classes = getattr(model, "num_classes", 2)

    def translate(images, *conditions):
        images = assert_unit_range(images, endpoint)
        checked = []
        for name, spec, value in zip(names, specs[1:], conditions):
            if spec.dtype.is_floating:
                value = assert_unit_range(value, f"{endpoint} {name}")
            elif spec.dtype.is_integer:
                value = assert_class_labels(value, num_classes, f"{endpoint} {name}")
            checked.append(value)
        kwargs = dict(zip(names, checked))
        if direction is not None:
            kwargs["direction"] = direction
        outputs = model._translate(model.from_unit_range(images), **kwargs)
        return {"images": model.to_unit_range(outputs)}

    return translate, specs
