"""`train_gan`: one resumable, logged `fit` of a zoo model, following its plan."""

import json
import logging

import keras
import tensorflow as tf

from gan_zoo.data.pipeline import training_stream
from gan_zoo.training.callbacks import (
    EvaluationHook,
    MetricsLogger,
    SampleGrid,
    ScheduledLearningRate,
)
from gan_zoo.training.checkpoint import TrainingCheckpoint
from gan_zoo.training.distribute import is_chief, remove_worker_directory, write_directory

logger = logging.getLogger(__name__)


def train_gan(
    gan,
    source,
    run,
    *,
    plan=None,
    epochs=None,
    batch_size=None,
    seed=0,
    size_policy="resize",
    cache=None,
    on_error="raise",
    checkpoint_every_steps=None,
    sample_every=1,
    sample_inputs=None,
    sample_upscale=1,
    evaluate=None,
    evaluate_every=1,
    callbacks=(),
    verbose="auto",
):
    """Trains `gan` on `source` following `plan`, resuming from `run`'s backup.

    Args:
        gan: a compiled zoo model (create and compile it inside the
            strategy's scope when distributing).
        source: `ImageRecord`s or a `tf.data.Dataset` of {"image", "label"}
            (one image stream shaped for the model), or a callable
            `(start_epoch, epochs) -> stream` for anything else (e.g.
            `gan_zoo.data.streams.training_streams` over several sources);
            a stream has `.dataset` and `.steps_per_epoch`, and its epoch e
            must be a function of (seed, e) only.
        run: the `gan_zoo.experiments.Run` that receives backups, sample
            grids, `metrics.jsonl` and the TensorBoard log.
        plan: the `TrainingPlan` (default: `gan.training_plan(epochs,
            batch_size)`): epochs, batch size, per-step learning-rate
            schedule and flips.
        epochs: total epochs (including any already done); overrides the plan's.
        batch_size: global batch size; overrides the plan's.
        seed: seed of the data order and flips.
        size_policy: how off-size images are fitted (see `training_stream`).
        cache: None, "memory" or a file prefix for decoded images.
        on_error: "raise" or "skip" for unreadable images.
        checkpoint_every_steps: also back up inside epochs, every this many
            steps (a resumed run then continues mid-epoch).
        sample_every: epochs between sample grids (0: none).
        sample_inputs: fixed input images for an image translator's grids.
        sample_upscale: nearest-neighbour magnification of the grids.
        evaluate: optional `(model, epoch) -> dict` evaluation on VALIDATION
            data (test data is scored once, after training).
        evaluate_every: epochs between evaluations.
        callbacks: extra Keras callbacks.
        verbose: Keras progress-bar verbosity.

    Returns:
        Every epoch's logs, read back from `metrics.jsonl` (so a resumed
        run reports the epochs before the interruption too).
    """
    if plan is None:
        plan = gan.training_plan(epochs=epochs, batch_size=batch_size)
    epochs = int(epochs or plan.epochs)
    batch_size = int(batch_size or plan.batch_size)
    checkpoint = TrainingCheckpoint(run.path("backup"), every_steps=checkpoint_every_steps)
    start = checkpoint.resume(gan)
    start_step = checkpoint.restored_step
    if start or start_step:
        print(f"Resuming {run.directory} from epoch {start + 1}" + (f", step {start_step + 1}" if start_step else ""))

    def make_stream(first_epoch):
        if callable(source):
            return source(first_epoch, epochs)
        height, width, channels = gan.image_shape
        return training_stream(
            source, batch_size=batch_size, image_size=(height, width), channels=channels,
            value_range=gan.data_range, size_policy=size_policy, seed=seed,
            start_epoch=first_epoch, epochs=epochs, cache=cache, flips=plan.flips,
            on_error=on_error,
        )

    stream = make_stream(start)
    steps = stream.steps_per_epoch
    metrics_log = run.path("metrics.jsonl")
    if start == 0 and not start_step and metrics_log.exists() and is_chief(gan.distribute_strategy):
        metrics_log.unlink()  # a fresh start: no stale epochs from a run that never saved
    if is_chief(gan.distribute_strategy):
        repair_epoch_log(metrics_log, completed_epochs=start)
    board = write_directory(run.path("tensorboard"), gan.distribute_strategy)

    def callbacks_for(step_offset):
        # Order matters at each epoch's end: the caller's callbacks, the
        # rates and the evaluation add to the logs before they are written,
        # and the checkpoint comes last because saving commits the epoch.
        chosen = [*callbacks, ScheduledLearningRate(plan, steps, step_offset=step_offset)]
        if sample_every:
            chosen.append(SampleGrid(run.path("samples"), every_epochs=sample_every,
                                     inputs=sample_inputs, upscale=sample_upscale))
        if evaluate is not None:
            chosen.append(EvaluationHook(evaluate, every_epochs=evaluate_every))
        return chosen + [
            MetricsLogger(metrics_log),
            keras.callbacks.TensorBoard(str(board), write_graph=False),
            checkpoint,
        ]

    if start_step and start < epochs:
        # Finish the epoch the backup was taken in, from its next step.
        checkpoint.step_offset = start_step
        gan.fit(
            _shardable(stream.dataset.skip(start_step)), steps_per_epoch=steps - start_step,
            epochs=start + 1, initial_epoch=start, callbacks=callbacks_for(start_step),
            verbose=verbose, shuffle=False,
        )
        start += 1
        checkpoint.continue_from(start)
        stream = make_stream(start)
    if start < epochs:
        gan.fit(
            _shardable(stream.dataset), steps_per_epoch=steps, epochs=epochs, initial_epoch=start,
            callbacks=callbacks_for(0), verbose=verbose, shuffle=False,
        )
    remove_worker_directory(board, gan.distribute_strategy)
    return read_epoch_logs(metrics_log)


def _shardable(dataset):
    # The input is a stream of GLOBAL batches: under multi-worker training
    # each worker keeps its part of every batch (DATA sharding), so the
    # workers together see exactly the batches one process would.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def repair_epoch_log(path, completed_epochs=None):
    """Drops what a resumed run must not read back from `metrics.jsonl`.

    A partial last line (a kill or a full disk during the append), and the
    records of epochs after `completed_epochs`: an epoch is logged just
    before its backup is written, so a kill in between leaves the record of
    an epoch the restored model has not trained (it is trained and logged
    again, or, when the run stops there, never counted).

    Args:
        path: the `metrics.jsonl` file.
        completed_epochs: the epochs the restored backup holds (None: keep
            every whole record).
    """
    if not path.exists():
        return
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    good = []
    for line in lines:
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "epoch" not in record:
                raise ValueError("not an epoch record")
        except ValueError:
            logger.warning("Dropping an incomplete line of %s: %r", path, line[:80])
            continue
        if completed_epochs is not None and record["epoch"] > completed_epochs:
            logger.warning("Dropping the record of epoch %s from %s: the backup holds %s epochs",
                           record["epoch"], path, completed_epochs)
            continue
        good.append(line if line.endswith("\n") else line + "\n")
    if "".join(good) != text:
        path.write_text("".join(good))


def read_epoch_logs(path):
    """Epoch records of a `metrics.jsonl`, one per epoch (the last one wins)."""
    records = {}
    if not path.exists():
        return []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records[record["epoch"]] = record
        except (json.JSONDecodeError, KeyError) as error:
            raise ValueError(f"{path}, line {number}: not an epoch record ({error!r}).") from error
    return [records[epoch] for epoch in sorted(records)]
