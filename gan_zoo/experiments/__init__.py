"""The experiment protocol every recipe follows, in one place.

A recipe names its data, its models and its steps; this layer gives it the
rest, so that the protocol is written (and fixed) once:

- `run_folder`: the run folder (`start_run`, `Run`): options, lock, resume
  checks, atomic JSON writes.
- `command_line`: the options every recipe shares (`recipe_parser`,
  `add_split_options`, `add_operating_point_option`), model options from
  `--preset`/`--set` (`checked_model_config`), and the error conventions of
  its command line (`recipe_main`).
- `splits`: patient splits (random, fixed, k-fold, tuning mode, a separate
  test folder) and the validation carve-out (`PatientSplitter`, `Split`).
- `checks`: what a split must hold before any model trains.
- `gan_zoo.metrics.operating_point.OperatingPoint`: how decision thresholds
  are set (argmax, Youden's J, a target sensitivity or specificity), chosen
  on validation patients and recorded with every result.
- `comparison`: classifiers scored on one split (`Comparison`) and over k
  folds run as resumable units (`compare_on_splits`); a finished run's
  saved scores at another operating point (`rescore`).
- `units`: units of work a rerun skips when done (`Units`).
- `kept_models`: networks a run trains once and reuses on resume, checked
  by SHA-256 (`train_once`: feature extractors, domain classifiers).
- `report`: metrics.json with data provenance, options, versions and stage
  times (`Report`).

Nothing here imports TensorFlow at import time.
"""

from gan_zoo.experiments.checks import require_both_classes, require_full_batches
from gan_zoo.experiments.command_line import (
    add_split_options,
    checked_model_config,
    recipe_main,
    recipe_parser,
    zoo_classifiers,
)
from gan_zoo.experiments.comparison import Comparison, compare_on_splits, cross_validate, rescore
from gan_zoo.experiments.evaluation import add_operating_point_option, score_split
from gan_zoo.experiments.kept_models import train_once
from gan_zoo.experiments.report import Report
from gan_zoo.experiments.run_folder import Run, RunFolderError, check_out_dir, start_run
from gan_zoo.experiments.splits import PatientSplitter, Split, SplitError
from gan_zoo.experiments.units import Units
from gan_zoo.metrics.operating_point import OperatingPoint

__all__ = [
    "Comparison",
    "OperatingPoint",
    "PatientSplitter",
    "Report",
    "Run",
    "RunFolderError",
    "Split",
    "SplitError",
    "Units",
    "add_operating_point_option",
    "add_split_options",
    "check_out_dir",
    "checked_model_config",
    "compare_on_splits",
    "cross_validate",
    "recipe_main",
    "recipe_parser",
    "require_both_classes",
    "require_full_batches",
    "rescore",
    "score_split",
    "start_run",
    "train_once",
    "zoo_classifiers",
]
