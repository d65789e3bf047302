"""`train_gan`: one resumable, logged `fit` of a zoo GAN on an image source."""

import json

import keras

from gan_zoo.data.pipeline import training_stream
from gan_zoo.training.callbacks import EvaluationHook, MetricsLogger, SampleGrid
from gan_zoo.training.checkpoint import TrainingCheckpoint


def train_gan(
    gan,
    source,
    run,
    *,
    epochs,
    batch_size,
    seed=0,
    size_policy="resize",
    flips=False,
    cache=None,
    sample_every=1,
    evaluate=None,
    evaluate_every=1,
    callbacks=(),
    verbose="auto",
):
    """Trains `gan` on `source` for `epochs`, resuming from `run`'s backup.

    Args:
        gan: a compiled zoo GAN (create and compile it inside the strategy's
            scope when distributing).
        source: `ImageRecord`s or a `tf.data.Dataset` of {"image", "label"}.
        run: the `gan_zoo.training.recipe.Run` that receives backups, sample
            grids, `metrics.jsonl` and the TensorBoard log.
        epochs: total epochs (including any already done).
        batch_size: global batch size.
        seed: seed of the data order and flips.
        size_policy: how off-size images are fitted (see `training_stream`).
        flips: random horizontal and vertical flips.
        cache: None, "memory" or a file prefix for decoded images.
        sample_every: epochs between sample grids.
        evaluate: optional `(model, epoch) -> dict` downstream evaluation.
        evaluate_every: epochs between evaluations.
        callbacks: extra Keras callbacks.
        verbose: Keras progress-bar verbosity.

    Returns:
        Every epoch's logs, read back from `metrics.jsonl` (so a resumed
        run reports the epochs before the interruption too).
    """
    checkpoint = TrainingCheckpoint(run.path("backup"))
    height, width, channels = gan.image_shape
    stream = training_stream(
        source,
        batch_size=batch_size,
        image_size=(height, width),
        channels=channels,
        value_range=gan.data_range,
        size_policy=size_policy,
        seed=seed,
        start_epoch=checkpoint.completed_epochs(),
        epochs=epochs,
        cache=cache,
        flips=flips,
    )
    if stream.steps_per_epoch == 0:
        raise ValueError(
            f"{stream.num_examples} images give no full batch of {batch_size}: "
            "lower --batch-size or add data."
        )
    metrics_log = run.path("metrics.jsonl")
    all_callbacks = [checkpoint, SampleGrid(run.path("samples"), every_epochs=sample_every)]
    if evaluate is not None:
        all_callbacks.append(EvaluationHook(evaluate, every_epochs=evaluate_every))
    all_callbacks += [
        MetricsLogger(metrics_log),
        keras.callbacks.TensorBoard(str(run.path("tensorboard")), write_graph=False),
        *callbacks,
    ]
    if checkpoint.completed_epochs() == 0 and metrics_log.exists():
        metrics_log.unlink()  # a fresh start: no stale epochs from a run that never saved
    gan.fit(
        stream.dataset,
        steps_per_epoch=stream.steps_per_epoch,
        epochs=epochs,
        callbacks=all_callbacks,
        verbose=verbose,
        shuffle=False,
    )
    return read_epoch_logs(metrics_log)


def read_epoch_logs(path):
    """Epoch records of a `metrics.jsonl`, one per epoch (the last one wins)."""
    records = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["epoch"]] = record
    return [records[epoch] for epoch in sorted(records)]
