"""Base class of the zoo's image classifiers.

A `ZooClassifier` is a functional Keras model (built in the subclass'
`__init__`, keras-hub `Backbone` style) that

- takes float32 NHWC images in [0, 1] (`input_range`) and returns class
  probabilities `(batch, num_classes)` (softmax; for IDC column 1 is P(IDC));
- holds its augmentation layers inside the graph, so they run in `fit`
  (`training=True`) and are skipped by `predict` / `evaluate` and by a plain
  `model(images)` call (training defaults to False);
- knows the paper's training recipe: `compile()` without an optimizer or loss
  uses `paper_optimizer()` / `paper_loss()`, and `default_training()` gives
  the paper's `epochs` and `batch_size`;
- round-trips through `get_config` / `from_config` and `.keras` files.

Labels are integer class ids (`SparseCategoricalCrossentropy`).

Input range: `predict()` refuses arrays or tensors clearly outside [0, 1]
(e.g. 0-255 pixels, which would give P(IDC) = 0.00 for every patch) with a
`ValueError`; exported `classify` signatures assert the same in graph
(`gan_zoo.export_lib.classify_endpoint`). A `tf.data.Dataset` given to
`predict` and direct calls `model(images)` (used inside training graphs)
are not checked: the zoo's pipelines always yield [0, 1].
"""

import keras
import numpy as np
from keras import ops

from gan_zoo.models.roles import check_unit_range
from gan_zoo.weights import ConfigInWeights


def check_images(images, where):
    """Refuses arrays that are not finite images in [0, 1] (ValueError)."""
    return check_unit_range(images, where)


def check_image_shape(shape, input_shape, where):
    """Refuses a batch whose shape is not `[N, *input_shape[1:]]` (ValueError)."""
    expected = tuple(input_shape[1:])
    shape = tuple(shape)
    if len(shape) != len(expected) + 1 or any(
        want is not None and got != want for got, want in zip(shape[1:], expected)
    ):
        listed = ", ".join("?" if d is None else str(d) for d in expected)
        raise ValueError(f"{where} expects images [N, {listed}]; got shape {shape}.")


class UnitRangePredict:
    """Mix-in for Keras models: `predict` checks array inputs are in [0, 1].

    The check is one pass over the array (min, max, finiteness); datasets
    and generators pass unchecked.
    """

    def predict(self, x, *args, **kwargs):
        if isinstance(x, np.ndarray) or ops.is_tensor(x):
            where = f"{self.name}.predict"
            check_images(x, where)
            check_image_shape(x.shape, self.input_shape, where)
            if x.shape[0] == 0:
                # Keras' predict fails on an empty batch (UnboundLocalError).
                return np.zeros((0, *self.output_shape[1:]), np.float32)
        return super().predict(x, *args, **kwargs)


@keras.saving.register_keras_serializable(package="gan_zoo")
class UnitRangeModel(UnitRangePredict, keras.Model):
    """A functional `keras.Model` whose `predict` takes images in [0, 1] only.

    Built like a functional model: `UnitRangeModel(inputs, outputs, name=...)`
    (e.g. `SemiSupervisedCGAN.classifier()`).
    """


@keras.saving.register_keras_serializable(package="gan_zoo")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy of integer labels against probabilities, with smoothing.

    Keras' `SparseCategoricalCrossentropy` has no `label_smoothing`; this loss
    one-hot encodes the integer labels and calls
    `keras.losses.categorical_crossentropy` with smoothing, so the targets
    become `(1 - s) * one_hot + s / num_classes`.

    Args:
        label_smoothing: smoothing factor `s` in [0, 1).
        from_logits: whether `y_pred` are logits rather than probabilities.
        **kwargs: `keras.losses.Loss` keyword arguments (`name`, `reduction`).

    Example:

    >>> loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)
    >>> loss([0, 1], [[0.9, 0.1], [0.2, 0.8]])

    Label smoothing: Szegedy, C. et al. (2016). Rethinking the Inception
    architecture for computer vision. CVPR.
    """

    def __init__(
        self,
        label_smoothing=0.0,
        from_logits=False,
        name="sparse_categorical_crossentropy_with_smoothing",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        num_classes = ops.shape(y_pred)[-1]
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        one_hot = ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"label_smoothing": self.label_smoothing, "from_logits": self.from_logits}
        )
        return config


@keras.saving.register_keras_serializable(package="gan_zoo")
class ZooClassifier(ConfigInWeights, UnitRangePredict, keras.Model):
    """Base class of the zoo's image classifiers (a functional model).

    Subclasses build their layer graph in `__init__`, call
    `super().__init__(inputs=..., outputs=..., num_classes=..., **kwargs)`,
    then store every constructor argument as an attribute and return them
    from `get_config` (extending this class' config). They implement
    `paper_optimizer()` and may override `paper_loss()` and
    `default_training()`.

    Args:
        inputs: the functional model's input tensor(s).
        outputs: the softmax output tensor `(batch, num_classes)`.
        num_classes: number of classes.
        **kwargs: `keras.Model` keyword arguments (`name`, `trainable`, ...).

    Example:

    >>> model = CruzRoaCNN()  # a subclass
    >>> model.adapt_mean(train_images)
    >>> model.compile()  # the paper's optimizer and loss
    >>> recipe = model.default_training()
    >>> model.fit(train_images, train_labels, epochs=recipe["epochs"],
    ...           batch_size=recipe["batch_size"])
    >>> probabilities = model.predict(images)  # no augmentation here

    The functional-subclass pattern follows keras-hub's `Backbone` (Keras team,
    2024).
    """

    # Pixel range of the images the model expects.
    input_range = (0.0, 1.0)

    def __init__(self, inputs, outputs, num_classes, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes

    def call(self, inputs, training=False, mask=None):
        # Inference unless told otherwise: Keras' image augmentation layers
        # (RandomFlip, ...) default to `training=True` when called directly,
        # so `model(images)` and exported signatures would augment.
        if training is None:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def classify(self, images, batch_size=256):
        """Class probabilities `[N, num_classes]` of float32 images in [0, 1].

        The `Classifier` role's entry point: `images` is `[N, H, W, C]` or
        one `[H, W, C]` image; 0-255 pixels, NaN and wrong shapes raise a
        ValueError.
        """
        where = f"{self.name}.classify"
        images = check_images(images, where)
        if images.ndim == 3:
            images = images[None]
        check_image_shape(images.shape, self.input_shape, where)
        if len(images) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        return super().predict(images.astype(np.float32), batch_size=batch_size, verbose=0)

    # Training recipe ------------------------------------------------------

    def paper_optimizer(self):
        """A fresh instance of the optimizer the paper trains with.

        A model whose rate follows the length of training takes keyword
        arguments `decay_steps` (all steps) and/or `steps_per_epoch`;
        `paper_optimizer_for` passes those it accepts.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define paper_optimizer()."
        )

    def paper_loss(self):
        """The training loss: cross-entropy of integer labels."""
        return keras.losses.SparseCategoricalCrossentropy()

    def default_training(self):
        """The paper's training schedule: `{"epochs": ..., "batch_size": ...}`."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define default_training()."
        )

    def compile(self, optimizer=None, loss=None, metrics=None, **kwargs):
        """`keras.Model.compile`, defaulting to the paper's recipe.

        Args:
            optimizer: optimizer; `None` uses `paper_optimizer()`.
            loss: loss; `None` uses `paper_loss()`.
            metrics: metrics; `None` uses `["accuracy"]`.
            **kwargs: further `keras.Model.compile` arguments.
        """
        if optimizer is None:
            optimizer = self.paper_optimizer()
        if loss is None:
            loss = self.paper_loss()
        if metrics is None:
            metrics = ["accuracy"]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        # Build the optimizer's slots now, so a backup restored before fit
        # (exact resume) finds them and loads their state.
        self.optimizer.build(self.trainable_variables)
        self.initial_learning_rates = {"optimizer": _initial_rate(self.optimizer)}

    def compile_from_config(self, config):
        # Keras skips overridden `compile()` methods when loading a `.keras`
        # file; ours takes the same arguments, so replay them (the optimizer
        # state is restored afterwards by the loader).
        self.compile(**keras.saving.deserialize_keras_object(config))

    # Serialisation --------------------------------------------------------

    def get_config(self):
        # Not Functional.get_config: the subclass is rebuilt from its own
        # constructor arguments (keras-hub Backbone style).
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _initial_rate(optimizer):
    """The learning rate at step 0 (a schedule's initial value)."""
    rate = optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return float(keras.ops.convert_to_numpy(rate(0)))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def paper_optimizer_for(model, *, epochs, steps_per_epoch):
    """`model.paper_optimizer()` for a run of `epochs` x `steps_per_epoch` steps.

    Passes `decay_steps` (all steps) and `steps_per_epoch` to the models whose
    paper schedule needs them (a decay over the run, a step every k epochs).
    """
    import inspect

    accepted = inspect.signature(model.paper_optimizer).parameters
    known = {"decay_steps": int(epochs) * int(steps_per_epoch), "steps_per_epoch": int(steps_per_epoch)}
    return model.paper_optimizer(**{k: v for k, v in known.items() if k in accepted})
