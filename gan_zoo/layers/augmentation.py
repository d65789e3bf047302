"""Image augmentation and normalisation layers that Keras core lacks.

Both layers live inside a model, so `fit` sees them with `training=True` and
`predict` / `evaluate` with `training=False`:

- `RandomRot90` rotates each image by a random multiple of 90 degrees during
  training and is the identity at inference.
- `MeanImageSubtraction` subtracts a per-pixel mean image (Caffe's
  `mean_file`), computed from training images with `adapt`.

For mirroring use Keras' own `keras.layers.RandomFlip`. Note that its
`"horizontal_and_vertical"` mode draws ONE coin per image for both axes (the
output is the image or its 180-degree rotation, never a plain mirror image);
`RandomFlip("horizontal")` followed by `RandomRot90` gives all 8 symmetries of
the square.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="gan_zoo")
class RandomRot90(keras.layers.Layer):
    """Rotates each image by a random multiple of 90 degrees while training.

    Every image of a batch gets its own rotation k * 90 degrees with k drawn
    uniformly from {0, 1, 2, 3}. At inference (`training` False or unset) the
    layer returns its input unchanged. Rotating a non-square image would change
    its shape, so the height and width must be equal.

    Args:
        seed: optional integer seed of the layer's `keras.random.SeedGenerator`;
            two layers with the same seed draw the same rotations.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4D tensor `(batch, height, width, channels)` with height == width
        (channels last).

    Output shape:
        Same as the input.

    Example:

    >>> layer = RandomRot90(seed=0)
    >>> images = np.random.rand(8, 32, 32, 3).astype("float32")
    >>> tuple(layer(images, training=True).shape)
    (8, 32, 32, 3)
    >>> np.array_equal(layer(images), images)  # identity at inference
    True

    Rotation by multiples of 90 degrees is the training-set augmentation of
    Janowczyk, A. & Madabhushi, A. (2016). Deep learning for digital pathology
    image analysis: A comprehensive tutorial with selected use cases. Journal
    of Pathology Informatics, 7, 29.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "RandomRot90 expects 4D input (batch, height, width, channels), "
                f"got shape {input_shape}."
            )
        height, width = input_shape[1], input_shape[2]
        if height is not None and width is not None and height != width:
            raise ValueError(
                "RandomRot90 needs square images (a 90-degree rotation of a "
                f"{height}x{width} image changes its shape)."
            )
        super().build(input_shape)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        k = keras.random.randint(
            (ops.shape(inputs)[0], 1, 1, 1), 0, 4, seed=self.seed_generator
        )
        # Counter-clockwise rotations of a square NHWC batch by transposing H
        # and W and flipping: rot90 = flip_H(transpose), rot270 = flip_W(...).
        transposed = ops.transpose(inputs, (0, 2, 1, 3))
        rot90 = ops.flip(transposed, axis=1)
        rot180 = ops.flip(ops.flip(inputs, axis=1), axis=2)
        rot270 = ops.flip(transposed, axis=2)
        outputs = ops.where(ops.equal(k, 1), rot90, inputs)
        outputs = ops.where(ops.equal(k, 2), rot180, outputs)
        return ops.where(ops.equal(k, 3), rot270, outputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


def iterate_image_batches(data, batch_size=256, steps=None):
    """Yields float64 numpy image batches from arrays, datasets or iterables.

    Args:
        data: a numpy array / tensor of images `(N, H, W, C)`, a
            `tf.data.Dataset` (batched or not; `(images, labels)` elements are
            fine, only the first item is used), or any iterable of batches.
        batch_size: batch size used to slice an array or batch an unbatched
            dataset.
        steps: optional maximum number of batches.
    """
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        image_spec = spec[0] if isinstance(spec, (tuple, list)) else spec
        if image_spec.shape.rank == 3:
            data = data.batch(batch_size)
        iterator = data.as_numpy_iterator()
    elif hasattr(data, "shape") and hasattr(data, "__getitem__"):
        array = data
        iterator = (
            array[i : i + batch_size] for i in range(0, len(array), batch_size)
        )
    else:
        iterator = iter(data)
    for step, batch in enumerate(iterator):
        if steps is not None and step >= steps:
            return
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        batch = np.asarray(keras.ops.convert_to_numpy(batch), dtype=np.float64)
        if batch.ndim == 3:
            batch = batch[None]
        yield batch


@keras.saving.register_keras_serializable(package="gan_zoo")
class MeanImageSubtraction(keras.layers.Layer):
    """Subtracts a per-pixel mean image computed from training images.

    The mean image (shape `(height, width, channels)`) is a non-trainable
    weight, saved with the model. It starts at zero (the layer is then the
    identity); call `adapt` on the training images before training. `adapt`
    streams over the data, keeping only a float64 running sum, so it works on
    datasets that do not fit in memory. The subtraction is the same at
    training and inference.

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Example:

    >>> layer = MeanImageSubtraction()
    >>> train_images = np.random.rand(100, 32, 32, 3).astype("float32")
    >>> layer.adapt(train_images)
    >>> centred = layer(train_images)  # centred.mean(axis=0) is about 0

    This is Caffe's `mean_file` preprocessing used by Cruz-Roa, A. et al.
    (2014). Automatic detection of invasive ductal carcinoma in whole slide
    images with convolutional neural networks. SPIE Medical Imaging 9041,
    904103; and by Janowczyk, A. & Madabhushi, A. (2016), Journal of Pathology
    Informatics, 7, 29.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if any(dim is None for dim in input_shape[1:]):
            raise ValueError(
                "MeanImageSubtraction needs fully known image dimensions, "
                f"got input shape {input_shape}."
            )
        self.mean = self.add_weight(
            name="mean",
            shape=tuple(input_shape[1:]),
            initializer="zeros",
            trainable=False,
        )
        super().build(input_shape)

    def adapt(self, data, batch_size=256, steps=None):
        """Sets the mean image to the pixel-wise mean of `data`.

        Args:
            data: training images `(N, H, W, C)` as a numpy array or tensor, a
                `tf.data.Dataset` (batched or not; for `(images, labels)`
                elements only the images are used), or an iterable of image
                batches.
            batch_size: slice size for arrays / unbatched datasets.
            steps: optional maximum number of batches to read.
        """
        total, count = None, 0
        for batch in iterate_image_batches(data, batch_size, steps):
            if total is None:
                total = np.zeros(batch.shape[1:], dtype=np.float64)
                if not self.built:
                    self.build((None,) + batch.shape[1:])
            total += batch.sum(axis=0)
            count += batch.shape[0]
        if count == 0:
            raise ValueError("MeanImageSubtraction.adapt got no images.")
        if tuple(total.shape) != tuple(self.mean.shape):
            raise ValueError(
                f"Images of shape {total.shape} do not match the layer's mean "
                f"image shape {tuple(self.mean.shape)}."
            )
        self.mean.assign((total / count).astype(self.mean.dtype))

    def call(self, inputs):
        return inputs - ops.cast(self.mean, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config()
