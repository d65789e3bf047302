"""Exact resume of an interrupted `fit`.

Keras' own `BackupAndRestore` restarts at an epoch boundary but cannot tell
the data pipeline where to start, and with `save_freq=<batches>` it replays a
whole epoch on top of mid-epoch weights. `TrainingCheckpoint` saves the full
training state at epoch ends and tells the caller which epoch to start the
data stream at, so a killed run, restarted, ends with the same weights as an
uninterrupted one:

    checkpoint = TrainingCheckpoint(run_dir / "backup")
    start = checkpoint.completed_epochs()
    stream = training_stream(records, ..., seed=seed, start_epoch=start)
    model.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch,
              epochs=epochs, callbacks=[checkpoint, ...])

The state is every variable the model tracks: the networks, batch-norm
statistics, both optimizers' slots and iteration counts, and the GAN's step
counter that seeds its random stream. The data order of epoch e is a pure
function of (seed, e) (see `gan_zoo.data.pipeline.training_stream`).
"""

import json
import math
import os
import pathlib
import time

import keras

_STATE = "state.json"


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite."""


class TrainingCheckpoint(keras.callbacks.Callback):
    """Backs up the training state each epoch; restores it when fit starts.

    Writes are atomic (temporary file, then `os.replace`) and the previous
    backup stays until the next one is complete, so a kill at any moment
    loses at most the epoch in progress. A NaN or infinite loss stops
    training with `NonFiniteLossError` before the bad state is saved.

    Args:
        directory: folder for the backups (created if needed).
        every_epochs: back up every this many epochs.
        check_finite: stop on a non-finite logged loss.
    """

    def __init__(self, directory, every_epochs=1, check_finite=True):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.every_epochs = int(every_epochs)
        self.check_finite = check_finite
        self._epoch = 0
        self.restored_epoch = None

    # ------------------------------------------------------------- state
    def _read_state(self):
        path = self.directory / _STATE
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"Corrupt checkpoint state file {path}: {error}") from error

    def completed_epochs(self):
        """Epochs already trained according to the backup (0 when none)."""
        state = self._read_state()
        return int(state["completed_epochs"]) if state else 0

    def restore(self, model):
        """Loads the newest readable backup into `model`; returns its epoch or None."""
        state = self._read_state()
        if not state:
            return None
        candidates = [(state["weights"], state["completed_epochs"])]
        if state.get("previous_weights"):
            candidates.append((state["previous_weights"], state["previous_epochs"]))
        errors = []
        for name, epochs in candidates:
            try:
                model.load_weights(str(self.directory / name))
                return int(epochs)
            except (OSError, ValueError) as error:
                errors.append(f"{self.directory / name}: {error}")
        raise ValueError("No readable backup in " + str(self.directory) + ":\n" + "\n".join(errors))

    def save(self, model, completed_epochs):
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{completed_epochs:05d}.weights.h5"
        temporary = self.directory / f"partial-{name}"
        model.save_weights(str(temporary))
        os.replace(temporary, self.directory / name)
        previous = self._read_state()
        state = {
            "completed_epochs": completed_epochs,
            "weights": name,
            "previous_weights": previous["weights"] if previous else None,
            "previous_epochs": previous["completed_epochs"] if previous else None,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        temporary_state = self.directory / f"{_STATE}.partial"
        temporary_state.write_text(json.dumps(state, indent=2))
        os.replace(temporary_state, self.directory / _STATE)
        keep = {state["weights"], state["previous_weights"]}
        for old in self.directory.glob("*.weights.h5"):
            if old.name not in keep:
                old.unlink()

    # --------------------------------------------------------- callbacks
    def on_train_begin(self, logs=None):
        self.restored_epoch = self.restore(self.model)
        if self.restored_epoch is not None:
            # Keras' fit starts its epoch loop at this attribute when set.
            self.model._initial_epoch = self.restored_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not self.check_finite or not logs:
            return
        for name, value in logs.items():
            value = float(value)
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"{name} became {value} at epoch {self._epoch + 1}, step {batch + 1}. "
                    f"Training stopped before saving; the last good state "
                    f"({self.completed_epochs()} epochs) is in {self.directory}. "
                    "Lower the learning rate or check the data, then rerun to resume."
                )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs == 0:
            self.save(self.model, epoch + 1)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None
