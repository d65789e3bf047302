"""Command lines of recipes: the shared options and the error conventions.

Each recipe accepts `--data-dir` (absent = the procedural demo data),
`--out DIR` (default `runs/<recipe>-<time>`), `--epochs`, `--batch-size`,
`--seed`, `--precision` and `--jit` (`recipe_parser`), the patient-split
options where it splits patients (`add_split_options`), and decorates its
`main` with `recipe_main`, which releases the run folder's lock when `main`
ends and gives the script the command line's error conventions
(`main.command_line()`: one line on stderr, status 2 for usage errors, 1
for a full disk).
"""

import argparse
import functools
import pathlib

from gan_zoo.arguments import fraction, positive_int, seed
from gan_zoo.errors import EXIT_USAGE, UsageError, exit_status
from gan_zoo.experiments.run_folder import _OPEN_RUNS
from gan_zoo.options import PRECISIONS


class _RecipeParser(argparse.ArgumentParser):
    """Records each option's default in the parsed namespace (`_defaults`), so
    that reopening a run folder written before an option existed compares the
    option with its default instead of refusing the folder; runs the checks
    that involve several options (`checks`: `(parser, args) -> None`, calling
    `parser.error`); creates the multi-worker strategy as soon as
    `--strategy multiworker` is parsed."""

    checks = ()

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = super().parse_known_args(args, namespace)
        parsed._defaults = {a.dest: a.default for a in self._actions if a.dest != "help"}
        for check in self.checks:
            check(self, parsed)
        if getattr(parsed, "strategy", None) == "multiworker":
            # Collective ops must be configured before anything touches
            # TensorFlow's context, and parsing is a recipe's first step.
            from gan_zoo.training.distribute import get_strategy

            get_strategy("multiworker")
        return parsed, extras


def recipe_parser(name, description, *, epochs, batch_size):
    """An argparse parser with the shared options (paper defaults given).

    Every number is checked by its argparse type, so that a bad value stops
    the recipe before any data or model is loaded.

    Args:
        name: the recipe's name (its file name without `.py`).
        description: the parser's description (the recipe's docstring).
        epochs: default of `--epochs` (None: the recipe chooses later).
        batch_size: default of `--batch-size`.
    """
    parser = _RecipeParser(
        prog=f"python recipes/{name}.py",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data-dir", type=pathlib.Path, default=None,
        help="dataset folder; absent = generate and use the small procedural demo data",
    )
    parser.add_argument(
        "--out", type=pathlib.Path, default=None,
        help="run folder (default runs/<recipe>-<time>); an existing run folder is "
        "resumed; it may not be inside --data-dir",
    )
    parser.add_argument("--epochs", type=positive_int, default=epochs, help="training epochs")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help="global batch size")
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of data order, init and noise (0..2**32-1)")
    parser.add_argument(
        "--precision", default="float32", choices=PRECISIONS,
        help="Keras dtype policy (bfloat16 is faster on CPUs with AVX512_BF16 and on GPUs)",
    )
    parser.add_argument(
        "--jit", action="store_true",
        help="XLA-compile the train step (often faster on GPU, slower on CPU)",
    )
    return parser


def add_split_options(parser, schemes, default):
    """Adds the patient-split options: `--split`, `--split-seed`, k-fold and tuning.

    `--split` takes one of `schemes` (the recipe's single splits, e.g.
    "random") or "kfold"; `--folds`, `--validation-share`, `--only-folds`
    and `--tune` shape k-fold cross-validation (`PatientSplitter.kfold`),
    and are checked together when the command line is parsed.

    Args:
        parser: a `recipe_parser`.
        schemes: the recipe's single-split schemes.
        default: the default of `--split`.
    """
    parser.add_argument("--split", choices=(*schemes, "kfold"), default=default,
                        help="patient split (see the description)")
    parser.add_argument("--split-seed", type=seed, default=0, help="seed of the patient split")
    parser.add_argument("--folds", type=positive_int, default=5, help="folds of --split kfold (at least 2)")
    parser.add_argument("--validation-share", type=fraction, default=0.15,
                        help="share of the training patients held out as validation patients, on "
                        "which thresholds are chosen")
    parser.add_argument("--only-folds", type=fold_indices, default=None, metavar="I,J,...",
                        help="run only these folds of --split kfold (0-based), e.g. to screen "
                        "options on one fold or to spread the folds over machines")
    parser.add_argument("--tune", action="store_true",
                        help="choose options without reading the test patients (--split kfold): "
                        "each fold's test patients are left out, its validation patients are "
                        "scored, and thresholds come from a second --validation-share carve-out "
                        "of its training patients")
    parser.checks = (*parser.checks, _check_split_options)


def _check_split_options(parser, args):
    if args.split == "kfold" and args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}")
    if not args.validation_share < 1:
        parser.error(f"--validation-share must be below 1; got {args.validation_share}")
    if args.split != "kfold" and (args.tune or args.only_folds is not None):
        parser.error("--tune and --only-folds need --split kfold")
    if args.only_folds is not None and max(args.only_folds) >= args.folds:
        parser.error(f"--only-folds: fold indices run from 0 to {args.folds - 1} (--folds "
                     f"{args.folds}); got {max(args.only_folds)}")


def checked_model_config(name, preset, set_pairs, options, set_by_recipe=None):
    """A model's resolved config from `--preset` / `--set`, checked before any work.

    Recorded resolved in the run's options, so that resuming refuses a run
    whose preset's values changed since.

    Args:
        name: the registered model.
        preset: `--preset` (or None).
        set_pairs: the `--set KEY=VALUE` strings.
        options: values the recipe sets from its own options (win over the preset).
        set_by_recipe: `{key: the recipe's option}` for keys `--set` may not
            change (the recipe sets them; the error names its option).

    Raises:
        UsageError: an unknown preset or option, a bad value, or a key the
            recipe sets itself.
    """
    from gan_zoo.arguments import parse_overrides
    from gan_zoo.registry import load, resolve_config

    overrides = parse_overrides(set_pairs)
    for key, option in (set_by_recipe or {}).items():
        if key in overrides:
            raise UsageError(f"--set {key}: the recipe sets it; use {option}.")
    try:
        config = resolve_config(name, preset=preset, **{**options, **overrides})
        load(name, **config)  # a bad value fails here, not hours into the run
    except KeyError as error:
        raise UsageError(f"--preset: {error.args[0]}") from None
    except (TypeError, ValueError) as error:
        raise UsageError(f"--set: {error}") from None
    return config


def zoo_classifiers(text, option):
    """`{name: untrained zoo classifier}` from a comma-separated option value.

    Raises:
        UsageError: a name is not registered or not a classifier (named with `option`).
    """
    from gan_zoo.registry import get_spec, load

    classifiers = {}
    for name in filter(None, (part.strip() for part in text.split(","))):
        try:
            spec = get_spec(name)
        except KeyError as error:
            raise UsageError(f"{option}: {error.args[0]}") from None
        if spec.task != "classifier":
            raise UsageError(f"{option}: {name!r} is a {spec.task}, not a classifier.")
        classifiers[name] = load(name)
    return classifiers


def fold_indices(text):
    """argparse type: '0,2' -> (0, 2)."""
    try:
        indices = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fold indices like 0,2; got {text!r}") from None
    if min(indices) < 0:
        raise argparse.ArgumentTypeError(f"fold indices are 0 or more; got {text!r}")
    return indices


def recipe_main(main):
    """Decorates a recipe's `main(argv=None)`.

    `main(argv)` still returns the recipe's results or raises (for tests and
    notebooks), and releases the run folder's lock when it ends either way.
    `main.command_line(argv=None)` runs it as a program and returns its exit
    status: errors a user can act on end in one line on stderr, as with
    `gan-zoo` (status 2 for usage errors such as a bad option or an unusable
    `--out`, 1 for a full disk or an unwritable file, 130 for Ctrl-C).

        if __name__ == "__main__":
            sys.exit(main.command_line())

    Args:
        main: the recipe's main function.
    """
    # As recipe_parser names it, so that argparse's errors and ours match.
    prog = f"python recipes/{pathlib.Path(main.__code__.co_filename).name}"

    @functools.wraps(main)
    def wrapper(argv=None):
        return _call_and_close(main, argv, [])

    def command_line(argv=None):
        started = []  # run folders, for the hint after a write error

        def run_recipe():
            try:
                _call_and_close(main, argv, started)
            except SystemExit as exit_:  # argparse: --help, or a usage error
                code = exit_.code
                return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
            return 0

        def resume_hint():
            where = f" in {started[0]}" if started else ""
            return f"Rerun the same command to resume{where} from the last finished epoch."

        return exit_status(run_recipe, prog=prog, on_write_error=resume_hint)

    wrapper.command_line = command_line
    return wrapper


def _call_and_close(main, argv, started):
    """main(argv), then closes the runs it started (their folders go to `started`)."""
    before = set(_OPEN_RUNS)
    try:
        return main(argv)
    finally:
        for run in list(_OPEN_RUNS - before):
            started.append(run.directory)
            run.close()
