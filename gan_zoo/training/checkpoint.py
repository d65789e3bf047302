"""Exact resume of an interrupted `fit`.

Keras' own `BackupAndRestore` restarts at an epoch boundary but cannot tell
the data pipeline where to start, and with `save_freq=<batches>` it replays a
whole epoch on top of mid-epoch weights. `TrainingCheckpoint` saves the full
training state at epoch ends and tells the caller which epoch to start the
data stream at, so a killed run, restarted, ends with the same weights as an
uninterrupted one:

    checkpoint = TrainingCheckpoint(run_dir / "backup")
    start = checkpoint.resume(model)          # restores; 0 on a fresh start
    stream = training_stream(records, ..., seed=seed, start_epoch=start)
    model.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch,
              epochs=epochs, callbacks=[..., checkpoint])  # last: it commits the epoch

The state is every variable the model tracks: the networks, batch-norm
statistics, the optimizers' slots and iteration counts, the GAN's step
counter that seeds its random stream, and the states of Keras'
`SeedGenerator`s (augmentation and dropout layers), which `save_weights`
leaves out. The data order of epoch e is a pure function of (seed, e) (see
`gan_zoo.data.pipeline.training_stream`).
"""

import json
import logging
import math
import os
import pathlib
import time
import warnings

import keras
import numpy as np

logger = logging.getLogger(__name__)

_STATE = "state.json"


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite."""


class TrainingCheckpoint(keras.callbacks.Callback):
    """Backs up the training state each epoch; restores it when fit starts.

    Writes are atomic (temporary file, then `os.replace`) and the previous
    backup stays until the next one is complete, so a kill at any moment
    loses at most the epoch in progress. A NaN or infinite loss, or
    non-finite weights at an epoch's end, stop training with
    `NonFiniteLossError` before the bad state is saved. Put this callback
    LAST in the list: its epoch-end save commits the epoch, so the other
    callbacks' epoch-end work (metric logs, sample grids) is done by then.

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
        self._resumed = False

    # ------------------------------------------------------------- state
    def _read_state(self):
        path = self.directory / _STATE
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"Corrupt checkpoint state file {path}: {error}") from error
        missing = [k for k in ("completed_epochs", "weights") if k not in state]
        if missing:
            raise ValueError(f"Checkpoint state file {path} lacks {missing}.")
        return state

    def completed_epochs(self):
        """Epochs done according to the newest backup (0 when none).

        The backup actually restored may be older (see `resume`).
        """
        state = self._read_state()
        return int(state["completed_epochs"]) if state else 0

    def resume(self, model):
        """Restores the newest usable backup into `model` (compiled, so the
        optimizers exist) and returns the epochs it had completed, 0 when there
        is none. Build the data stream from this number, not from
        `completed_epochs()`: when the newest backup is unreadable or holds
        non-finite values the previous one is used (and a warning says so).
        """
        if not any(getattr(model, n, None) for n in ("optimizer", "g_optimizer", "d_optimizer")):
            raise ValueError(
                "Compile the model before resuming: its optimizer state is part of the backup."
            )
        self.restored_epoch = self.restore(model)
        self._resumed = True
        return self.restored_epoch or 0

    def restore(self, model):
        """Loads the newest usable backup into `model`; returns its epoch or None."""
        state = self._read_state()
        if not state:
            return None
        candidates = [(state["weights"], state["completed_epochs"])]
        if state.get("previous_weights"):
            candidates.append((state["previous_weights"], state["previous_epochs"]))
        errors = []
        for name, epochs in candidates:
            path = self.directory / name
            try:
                _load_exactly(model, path)
            except (OSError, ValueError) as error:
                errors.append(f"{path}: {error}")
                continue
            if errors:
                logger.warning(
                    "Resuming from the older backup %s (%d epochs): %s", path, epochs, errors[0]
                )
            return int(epochs)
        raise ValueError("No usable backup in " + str(self.directory) + ":\n" + "\n".join(errors))

    def save(self, model, completed_epochs):
        bad = _non_finite_variables(model)
        if bad:
            raise NonFiniteLossError(
                f"Not saving epoch {completed_epochs}: non-finite values in {', '.join(bad[:5])}. "
                f"The last good state ({self.completed_epochs()} epochs) is in {self.directory}."
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{completed_epochs:05d}.weights.h5"
        temporary = self.directory / f"partial-{name}"
        model.save_weights(str(temporary))
        os.replace(temporary, self.directory / name)
        _write_json(self.directory / _random_state_name(name), _random_states(model))
        previous = self._read_state()
        state = {
            "completed_epochs": completed_epochs,
            "weights": name,
            "previous_weights": previous["weights"] if previous else None,
            "previous_epochs": previous["completed_epochs"] if previous else None,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _write_json(self.directory / _STATE, state)
        keep = {state["weights"], state["previous_weights"]}
        keep |= {_random_state_name(n) for n in keep if n}
        for old in [*self.directory.glob("*.weights.h5"), *self.directory.glob("*.random.json")]:
            if old.name not in keep:
                old.unlink()

    # --------------------------------------------------------- callbacks
    def on_train_begin(self, logs=None):
        if not self._resumed:  # the caller did not call resume() first
            self.resume(self.model)
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
        self._resumed = False


def _write_json(path, data):
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


def _random_state_name(weights_name):
    return weights_name.replace(".weights.h5", ".random.json")


def _seed_states(model):
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _random_states(model):
    """Values of the model's SeedGenerator states, in the model's variable order."""
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_states(model)]


def _load_exactly(model, path):
    """`model.load_weights(path)` plus the random states; a skipped variable
    or a NaN is an error.

    Keras only warns when a file lacks some of the model's variables (e.g.
    optimizer slots that were not built yet) and leaves them as they are;
    for a resume that would silently change the run.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(str(path))
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    if skipped:
        raise ValueError(f"the backup does not match the model: {skipped[0]}")
    random_path = path.with_name(_random_state_name(path.name))
    states = json.loads(random_path.read_text()) if random_path.exists() else []
    variables = _seed_states(model)
    if len(states) != len(variables):
        raise ValueError(
            f"{random_path} holds {len(states)} random states; the model has {len(variables)}."
        )
    for variable, value in zip(variables, states):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    bad = _non_finite_variables(model)
    if bad:
        raise ValueError(f"non-finite values in {', '.join(bad[:5])}")


def _non_finite_variables(model):
    return [
        v.path
        for v in model.variables
        if v.dtype.startswith(("float", "bfloat")) and not np.isfinite(keras.ops.convert_to_numpy(v)).all()
    ]
