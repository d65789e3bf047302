"""Training schedules a model declares: update phases, learning rates, plans.

Pure Python (no TensorFlow), so a schedule is data chosen on the host. That
is what makes schedules work under `tf.distribute.MirroredStrategy`: an
`optimizer.apply_gradients` inside a `tf.cond` fails there ("merge_call
called while defining a new graph ... control flow statement which contains
a synchronization point"), so instead each phase of an `UpdateSchedule` gets
its own traced train function, and the host picks the function to run at
every step (as stylegan2-ada's training loop picks its phases).

- `UpdateSchedule`: which updates a train step makes, as a small state
  machine of `Phase`s. A phase ends after a number of steps, or when a
  logged loss of its last step falls below a threshold; the model saves the
  phase and the steps done in it, so a resumed run continues in the same
  phase at the same position. Fixed ratios (n critic steps per generator
  step; k steps of some networks, then one of another) are cycles of phases
  that end after a number of steps; ciGAN's pre-training and loss-triggered
  alternation are phases that end on steps and on losses.
- Learning-rate schedules: factors of the base rate as a function of the
  global step (`LearningRateSchedule.factor(step, steps_per_epoch)`), set by
  `gan_zoo.training.callbacks.ScheduledLearningRate` at every step from the
  base rates the model recorded when it was compiled (never from the
  current rate, which a restored run has already decayed).
- `TrainingPlan`: what a model trains with by default (epochs, batch size,
  learning-rate schedule, augmentation); recipes and `gan-zoo train` both
  take it from `model.training_plan()`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of an `UpdateSchedule`.

    Args:
        name: the phase's name (logged, and the key of its traced function).
        updates: names of the updates a train step makes in this phase; the
            model's `train_step` reads them from `model.active_updates`.
        steps: the phase ends after this many steps (None: no step limit).
        until_below: `(loss name, threshold)`: the phase ends after a step
            whose loss (the global-batch mean of that step, not the epoch's
            running mean) is below the threshold.
        next: the phase that follows (default: the next one in the list,
            wrapping around to the first).
    """

    name: str
    updates: tuple[str, ...]
    steps: int | None = None
    until_below: tuple[str, float] | None = None
    next: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "updates", tuple(self.updates))
        if not self.updates:
            raise ValueError(f"Phase {self.name!r} makes no update.")
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"Phase {self.name!r}: steps must be at least 1, got {self.steps}.")
        if self.until_below is not None:
            loss, threshold = self.until_below
            object.__setattr__(self, "until_below", (str(loss), float(threshold)))

    @property
    def signal(self):
        """The loss this phase watches, or None."""
        return self.until_below[0] if self.until_below else None


class UpdateSchedule:
    """A state machine of `Phase`s, run on the host.

    The state is `(phase index, steps done in the phase)`; the model keeps
    it in a saved variable, so it is part of every checkpoint.

    Args:
        phases: the phases; the first is where training starts.

    Example (PathologyGAN's n_critic = 5: four critic steps, then a step of
    both networks):

    >>> UpdateSchedule.ratio(5, critic=("d",), both=("d", "g"))
    """

    def __init__(self, phases):
        self.phases = tuple(phases)
        if not self.phases:
            raise ValueError("An UpdateSchedule needs at least one phase.")
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"Phase names must be unique, got {names}.")
        self._index = {name: i for i, name in enumerate(names)}
        for phase in self.phases:
            if phase.next is not None and phase.next not in self._index:
                raise ValueError(
                    f"Phase {phase.name!r} is followed by unknown phase {phase.next!r}; "
                    f"phases are {names}."
                )

    # ------------------------------------------------------------ builders
    @classmethod
    def every_step(cls, updates):
        """One phase: every step makes the same updates."""
        return cls([Phase("train", tuple(updates))])

    @classmethod
    def ratio(cls, n, critic, both):
        """`n - 1` steps of the `critic` updates, then one step of `both`.

        With `critic=("d",)` and `both=("d", "g")` the generator is updated
        once every `n` discriminator updates, each on its own batch.
        """
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}.")
        if n == 1:
            return cls.every_step(both)
        return cls([Phase("critic", tuple(critic), steps=n - 1), Phase("all", tuple(both), steps=1)])

    # --------------------------------------------------------------- state
    @property
    def is_constant(self):
        """True when every step runs the same single phase."""
        only = self.phases[0]
        return len(self.phases) == 1 and only.until_below is None

    def phase(self, index):
        return self.phases[int(index)]

    def index_of(self, name):
        return self._index[name]

    def signals(self):
        """Names of the losses some phase watches."""
        return sorted({p.signal for p in self.phases if p.signal})

    def advance(self, index, steps_done, losses=None):
        """The state after one more step in phase `index`.

        Args:
            index: the phase the step ran in.
            steps_done: steps done in that phase before this one.
            losses: {name: float} of the step's watched losses.

        Returns:
            `(phase index, steps done in it)` for the next step.
        """
        phase = self.phases[int(index)]
        steps_done = int(steps_done) + 1
        ended = phase.steps is not None and steps_done >= phase.steps
        if phase.until_below is not None:
            name, threshold = phase.until_below
            if losses is None or name not in losses:
                raise ValueError(f"Phase {phase.name!r} watches {name!r}, which the step did not report.")
            value = float(losses[name])
            ended = ended or (math.isfinite(value) and value < threshold)
        if not ended:
            return int(index), steps_done
        if phase.next is not None:
            return self._index[phase.next], 0
        return (int(index) + 1) % len(self.phases), 0

    def describe(self):
        """One line per phase, for logs and `gan-zoo list --verbose`."""
        lines = []
        for phase in self.phases:
            ends = []
            if phase.steps is not None:
                ends.append(f"after {phase.steps} step(s)")
            if phase.until_below is not None:
                ends.append(f"when {phase.until_below[0]} < {phase.until_below[1]:g}")
            lines.append(f"{phase.name}: updates {', '.join(phase.updates)}; ends {' or '.join(ends) or 'never'}")
        return lines


# ------------------------------------------------------------ learning rates
class LearningRateSchedule:
    """A factor of the base learning rate as a function of the global step."""

    def factor(self, step, steps_per_epoch):
        raise NotImplementedError

    def get_config(self):
        return {"class": type(self).__name__, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class ConstantLearningRate(LearningRateSchedule):
    """The base rate throughout."""

    def factor(self, step, steps_per_epoch):
        return 1.0


@dataclasses.dataclass(frozen=True)
class LinearDecay(LearningRateSchedule):
    """Constant for `constant_epochs`, then linear decay towards 0 at `total_epochs`.

    Epoch `constant_epochs + k` trains at `base * (1 - k / decay_epochs)`
    (whole epochs, as the CycleGAN reference code does), so the last epoch
    runs at `base / decay_epochs` and the rate reaches 0 where training
    ends. Johnson's semi-supervised cGAN paper says the rate is "reduced
    linearly to 0 for the remaining 100 epochs" and has no reference code:
    this per-epoch staircase is the project's reading of it. A function of
    the epoch alone, so a resumed run gets the same rates.

    Args:
        constant_epochs: epochs at the base rate.
        total_epochs: all epochs.
    """

    constant_epochs: int
    total_epochs: int

    def __post_init__(self):
        if not 0 <= self.constant_epochs <= self.total_epochs:
            raise ValueError(
                "Need 0 <= constant_epochs <= total_epochs, got "
                f"{self.constant_epochs}, {self.total_epochs}."
            )

    def epoch_factor(self, epoch):
        decay_epochs = self.total_epochs - self.constant_epochs
        if epoch < self.constant_epochs or decay_epochs == 0:
            return 1.0
        return max(0.0, 1.0 - (epoch - self.constant_epochs) / decay_epochs)

    def factor(self, step, steps_per_epoch):
        return self.epoch_factor(int(step) // int(steps_per_epoch))


@dataclasses.dataclass(frozen=True)
class StepDecay(LearningRateSchedule):
    """`rate * decay ** (step // every_steps)` (ciGAN's classifier: 0.9 every 2,000).

    Args:
        decay: the factor applied every `every_steps` steps.
        every_steps: steps between decays.
    """

    decay: float
    every_steps: int

    def __post_init__(self):
        if self.every_steps < 1 or not 0 < self.decay <= 1:
            raise ValueError(
                f"Need every_steps >= 1 and 0 < decay <= 1, got {self.every_steps}, {self.decay}."
            )

    def factor(self, step, steps_per_epoch):
        return self.decay ** (int(step) // self.every_steps)


# ---------------------------------------------------------------- the plan
@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What a model trains with unless told otherwise.

    Args:
        epochs: training epochs.
        batch_size: global batch size.
        learning_rate: a `LearningRateSchedule`, or {optimizer group: schedule}.
        flips: random flips of the training images: False, True (horizontal
            and vertical) or "horizontal" (`gan_zoo.data.order.flip_axes`).
        notes: where the numbers come from (the paper, or a documented choice).
    """

    epochs: int
    batch_size: int
    learning_rate: LearningRateSchedule | Mapping[str, LearningRateSchedule] = ConstantLearningRate()
    flips: bool | str = False
    notes: str = ""

    def __post_init__(self):
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}.")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")

    def schedule_for(self, group):
        if isinstance(self.learning_rate, LearningRateSchedule):
            return self.learning_rate
        return self.learning_rate.get(group, ConstantLearningRate())

    def describe(self):
        rates = self.learning_rate
        if isinstance(rates, LearningRateSchedule):
            rates = {"all": rates}
        return {
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "learning_rate": {g: s.get_config() for g, s in rates.items()},
            "flips": self.flips,
            "notes": self.notes,
        }
