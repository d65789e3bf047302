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

With `every_steps`, backups are also taken inside epochs; a run restored
from one continues the epoch at the next step (`restored_step`), which
`gan_zoo.training.loop.train_gan` handles.

Under `MultiWorkerMirroredStrategy` every worker runs the same saves (they
read synchronised variables, a collective operation), but only the chief
writes into the backup folder; the others write into a temporary folder of
their own and delete it (`gan_zoo.training.distribute.write_directory`).

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
import re
import time
import warnings

import keras
import numpy as np

logger = logging.getLogger(__name__)

_STATE = "state.json"
_NAME = re.compile(r"epoch-(?P<epoch>\d+)(-step-(?P<step>\d+))?\.weights\.h5")


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
        every_steps: also back up every this many steps inside epochs
            (None: only at epoch ends).
        check_finite: stop on a non-finite logged loss.
    """

    def __init__(self, directory, every_epochs=1, every_steps=None, check_finite=True):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.every_epochs = int(every_epochs)
        if every_steps is not None and int(every_steps) < 1:
            raise ValueError(f"every_steps must be at least 1, got {every_steps}.")
        self.every_steps = None if every_steps is None else int(every_steps)
        self.check_finite = check_finite
        self._epoch = 0
        self._step_in_epoch = 0
        # Steps of the first epoch done before this fit (a mid-epoch resume).
        self.step_offset = 0
        self.restored_epoch = None
        self.restored_step = 0
        self._resumed = False

    # ------------------------------------------------------------- state
    def _read_state(self):
        path = self.directory / _STATE
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text())
            missing = [k for k in ("completed_epochs", "weights") if k not in state]
            if missing:
                raise ValueError(f"it lacks {missing}")
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as error:
            state = self._state_from_files()
            if state is None:
                raise ValueError(
                    f"Corrupt checkpoint state file {path} ({error}) and no backup weights beside it."
                ) from error
            logger.warning(
                "Ignoring the unreadable %s (%s); resuming from the weight files beside it.", path, error
            )
        return state

    def _state_from_files(self):
        """A state rebuilt from the backup file names, newest first."""
        found = []
        for weights in self.directory.glob("epoch-*.weights.h5"):
            match = _NAME.fullmatch(weights.name)
            if match:
                found.append((int(match["epoch"]), int(match["step"] or 0), weights.name))
        if not found:
            return None
        found.sort(reverse=True)
        (epoch, step, name), *older = found
        return {
            "completed_epochs": epoch, "steps_into_epoch": step, "weights": name,
            "previous_weights": older[0][2] if older else None,
            "previous_epochs": older[0][0] if older else None,
            "previous_steps": older[0][1] if older else 0,
        }

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
        groups = model.optimizers_by_group() if hasattr(model, "optimizers_by_group") else {}
        if not (getattr(model, "optimizer", None) or any(groups.values())):
            raise ValueError(
                "Compile the model before resuming: its optimizer state is part of the backup."
            )
        position = self.restore_position(model)
        self.restored_epoch, self.restored_step = position if position else (None, 0)
        self._resumed = True
        return self.restored_epoch or 0

    def restore(self, model):
        """Loads the newest usable backup into `model`; returns its completed
        epochs, or None when there is none."""
        position = self.restore_position(model)
        return position[0] if position else None

    def restore_position(self, model):
        """Loads the newest usable backup into `model`.

        Returns:
            `(completed epochs, steps into the next epoch)`, or None when
            there is no backup.
        """
        state = self._read_state()
        if not state:
            return None
        candidates = [(state["weights"], state["completed_epochs"], state.get("steps_into_epoch", 0))]
        if state.get("previous_weights"):
            candidates.append(
                (state["previous_weights"], state["previous_epochs"], state.get("previous_steps", 0))
            )
        errors = []
        for name, epochs, steps in candidates:
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
            return int(epochs), int(steps or 0)
        raise ValueError("No usable backup in " + str(self.directory) + ":\n" + "\n".join(errors))

    def save(self, model, completed_epochs, steps_into_epoch=0):
        """Backs up `model` after `completed_epochs` epochs and `steps_into_epoch` more steps."""
        from gan_zoo.training.distribute import remove_worker_directory, write_directory

        bad = _non_finite_variables(model)
        if bad:
            raise NonFiniteLossError(
                f"Not saving epoch {completed_epochs}: non-finite values in {', '.join(bad[:5])}. "
                f"The last good state ({self.completed_epochs()} epochs) is in {self.directory}."
            )
        strategy = getattr(model, "distribute_strategy", None)
        directory = write_directory(self.directory, strategy)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{completed_epochs:05d}"
        if steps_into_epoch:
            name += f"-step-{steps_into_epoch:06d}"
        name += ".weights.h5"
        temporary = directory / f"partial-{name}"
        model.save_weights(str(temporary))
        os.replace(temporary, directory / name)
        _write_json(directory / _random_state_name(name), _random_states(model))
        if directory != self.directory:  # not the chief: its copy was only for the collective reads
            remove_worker_directory(directory, strategy)
            return
        previous = self._read_state()
        state = {
            "completed_epochs": completed_epochs,
            "steps_into_epoch": int(steps_into_epoch),
            "weights": name,
            "previous_weights": previous["weights"] if previous else None,
            "previous_epochs": previous["completed_epochs"] if previous else None,
            "previous_steps": previous.get("steps_into_epoch", 0) if previous else 0,
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
        self._step_in_epoch = self.step_offset if epoch == self._first_epoch() else 0

    def continue_from(self, epoch):
        """Marks the model as already at the start of `epoch` (after a fit that
        finished a partly restored epoch), so the next fit does not restore."""
        self.restored_epoch, self.restored_step, self.step_offset = int(epoch), 0, 0
        self._resumed = True

    def _first_epoch(self):
        return self.restored_epoch or 0

    def on_train_batch_end(self, batch, logs=None):
        self._step_in_epoch += 1
        self._check_finite(batch, logs)
        steps = self.params.get("steps") if self.params else None
        end_of_epoch = steps is not None and batch + 1 == steps
        if self.every_steps and self._step_in_epoch % self.every_steps == 0 and not end_of_epoch:
            self.save(self.model, self._epoch, self._step_in_epoch)

    def _check_finite(self, batch, logs):
        if not self.check_finite or not logs:
            return
        for name, value in logs.items():
            value = float(value)
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"{name} became {value} at epoch {self._epoch + 1}, step {self._step_in_epoch}. "
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
        self.step_offset = 0


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
