"""Training zoo classifiers on image records, and scoring records."""

import inspect

import numpy as np

from gan_zoo.data.pipeline import evaluation_dataset, training_stream
from gan_zoo.training.checkpoint import TrainingCheckpoint


def _input_size(model):
    height, width, channels = model.input_shape[1:]
    return (height, width), channels


def train_classifier(
    model, records, *, epochs, batch_size, seed=0, size_policy="resize",
    class_weight=None, backup_dir=None, callbacks=(), verbose="auto",
):
    """Fits a zoo classifier on labelled `ImageRecord`s with its paper recipe.

    Images reach the model in [0, 1] (it augments them itself). A model with
    `adapt_mean` (Cruz-Roa's mean-image subtraction) adapts it on `records`
    first; a `paper_optimizer(decay_steps=...)` gets the run's step count.
    With `backup_dir`, an interrupted run resumes exactly.

    Returns:
        The Keras `History`.
    """
    size, channels = _input_size(model)
    checkpoint = TrainingCheckpoint(backup_dir) if backup_dir else None
    stream = training_stream(
        records, batch_size=batch_size, image_size=size, channels=channels,
        value_range=(0.0, 1.0), size_policy=size_policy, seed=seed,
        start_epoch=checkpoint.completed_epochs() if checkpoint else 0, epochs=epochs,
    )
    if hasattr(model, "adapt_mean"):
        model.adapt_mean(evaluation_dataset(
            records, batch_size=256, image_size=size, channels=channels,
            value_range=(0.0, 1.0), size_policy=size_policy,
        ))
    if "decay_steps" in inspect.signature(model.paper_optimizer).parameters:
        model.compile(model.paper_optimizer(decay_steps=epochs * stream.steps_per_epoch))
    else:
        model.compile()
    return model.fit(
        stream.dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs,
        class_weight=class_weight, callbacks=[c for c in (checkpoint, *callbacks) if c],
        verbose=verbose, shuffle=False,
    )


def predict_scores(model, records, *, size_policy="resize", batch_size=256, positive_class=1):
    """P(positive_class) for each record, in order, from a [0, 1]-image classifier."""
    size, channels = _input_size(model)
    dataset = evaluation_dataset(
        records, batch_size=batch_size, image_size=size, channels=channels,
        value_range=(0.0, 1.0), size_policy=size_policy,
    )
    scores = [
        np.asarray(model(batch[0] if isinstance(batch, tuple) else batch, training=False))[:, positive_class]
        for batch in dataset
    ]
    return np.concatenate(scores).astype(np.float64)
