"""The experiment protocol every recipe follows, in one place.

A recipe names its data, its models and its steps; this layer gives it the
rest, so that the protocol is written (and fixed) once:

- `run_folder`: the run folder (`start_run`, `Run`): options, lock, resume
  checks, atomic JSON writes.
- `command_line`: the options every recipe shares (`recipe_parser`) and the
  error conventions of its command line (`recipe_main`).
- `splits`: patient splits (random, fixed, k-fold, tuning mode, a separate
  test folder) and the validation carve-out (`PatientSplitter`, `Split`).
- `gan_zoo.metrics.operating_point.OperatingPoint`: how decision thresholds
  are set (argmax, Youden's J, a target sensitivity or specificity), chosen
  on validation patients and recorded with every result.

Nothing here imports TensorFlow at import time.
"""

from gan_zoo.experiments.command_line import recipe_main, recipe_parser
from gan_zoo.experiments.run_folder import Run, RunFolderError, check_out_dir, start_run
from gan_zoo.experiments.splits import PatientSplitter, Split, SplitError
from gan_zoo.metrics.operating_point import OperatingPoint

__all__ = [
    "OperatingPoint",
    "PatientSplitter",
    "Run",
    "RunFolderError",
    "Split",
    "SplitError",
    "check_out_dir",
    "recipe_main",
    "recipe_parser",
    "start_run",
]
