"""Command lines of recipes: the shared options and the error conventions.

Each recipe accepts `--data-dir` (absent = the procedural demo data),
`--out DIR` (default `runs/<recipe>-<time>`), `--epochs`, `--batch-size`,
`--seed`, `--precision` and `--jit` (`recipe_parser`), and decorates its
`main` with `recipe_main`, which releases the run folder's lock when `main`
ends and gives the script the command line's error conventions
(`main.command_line()`: one line on stderr, status 2 for usage errors, 1
for a full disk).
"""

import argparse
import functools
import pathlib

from gan_zoo.arguments import positive_int, seed
from gan_zoo.errors import EXIT_USAGE, exit_status
from gan_zoo.experiments.run_folder import _OPEN_RUNS
from gan_zoo.options import PRECISIONS


class _RecipeParser(argparse.ArgumentParser):
    """Records each option's default in the parsed namespace (`_defaults`), so
    that reopening a run folder written before an option existed compares the
    option with its default instead of refusing the folder; creates the
    multi-worker strategy as soon as `--strategy multiworker` is parsed."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = super().parse_known_args(args, namespace)
        parsed._defaults = {a.dest: a.default for a in self._actions if a.dest != "help"}
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
