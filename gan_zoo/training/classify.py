"""The one training path of the zoo's classifiers, and scoring images.

`fit_classifier` is the loop every classifier of the project is trained
with: the zoo classifiers of the recipes (`train_classifier`, on labelled
records), the augmentation study's real:synthetic mixes
(`gan_zoo.training.augmentation.fit_on_mix`), ciGAN's ResNet-50 rows
(`gan_zoo.training.cigan_study.train_regime`), the feature networks of the
generative metrics and of ciGAN's loss
(`gan_zoo.training.domain_classifier`) and DiaGRAM's classification path
(`gan_zoo.training.diagram_study`). It compiles with the paper optimizer
fitted to the run's length, resumes an interrupted training exactly from
its backup, and optionally keeps the weights best on validation patients.
"""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

from gan_zoo.data.pipeline import evaluation_dataset, training_stream
from gan_zoo.metrics.classification import binary_metrics
from gan_zoo.models.classifier import paper_optimizer_for
from gan_zoo.training.checkpoint import TrainingCheckpoint

KEEP = ("last", "best")


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


class BestOnValidation(keras.callbacks.Callback):
    """After every epoch: the validation AUROC; keeps the best weights in a file.

    Its state (best AUROC and the optimizer step it was reached at) is saved
    beside the weights, so a resumed training compares with the best of the
    whole run.

    Args:
        images: validation images in [0, 1].
        labels: their labels (class 1 is the positive one).
        path: the best weights' file (`.weights.h5`; the state is `.json`).
    """

    def __init__(self, images, labels, path):
        super().__init__()
        self.images, self.labels, self.path = images, labels, pathlib.Path(path)
        state = self.path.with_suffix(".json")
        self.best = json.loads(state.read_text()) if state.exists() else {"auroc": -1.0, "step": 0}

    def on_epoch_end(self, epoch, logs=None):
        scores = self.model.predict(self.images, batch_size=64, verbose=0)[:, 1]
        auroc = binary_metrics(self.labels, scores)["auroc"]
        if logs is not None:
            logs["validation_auroc"] = auroc
        if np.isfinite(auroc) and auroc > self.best["auroc"]:
            step = int(self.model.optimizer.iterations.numpy())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.model.save_weights(self.path)
            self.best = {"auroc": float(auroc), "step": step}
            self.path.with_suffix(".json").write_text(json.dumps(self.best))


@dataclasses.dataclass
class ClassifierFit:
    """What `fit_classifier` did.

    Attributes:
        history: the Keras `History` of this call (from `start_epoch` on).
        start_epoch: the epoch training resumed at (0 on a fresh start).
        best: `{"auroc", "step"}` of the best validation epoch, when
            validation images were given (None otherwise).
        kept: "last" or "best": the weights the model holds now.
    """

    history: keras.callbacks.History
    start_epoch: int
    best: dict | None
    kept: str


def fit_classifier(
    model, batches, *, epochs, steps_per_epoch, optimizer="paper", backup_dir=None,
    validation=None, keep="last", best_path=None, class_weight=None, callbacks=(), verbose="auto",
):
    """Trains a classifier: compile, resume, fit, keep the last or best weights.

    Args:
        model: a Keras classifier of images to class probabilities.
        batches: `batches(start_epoch)` -> a `tf.data.Dataset` of `(images,
            labels)` batches from epoch `start_epoch` on, the same batches
            whatever epoch it starts at (e.g. `training_stream(...,
            start_epoch=...)`), so a resumed run sees what an uninterrupted
            one would; or a dataset, when there is no `backup_dir`.
        epochs: training epochs.
        steps_per_epoch: steps in an epoch.
        optimizer: "paper": compile with the model's paper optimizer, its
            schedule fitted to `epochs * steps_per_epoch`
            (`paper_optimizer_for`); a Keras optimizer: compile with it
            (the model's own loss); None: the model is compiled already
            and keeps its optimizer and state.
        backup_dir: folder of the `TrainingCheckpoint`; an interrupted call,
            made again, resumes exactly (None: no backups).
        validation: optional `(images, labels)` of validation patients,
            scored after every epoch (`BestOnValidation`): the AUROC is
            logged as `validation_auroc` and the best weights kept.
        keep: "last" (the paper's fixed training length) or "best" (the
            weights of the best validation epoch; needs `validation`).
        best_path: file of the best weights (default: beside `backup_dir`,
            named `<backup_dir>-best.weights.h5`).
        class_weight: optional `{class: weight}` of the loss.
        callbacks: extra Keras callbacks, run before the backup is written.
        verbose: Keras progress-bar verbosity.

    Returns:
        A `ClassifierFit`.
    """
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}, got {keep!r}.")
    if keep == "best" and validation is None:
        raise ValueError('keep="best" needs validation images.')
    if backup_dir is not None and not callable(batches):
        raise ValueError("With backup_dir, batches must be a function of the start epoch (exact resume).")
    if validation is not None and best_path is None:
        if backup_dir is None:
            raise ValueError("Validation needs a best_path (or a backup_dir to keep it in).")
        backup_dir = pathlib.Path(backup_dir)  # it deletes its old weight files: beside it
        best_path = backup_dir.with_name(f"{backup_dir.name}-best.weights.h5")
    if isinstance(optimizer, str):
        if optimizer != "paper":
            raise ValueError(f'optimizer must be "paper", a Keras optimizer or None, got {optimizer!r}.')
        model.compile(paper_optimizer_for(model, epochs=epochs, steps_per_epoch=steps_per_epoch))
    elif optimizer is not None:
        model.compile(optimizer)
    elif model.optimizer is None:
        raise ValueError("optimizer=None needs a compiled model.")
    checkpoint = TrainingCheckpoint(backup_dir) if backup_dir is not None else None
    start = checkpoint.resume(model) if checkpoint else 0
    best = BestOnValidation(*validation, best_path) if validation is not None else None
    dataset = batches(start) if callable(batches) else batches
    history = model.fit(
        dataset, steps_per_epoch=int(steps_per_epoch), epochs=int(epochs), initial_epoch=start,
        class_weight=class_weight, verbose=verbose, shuffle=False,
        callbacks=[*([best] if best else []), *callbacks, *([checkpoint] if checkpoint else [])],
    )
    if keep == "best":
        if not best.path.is_file():
            raise ValueError(f"No finite validation AUROC in {epochs} epochs: no best weights to keep.")
        model.load_weights(best.path)
    return ClassifierFit(history=history, start_epoch=start, best=best.best if best else None, kept=keep)


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

    def stream(start_epoch):
        return training_stream(source, batch_size=batch_size, seed=seed, start_epoch=start_epoch,
                               epochs=epochs, **common)

    return fit_classifier(
        model, lambda start: stream(start).dataset, epochs=epochs,
        steps_per_epoch=stream(0).steps_per_epoch, backup_dir=backup_dir,
        class_weight=class_weight, callbacks=callbacks, verbose=verbose,
    ).history


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
