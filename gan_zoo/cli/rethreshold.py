"""`gan-zoo rethreshold`: a finished run's classifiers at another operating point."""

import json
import pathlib

from gan_zoo.arguments import HelpFormatter
from gan_zoo.errors import UsageError
from gan_zoo.experiments.evaluation import operating_point_argument


def add_parser(commands):
    """Adds `rethreshold` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "rethreshold", help="a finished run's test metrics at another operating point, without retraining",
        description="Reads every scores.npz of a finished recipe run (one split, or one per fold)\n"
        "and scores its test patients again at --operating-point, the threshold chosen\n"
        "on the same validation patients. AUROC does not change; accuracy, sensitivity,\n"
        "specificity, F1 and the threshold do. With --write, each table goes beside its\n"
        "scores.npz as table-<point>.md and metrics-<point>.json.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("run", metavar="RUN_DIR", help="the run folder of a classifying recipe")
    p.add_argument("--operating-point", required=True, type=operating_point_argument,
                   help="argmax, youden, sensitivity=X or specificity=X")
    p.add_argument("--write", action="store_true", help="write the tables beside the scores")
    p.set_defaults(handler=run)
    return p


def run(args):
    """Prints (and with --write, writes) each split's table at the operating point.

    Args:
        args: the parsed `rethreshold` options.
    """
    from gan_zoo.experiments.comparison import rescore
    from gan_zoo.metrics.tables import format_metrics_table

    directory = pathlib.Path(args.run)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a run folder.")
    found = sorted(directory.rglob("scores.npz"))
    if not found:
        raise UsageError(f"{directory} holds no scores.npz: rethreshold reads a classifying recipe's run folder.")
    point = args.operating_point
    slug = str(point).replace("=", "-")
    for path in found:
        try:
            results = rescore(path, point)
        except (KeyError, ValueError) as error:
            raise UsageError(f"{path}: not a recipe's scores file ({error}).") from None
        table = format_metrics_table(results)
        print(f"\n{path.parent.relative_to(directory) if path.parent != directory else directory}"
              f" ({point.describe()}):\n\n{table}")
        if args.write:
            path.with_name(f"table-{slug}.md").write_text(table + "\n")
            path.with_name(f"metrics-{slug}.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0
