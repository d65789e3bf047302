"""Compare zoo classifiers on IDC patches, by patient, at one operating point.

Trains every classifier of --classifiers with its paper recipe on the same
training patients, sets each one's threshold on the validation patients
(--operating-point) and scores the test patients once. With --split kfold
every patient is tested once, the table gives mean +/- std over folds, and
the first classifier is compared with each other fold by fold. A rerun of
the same command resumes: finished folds are read back, an interrupted
classifier goes on from its last epoch.

    python recipes/compare_classifiers_idc.py --epochs 2
    python recipes/compare_classifiers_idc.py --data-dir ../shared/data/idc --split kfold
"""

import sys

from gan_zoo.data import idc
from gan_zoo.data.demo import demo_dir
from gan_zoo.experiments import (Comparison, PatientSplitter, Report, Units, add_operating_point_option,
                                 add_split_options, compare_on_splits, recipe_main, recipe_parser,
                                 require_both_classes, require_full_batches, start_run, zoo_classifiers)
from gan_zoo.training.classify import predict_scores, train_classifier

NAME = "compare_classifiers_idc"
POLICY = idc.IDC_SIZE_POLICY


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=None, batch_size=None)
    add_split_options(parser, ("random",), "random")
    add_operating_point_option(parser, "argmax")
    parser.add_argument("--classifiers", default="cruz_roa_cnn,small_cnn",
                        help="comma-separated zoo classifiers; the first is compared with the others")
    return parser.parse_args(argv)


def plan(model, args):
    """(epochs, batch size): the options, else the model's paper recipe."""
    default = model.default_training()
    return args.epochs or default["epochs"], args.batch_size or default["batch_size"]


def train_and_score(split, run, args):
    """Trains every classifier on the split's training patients; scores it once."""
    comparison = Comparison(split, args.operating_point)
    for name, model in zoo_classifiers(args.classifiers, "--classifiers").items():
        epochs, batch_size = plan(model, args)
        train_classifier(model, split["train"], epochs=epochs, batch_size=batch_size, seed=args.seed,
                         size_policy=POLICY, backup_dir=run.path(f"backup-{name}"))
        run.save_model(model, f"{name}.keras")
        scores = {part: predict_scores(model, split[part], size_policy=POLICY) for part in ("validation", "test")}
        comparison.add(name, scores, epochs=epochs)
    comparison.save(run)
    return comparison.outcome(reference=next(iter(comparison.results)))


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    classifiers = zoo_classifiers(args.classifiers, "--classifiers")  # a bad name stops here
    run = start_run(NAME, args)
    data_dir = args.data_dir or demo_dir("histology")
    dataset = idc.scan_idc_for_command(data_dir)
    splitter = PatientSplitter(seed=args.split_seed, validation_share=args.validation_share)
    if args.split == "kfold":
        splits = splitter.kfold(dataset.records(), args.folds, only=args.only_folds, tune=args.tune)
    else:
        splits = [splitter.random(dataset.records())]
    for split in splits:  # every split checked before any training
        require_both_classes({part: [r.label for r in split[part]] for part in ("validation", "test")},
                             split.name, "use another --split-seed", idc.CLASS_NAMES)
        require_full_batches({f"The classifier {name}": (plan(model, args)[1], len(split["train"]))
                              for name, model in classifiers.items()}, split.name)
    metrics = compare_on_splits(
        splits, lambda split, split_run: train_and_score(split, split_run, args),
        report=Report(run, Units(run)), reference=next(iter(classifiers)),
        data={"source": str(data_dir), "splits": [split.summary() for split in splits]},
        describe=args.operating_point.describe(),
    )
    print(f"\nRun folder: {run.directory}")
    return metrics


if __name__ == "__main__":
    sys.exit(main.command_line())
