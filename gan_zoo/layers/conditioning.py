"""Layers that feed class labels to convolutional networks."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gan_zoo")
class LabelMaps(keras.layers.Layer):
    """Turns int class labels [B] into constant one-hot feature maps [B, H, W, K].

    Concatenated to an image, they give a discriminator the class, as in the
    conditional DCGAN (Radford et al. 2016; Mirza & Osindero 2014).

    Args:
        height: map height.
        width: map width.
        num_classes: K, the number of classes.

    Example:

    >>> maps = LabelMaps(50, 50, 2)(keras.ops.convert_to_tensor([0, 1]))
    """

    def __init__(self, height, width, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.num_classes = int(num_classes)

    def call(self, labels):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        one_hot = ops.one_hot(labels, self.num_classes, dtype=self.compute_dtype)
        maps = ops.reshape(one_hot, (-1, 1, 1, self.num_classes))
        return ops.tile(maps, (1, self.height, self.width, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "num_classes": self.num_classes,
        }


@keras.saving.register_keras_serializable(package="gan_zoo")
class OneHot(keras.layers.Layer):
    """int class labels [B] -> one-hot vectors [B, K] in the compute dtype.

    Args:
        num_classes: K, the number of classes.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, labels):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        return ops.one_hot(labels, self.num_classes, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
