"""Conventions every recipe follows.

Each recipe accepts `--data-dir` (absent = the procedural demo data),
`--out DIR` (default `runs/<recipe>-<time>`), `--epochs`, `--batch-size`,
`--seed`, `--precision`, and writes into `--out`:

- `config.json`: every option plus library versions, enough to rerun;
- `metrics.json`: the final results; `metrics.jsonl`: one line per epoch;
- sample grids and plots (PNG); `tensorboard/`: a TensorBoard log;
- `backup/`: the resumable training state. Rerunning the same command with
  the same `--out` continues an interrupted run exactly where it stopped.
"""

import argparse
import json
import pathlib
import platform
import sys
import time

from gan_zoo.options import PRECISIONS

# Options that may change when a run folder is reopened: where it is, and how
# many epochs in all (so a finished run can be extended).
_RESUME_IGNORES = ("out", "epochs")


def recipe_parser(name, description, *, epochs, batch_size):
    """An argparse parser with the shared options (paper defaults given)."""
    parser = argparse.ArgumentParser(
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
        help="run folder (default runs/<recipe>-<time>); an existing run folder is resumed",
    )
    parser.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="global batch size")
    parser.add_argument("--seed", type=int, default=0, help="seed of data order, init and noise")
    parser.add_argument(
        "--precision", default="float32", choices=PRECISIONS,
        help="Keras dtype policy (bfloat16 is faster on CPUs with AVX512_BF16 and on GPUs)",
    )
    parser.add_argument(
        "--jit", action="store_true",
        help="XLA-compile the train step (often faster on GPU, slower on CPU)",
    )
    return parser


def _versions():
    import keras
    import numpy
    import tensorflow

    import gan_zoo

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "gan_zoo": gan_zoo.__version__,
        "platform": platform.platform(),
    }


def _jsonable(options):
    # A JSON round trip, so options compare equal to a reloaded config.json.
    return json.loads(json.dumps(options, default=str))


class Run:
    """The output folder of one recipe run.

    Args:
        directory: the run folder.
        options: the recipe's options (written to `config.json`).
    """

    def __init__(self, directory, options):
        self.directory = pathlib.Path(directory)
        self.options = _jsonable(options)

    def path(self, *parts):
        path = self.directory.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, name, data):
        path = self.path(name)
        path.write_text(json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n")
        return path

    def write_metrics(self, metrics):
        return self.write_json("metrics.json", metrics)


def _default(value):
    try:
        return value.item()  # numpy scalars
    except AttributeError:
        return str(value)


def start_run(name, args, **extra_options):
    """Creates (or reopens, to resume) the run folder and applies seed and precision.

    Writes `config.json` with every option, the command line and library
    versions. Reopening a folder whose `config.json` has different options
    (other than `--epochs`, which may grow to extend a run) is refused, since
    the backup there belongs to another configuration.
    """
    import keras

    from gan_zoo.models.gan import set_precision

    options = {**vars(args), **extra_options}
    if options.get("out") is None:
        options["out"] = pathlib.Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = Run(options["out"], options)
    config_path = run.directory / "config.json"
    if config_path.exists():
        try:
            previous = json.loads(config_path.read_text())["options"]
        except (json.JSONDecodeError, KeyError) as error:
            raise ValueError(
                f"{config_path} is not a readable run config ({error!r}); "
                "use another --out, or delete the folder to start over."
            ) from error
        changed = {
            k: (previous.get(k), v)
            for k, v in run.options.items()
            if k not in _RESUME_IGNORES and previous.get(k) != v
        }
        if changed:
            raise ValueError(
                f"{run.directory} holds a run with other options {changed} "
                "(old, new); use another --out to start a new run."
            )
    run.directory.mkdir(parents=True, exist_ok=True)
    run.write_json(
        "config.json",
        {
            "recipe": name,
            "command": [sys.executable, *sys.argv],
            "options": run.options,
            "versions": _versions(),
        },
    )
    keras.utils.set_random_seed(int(options.get("seed") or 0))
    set_precision(options.get("precision") or "float32")
    return run
