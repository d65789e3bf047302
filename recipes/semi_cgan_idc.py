"""Detect IDC with the semi-supervised conditional GAN (Johnson 2020) and baselines.

Trains the baseline CNNs (Cruz-Roa et al. 2014 as distributed by Janowczyk &
Madabhushi 2016, and a modern small CNN) and the semi-supervised cGAN on the
same patient split, and scores every model on the test patients once, at a
threshold chosen on validation patients (`--operating-point`). Prints the
paper's Table 1 layout, writes metrics.json, per-patch scores (scores.npz),
ROC curves, confusion matrices and sample grids (one row per class).

Splits (by patient but for johnson): auto (default) is cruz_roa when the data holds
any of its listed patients (the real IDC release), else random (the demo
data). cruz_roa is the literature split; when its 49 test patients are
absent (the Kaggle copy) its 29 validation patients are the test set and
--validation-share of the others the validation set. random is a seeded
70/15/15 split. johnson is the paper's own protocol, 20% of the PATCHES held
out (one patient's patches on both sides: optimistic, as printed and recorded).
kfold cross-validates over all patients (--folds, stratified
by label pattern): every model trains on every fold, the table gives mean
+/- std over folds, and the cGAN is compared with each baseline fold by fold
(AUROC differences, paired t-test, per-fold DeLong). Each fold has its own
folder; a rerun skips finished folds and resumes the interrupted one.
--only-folds runs some folds; --tune scores each fold's validation patients
and never reads its test patients.

--table-1 reproduces Johnson's Table 1 in one command: the cGAN at omega = 1,
2 and 4 (each in its own folder) and the baselines on the same split, the
measured values printed beside the paper's (table_1_beside_paper.md); add
--split johnson for the paper's own patch-level protocol.

With --labelled-fraction F < 1 only a seeded, class-stratified fraction F of
the training patches keeps its label: the baselines train on those alone,
the cGAN uses the rest as unlabelled images for its real/fake head.

    python recipes/semi_cgan_idc.py --epochs 2
    python recipes/semi_cgan_idc.py --data-dir ../shared/data/idc --table-1 --split johnson
    python recipes/semi_cgan_idc.py --data-dir ../shared/data/idc --split kfold --epochs 15
    python recipes/semi_cgan_idc.py --data-dir ../shared/data/idc --split kfold --tune \
        --only-folds 0 --baselines '' --set generator_loss=feature_matching
"""

import sys

import gan_zoo
from gan_zoo.arguments import fraction, non_negative_int, positive_float, positive_int
from gan_zoo.data import idc
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.splits import UNLABELLED, hide_labels
from gan_zoo.errors import UsageError
from gan_zoo.experiments import (PatientSplitter, Report, Run, Units, add_operating_point_option, add_split_options,
                                 checked_model_config, compare_on_splits, Comparison, recipe_main, recipe_parser,
                                 require_both_classes, require_full_batches, start_run, zoo_classifiers)
from gan_zoo.training.classify import predict_scores, train_classifier
from gan_zoo.training.distribute import STRATEGIES
from gan_zoo.training.semi_cgan_study import beside_paper, cgan_name, train_cgan

NAME = "semi_cgan_idc"
POLICY = idc.IDC_SIZE_POLICY


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=200, batch_size=128)
    parser.add_argument("--width", type=positive_float, default=1,
                        help="the paper's width multiplier omega (1, 2 or 4)")
    parser.add_argument("--table-1", nargs="?", const=(1.0, 2.0, 4.0), default=None, metavar="WIDTHS",
                        type=lambda text: tuple(positive_float(w) for w in text.split(",")),
                        help="Johnson's Table 1: the cGAN at omega = 1, 2 and 4 (or the comma-separated WIDTHS, "
                        "each in its own folder) beside the baselines on the same split and the paper's values")
    parser.add_argument("--labelled-fraction", type=fraction, default=1.0,
                        help="fraction of training patches whose label is used, in (0, 1]")
    add_split_options(parser, ("auto", "cruz_roa", "random", "johnson"), "auto")
    add_operating_point_option(parser, "argmax")  # the paper states none
    parser.add_argument("--baselines", default="cruz_roa_cnn,small_cnn",
                        help="comma-separated zoo classifiers to compare ('' for none)")
    parser.add_argument("--baseline-epochs", type=positive_int, default=None,
                        help="epochs of every baseline (default: each model's own default)")
    parser.add_argument("--skip-gan", action="store_true", help="train only the baselines")
    parser.add_argument("--preset", default=None,
                        help="a registered semi_cgan preset (see `gan-zoo list --verbose`), "
                        "e.g. idc_cv; --set values win over it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a semi_cgan option (repeatable), e.g. --set generator_loss=feature_matching "
                        "--set real_augmentation=rot90,stain (see `gan-zoo list --verbose`)")
    parser.add_argument("--class-weights", action="store_true",
                        help="weight the class losses by inverse class frequency")
    parser.add_argument("--eval-every", type=non_negative_int, default=5,
                        help="epochs between validation-AUROC checks of the cGAN (0: never)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                        help="unreadable or misnamed patches are found before training: 'raise' "
                        "stops naming the first, 'skip' leaves them out (counted in metrics.json)")
    args = parser.parse_args(argv)
    if args.table_1 and args.width != 1:
        parser.error("--table-1 trains omega = 1, 2 and 4; leave out --width")
    args.widths = args.table_1 or (args.width,)
    return args


def make_splits(dataset, args):
    """The run's patient splits (`--split`), each with patients in every part."""
    splitter = PatientSplitter(seed=args.split_seed, validation_share=args.validation_share)
    if args.split == "kfold":
        return splitter.kfold(dataset.records(), args.folds, only=args.only_folds, tune=args.tune)
    assignment, note = idc.cruz_roa_assignment(dataset.patients)
    scheme = args.split if args.split != "auto" else "random" if assignment is None else "cruz_roa"
    if args.split == "auto":
        print(f"--split auto: using the {scheme} patient split.")
    if scheme == "random":
        return [splitter.random(dataset.records())]
    if scheme == "johnson":  # the paper's own protocol, by patch: reproduce it, never claim with it
        return [splitter.by_image(dataset.records(), 0.2, "Johnson 2020's 80/20 held-out patches")]
    if assignment is None:
        raise UsageError(f"--split cruz_roa: {note} in {dataset.root}; use --split random (or auto).")
    return [splitter.fixed(dataset.records(), assignment, note)]


def labelled_training(split, baselines, args):
    """The training records whose labels are kept, after checking the split can be used."""
    train = hide_labels(split["train"], args.labelled_fraction, seed=args.seed)
    labelled = [r for r in train if r.label != UNLABELLED]
    require_both_classes({"labelled training": [r.label for r in labelled],
                          "validation": [r.label for r in split["validation"]],
                          "test": [r.label for r in split["test"]]},
                         split.name, "another --split-seed or a larger --labelled-fraction", idc.CLASS_NAMES)
    needs = {f"The baseline {n}": (m.default_training()["batch_size"], len(labelled)) for n, m in baselines.items()}
    if not args.skip_gan:
        needs["The cGAN (--batch-size)"] = (args.batch_size, len(train))
    require_full_batches(needs, split.name)
    return train, labelled


def train_and_score(split, run, args):
    """Trains the baselines and the cGAN on one split and scores it once (JSON outcome)."""
    train, labelled = labelled_training(split, {}, args)
    weights = idc.class_weights([r.label for r in labelled]) if args.class_weights else None
    comparison = Comparison(split, args.operating_point)

    def scores(model):
        return {part: predict_scores(model, split[part], size_policy=POLICY) for part in ("validation", "test")}

    for name, model in zoo_classifiers(args.baselines, "--baselines").items():
        epochs = args.baseline_epochs or model.default_training()["epochs"]
        train_classifier(model, labelled, epochs=epochs, batch_size=model.default_training()["batch_size"],
                         seed=args.seed, size_policy=POLICY, class_weight=weights,
                         backup_dir=run.path(f"backup-{name}"))
        run.save_model(model, f"{name}.keras")  # before scoring: nothing trained is lost
        comparison.add(name, scores(model), epochs=epochs)

    for width in () if args.skip_gan else args.widths:  # one width: the run's folder, as before
        gan_run = run if len(args.widths) == 1 else Run(run.path(cgan_name(width)), run.options)
        config = {**args.cgan_config, "width": width, "class_weights": weights and [weights[0], weights[1]]}
        train_cgan(config, train, split, gan_run, comparison, preset=args.preset, strategy=args.strategy,
                   jit=args.jit, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                   eval_every=args.eval_every, size_policy=POLICY)
    comparison.save(run)
    return {**comparison.outcome(reference=reference(args)), "labelled_training_patches": len(labelled)}


def reference(args):
    return cgan_name(args.widths[0], args.preset)


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    # The cGAN's options, checked before anything is written; recorded resolved,
    # so resuming refuses a preset whose values changed since.
    args.cgan_config = None if args.skip_gan else checked_model_config(
        "semi_cgan", args.preset, args.set, {"width": args.width, "seed": args.seed},
        set_by_recipe={"width": "--width", "seed": "--seed", "class_weights": "--class-weights"})
    baselines = zoo_classifiers(args.baselines, "--baselines")
    run = start_run(NAME, args, option_defaults={"cgan_config": dict(gan_zoo.get_spec("semi_cgan").config)},
                    cgan_config=args.cgan_config)
    data_dir = args.data_dir or demo_dir("histology")
    dataset = idc.scan_idc_for_command(data_dir, args.on_error)
    print(dataset.summary())
    splits = make_splits(dataset, args)
    for split in splits:  # every split checked before any training
        labelled_training(split, baselines, args)
    data = {"source": str(data_dir), "labelled_fraction": args.labelled_fraction,
            "off_size_patches_padded": len(dataset.off_size), "skipped_files": len(dataset.skipped),
            "skipped_examples": [f"{path}: {reason}" for path, reason in dataset.skipped[:20]],
            "splits": [split.summary() for split in splits]}
    metrics = compare_on_splits(splits, lambda split, run: train_and_score(split, run, args),
                                report=Report(run, Units(run)), reference=reference(args), data=data,
                                describe=args.operating_point.describe())
    table = beside_paper(metrics.get("test_metrics") or metrics["cross_validation"], note=metrics["split"])
    if table and run.chief:
        run.path("table_1_beside_paper.md").write_text(table + "\n")
        print(f"\nBeside Johnson 2020's Table 1 (percent):\n\n{table}")
    print(f"\nRun folder: {run.directory}")
    return metrics.get("test_metrics") or metrics["cross_validation"]


if __name__ == "__main__":
    sys.exit(main.command_line())
