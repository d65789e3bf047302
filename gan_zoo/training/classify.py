"""Training zoo classifiers with their paper recipe, and scoring images."""

import numpy as np
import tensorflow as tf

from gan_zoo.data.pipeline import evaluation_dataset, training_stream
from gan_zoo.models.classifier import paper_optimizer_for
from gan_zoo.training.checkpoint import TrainingCheckpoint


def _input_size(model):
    height, width, channels = model.input_shape[1:]
    return (height, width), channels


def _as_source(data):
    """Records pass through; (images in [0, 1], labels) arrays become a dataset."""
    if isinstance(data, tuple):
        images, labels = data
        pixels = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
        return tf.data.Dataset.from_tensor_slices({"image": pixels, "label": labels})
    return data


def _batches(model, data, size_policy, batch_size=256):
    """[0, 1] image batches of records or of an image array, in order."""
    if isinstance(data, np.ndarray):
        return (data[i : i + batch_size] for i in range(0, len(data), batch_size))
    size, channels = _input_size(model)
    dataset = evaluation_dataset(
        data, batch_size=batch_size, image_size=size, channels=channels,
        value_range=(0.0, 1.0), size_policy=size_policy,
    )
    return (batch[0] if isinstance(batch, tuple) else batch for batch in dataset)


def train_classifier(
    model, data, *, epochs, batch_size, size_policy, seed=0,
    class_weight=None, backup_dir=None, callbacks=(), verbose="auto",
):
    """Fits a zoo classifier with its paper recipe.

    The model gets images in [0, 1] and augments them itself. A model with
    `adapt_mean` (Cruz-Roa's mean-image subtraction) adapts it on the
    training images first; a `paper_optimizer` that takes `decay_steps` or
    `steps_per_epoch` gets them (`paper_optimizer_for`), so its schedule fits the
    run's step count. The data order of epoch e depends only on (seed, e).

    Args:
        model: a `ZooClassifier`.
        data: labelled `ImageRecord`s, or `(images, labels)` arrays with
            images in [0, 1] (e.g. generated ones).
        epochs: training epochs.
        batch_size: batch size.
        size_policy: how off-size images are fitted (`training_stream`).
        seed: seed of the data order.
        class_weight: optional `{class: weight}` for `fit`.
        backup_dir: folder for `TrainingCheckpoint`; an interrupted run
            called again resumes exactly.
        callbacks: extra Keras callbacks.
        verbose: Keras progress-bar verbosity.

    Returns:
        The Keras `History`.
    """
    size, channels = _input_size(model)
    source = _as_source(data)
    common = dict(image_size=size, channels=channels, value_range=(0.0, 1.0), size_policy=size_policy)
    if hasattr(model, "adapt_mean"):
        model.adapt_mean(evaluation_dataset(source, batch_size=256, **common))
    steps_per_epoch = (len(data[1]) if isinstance(data, tuple) else len(data)) // batch_size
    model.compile(paper_optimizer_for(model, epochs=epochs, steps_per_epoch=steps_per_epoch))
    checkpoint = TrainingCheckpoint(backup_dir) if backup_dir else None
    start = checkpoint.resume(model) if checkpoint else 0
    stream = training_stream(
        source, batch_size=batch_size, seed=seed, start_epoch=start, epochs=epochs, **common
    )
    return model.fit(
        stream.dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs,
        initial_epoch=start, class_weight=class_weight,
        callbacks=[*callbacks, *([checkpoint] if checkpoint else [])],
        verbose=verbose, shuffle=False,
    )


def predict_scores(model, data, *, size_policy, positive_class=1):
    """P(positive_class) for each image, in order.

    Args:
        model: a classifier of [0, 1] images returning class probabilities.
        data: `ImageRecord`s, or an image array in [0, 1].
        size_policy: how off-size images are fitted (`evaluation_dataset`).
        positive_class: the column to return.
    """
    scores = [
        np.asarray(model(batch, training=False))[:, positive_class]
        for batch in _batches(model, data, size_policy)
    ]
    return np.concatenate(scores).astype(np.float64)
