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
    start = checkpoint.resume(gan)
    height, width, channels = gan.image_shape
    stream = training_stream(
        source,
        batch_size=batch_size,
        image_size=(height, width),
        channels=channels,
        value_range=gan.data_range,
        size_policy=size_policy,
        seed=seed,
        start_epoch=start,
        epochs=epochs,
        cache=cache,
        flips=flips,
    )
    metrics_log = run.path("metrics.jsonl")
    # Order matters at each epoch's end: the caller's callbacks (e.g. the
    # learning-rate log) and the evaluation add to the logs before they are
    # written, and the checkpoint comes last because saving commits the epoch.
    all_callbacks = [*callbacks, SampleGrid(run.path("samples"), every_epochs=sample_every)]
    if evaluate is not None:
        all_callbacks.append(EvaluationHook(evaluate, every_epochs=evaluate_every))
    all_callbacks += [
        MetricsLogger(metrics_log),
        keras.callbacks.TensorBoard(str(run.path("tensorboard")), write_graph=False),
        checkpoint,
    ]
    if start == 0 and metrics_log.exists():
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
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records[record["epoch"]] = record
        except (json.JSONDecodeError, KeyError) as error:
            raise ValueError(f"{path}, line {number}: not an epoch record ({error!r}).") from error
    return [records[epoch] for epoch in sorted(records)]
