"""Detect IDC with the semi-supervised conditional GAN (Johnson 2020) and baselines.

Trains the baseline CNNs (Cruz-Roa et al. 2014 as distributed by Janowczyk &
Madabhushi 2016, and a modern small CNN) and the semi-supervised cGAN on the
same patient split, then scores every model on the test patients with a
decision threshold chosen on validation patients (`--operating-point`). Prints the paper's Table 1
layout (rows = metrics, columns = models), writes metrics.json, every model's
per-patch scores (scores.npz), ROC curves, confusion matrices and sample grids
(one row per class).

Splits (always by patient):
- auto (default): cruz_roa when the data holds any of its listed patients
  (the real IDC release), else random (e.g. the demo data); the choice is
  printed and recorded in metrics.json.
- cruz_roa: the literature split. When its 49 test patients are absent (as in
  the Kaggle copy), its 29 validation patients become the test set and a
  seeded 15% of the remaining patients become the validation set.
- random: seeded 70/15/15 patient split.
- kfold: k-fold cross-validation over all patients (k = --folds, stratified
  by the patients' label pattern); in each fold --validation-share of the training
  patients are held out to choose thresholds (and the cGAN's validation
  AUROC), and the fold's test patients are scored once. Every model is
  trained on every fold; the table gives mean +/- std over folds, and each
  baseline is compared with the cGAN fold by fold (per-fold AUROC
  differences, a paired t-test across folds, per-fold DeLong tests). Each
  fold writes its own folder (fold0, fold1, ...); a rerun skips finished
  folds and resumes the interrupted one. --only-folds runs some folds.
  --tune chooses options on training patients only: each fold's test
  patients are not read, its validation patients are scored, and a second
  carve-out of its training patients sets the thresholds.

With --labelled-fraction F < 1 only a seeded, class-stratified fraction F of
the training patches keeps its label: the baselines train on those alone,
the cGAN uses the rest as unlabelled images for its real/fake head.

    python recipes/semi_cgan_idc.py --epochs 2
    python recipes/semi_cgan_idc.py --data-dir ../shared/data/idc --split kfold --epochs 15
    python recipes/semi_cgan_idc.py --data-dir ../shared/data/idc --split kfold --tune \
        --only-folds 0 --baselines '' --set generator_loss=feature_matching
    python recipes/semi_cgan_idc.py --data-dir ../shared/data/idc --width 1 --epochs 200
"""

import argparse
import json
import sys
import time

import numpy as np

import gan_zoo
from gan_zoo import metrics as clinical
from gan_zoo.arguments import (
    fraction,
    non_negative_int,
    parse_overrides,
    positive_float,
    positive_int,
    seed,
)
from gan_zoo.errors import UsageError
from gan_zoo.data.idc import scan_idc_for_command
from gan_zoo.data import idc
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.splits import UNLABELLED, hide_labels, split_by_group
from gan_zoo.metrics import crossval
from gan_zoo.metrics.plots import save_confusion_matrix, save_loss_curves, save_roc_curves
from gan_zoo.registry import get_spec, resolve_config
from gan_zoo.training.classify import predict_scores, train_classifier
from gan_zoo.training.distribute import STRATEGIES, get_strategy
from gan_zoo.training.loop import train_gan
from gan_zoo.experiments import Run, recipe_main, recipe_parser, start_run
from gan_zoo.experiments.evaluation import add_operating_point_option, score_split

NAME = "semi_cgan_idc"
POLICY = idc.IDC_SIZE_POLICY


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=200, batch_size=128)
    parser.add_argument("--width", type=positive_float, default=1,
                        help="the paper's width multiplier omega (1, 2 or 4)")
    parser.add_argument("--labelled-fraction", type=fraction, default=1.0,
                        help="fraction of training patches whose label is used, in (0, 1]")
    parser.add_argument("--split", choices=("auto", "cruz_roa", "random", "kfold"), default="auto",
                        help="patient split (see the description)")
    parser.add_argument("--split-seed", type=seed, default=0, help="seed of the patient split")
    add_operating_point_option(parser, "youden")
    parser.add_argument("--folds", type=positive_int, default=5,
                        help="folds of --split kfold (at least 2)")
    parser.add_argument("--validation-share", type=fraction, default=0.15,
                        help="share of each fold's training patients held out as validation "
                        "patients (--split kfold)")
    parser.add_argument("--only-folds", type=fold_indices, default=None, metavar="I,J,...",
                        help="run only these folds of --split kfold (0-based), e.g. to screen "
                        "options on one fold or to spread the folds over machines")
    parser.add_argument("--tune", action="store_true",
                        help="choose options without reading the test patients (--split kfold): "
                        "each fold's test patients are left out, its validation patients are "
                        "scored, and thresholds come from a second --validation-share carve-out "
                        "of its training patients")
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
                        help="unreadable or misnamed patches are found before training: "
                        "'raise' stops naming the first, 'skip' leaves them out "
                        "(counted in metrics.json)")
    args = parser.parse_args(argv)
    if args.split == "kfold" and args.folds < 2:
        parser.error(f"--folds must be at least 2; got {args.folds}")
    if args.split == "kfold" and not args.validation_share < 1:
        parser.error(f"--validation-share must be below 1; got {args.validation_share}")
    if args.split != "kfold" and (args.tune or args.only_folds is not None):
        parser.error("--tune and --only-folds need --split kfold")
    if args.only_folds is not None and max(args.only_folds) >= args.folds:
        parser.error(f"--only-folds: fold indices run from 0 to {args.folds - 1} (--folds "
                     f"{args.folds}); got {max(args.only_folds)}")
    return args


def fold_indices(text):
    """argparse type: '0,2' -> (0, 2)."""
    try:
        indices = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fold indices like 0,2; got {text!r}") from None
    if min(indices) < 0:
        raise argparse.ArgumentTypeError(f"fold indices are 0 or more; got {text!r}")
    return indices


def patient_split(dataset, scheme, seed):
    """{"train", "validation", "test"} -> patients, and a note on how."""
    if scheme == "auto":
        listed = idc.CRUZ_ROA_VALIDATION_PATIENTS | idc.CRUZ_ROA_TEST_PATIENTS
        scheme = "cruz_roa" if listed & set(dataset.patients) else "random"
        print(f"--split auto: using the {scheme} patient split.")
    split = idc.idc_split(dataset, scheme=scheme, seed=seed)
    if scheme == "random" or split["test"]:
        return _checked(dict(split), scheme), f"{scheme} patient split"
    patches = dataset.patches_of(split["train"])
    carved = split_by_group(
        [p.patient for p in patches], {"train": 0.85, "validation": 0.15},
        seed=seed, labels=[p.label for p in patches],
    )
    note = (
        "cruz_roa: its 49 test patients are absent, so its 29 validation patients "
        "are the test set; validation = a seeded 15% of the other patients"
    )
    carved = {"train": carved["train"], "validation": carved["validation"], "test": split["validation"]}
    return _checked(carved, scheme), note


def _checked(split, scheme):
    empty = sorted(name for name, patients in split.items() if not patients)
    if empty:
        raise ValueError(
            f"The {scheme} patient split leaves {empty} without patients for this data; "
            "use --split random (or auto)."
        )
    return split


def kfold_splits(dataset, folds, validation_share, seed, only=None, tune=False):
    """[(fold name, {"train", "validation", "test"} -> patients)] by patient.

    With `tune` the fold's test patients are dropped and its validation
    patients take their place as the scored set; a second carve-out of the
    training patients becomes the validation set (thresholds). Options are
    then chosen on training patients only.
    """

    def carve(patients):
        patches = dataset.patches_of(patients)
        carved = split_by_group(
            [p.patient for p in patches],
            {"train": 1.0 - validation_share, "validation": validation_share},
            seed=seed, labels=[p.label for p in patches],
        )
        return carved["train"], carved["validation"]

    splits = []
    for index, (train, test) in enumerate(idc.idc_kfold(dataset, k=folds, seed=seed)):
        if only is not None and index not in only:
            continue
        train, validation = carve(train)
        if tune:
            test = validation
            train, validation = carve(train)
        split = {"train": train, "validation": validation, "test": sorted(test)}
        splits.append((f"fold{index}", _checked(split, f"kfold (fold{index})")))
    return splits


def build_baselines(names):
    """{name: untrained zoo classifier} for --baselines (checked before any training)."""
    baselines = {}
    for name in names:
        try:
            spec = gan_zoo.get_spec(name)
        except KeyError as error:
            raise UsageError(f"--baselines: {error.args[0]}") from None
        if spec.task != "classifier":
            raise UsageError(f"--baselines: {name!r} is a {spec.task}, not a classifier.")
        baselines[name] = gan_zoo.load(name)
    return baselines


def check_before_training(records, labelled, baselines, args):
    """Refuses data the run cannot use, before any model trains.

    Every split needs both classes (the class head and the baselines learn
    from the labelled training patches; thresholds need both classes in the
    validation patients, AUROCs in the test patients); the cGAN and each
    baseline need at least one full batch.

    Args:
        records: {"train", "validation", "test"} -> `ImageRecord`s.
        labelled: the labelled training records.
        baselines: {name: classifier}.
        args: the parsed options.
    """
    for name, what, recs in (("training", "labelled patches", labelled),
                             ("validation", "patches", records["validation"]),
                             ("test", "patches", records["test"])):
        present = {r.label for r in recs}
        missing = [f"{label} ({idc.CLASS_NAMES[label]})" for label in (0, 1) if label not in present]
        if missing:
            raise UsageError(
                f"The {name} patients have no {what} of class {missing[0]}: training and "
                "scoring need both classes in every split (use data with both classes, "
                "another --split-seed or a larger --labelled-fraction)."
            )
    if not args.skip_gan and len(records["train"]) < args.batch_size:
        raise UsageError(
            f"The training patients have {len(records['train'])} patches, fewer than "
            f"--batch-size {args.batch_size}: not one full batch."
        )
    for name, model in baselines.items():
        batch = model.default_training()["batch_size"]
        if len(labelled) < batch:
            raise UsageError(
                f"The baseline {name} trains with batch size {batch} but there are only "
                f"{len(labelled)} labelled training patches: not one full batch (drop it "
                "from --baselines, or use more data or a larger --labelled-fraction)."
            )


def evaluate(scores, labels, point):
    """Test metrics at the operating point `point`, chosen on validation patients."""
    return score_split(point, labels, scores)


def prepare_split(dataset, split, baseline_names, args):
    """Records, labelled training records and labels of one split, checked."""
    records = {name: dataset.records(patients) for name, patients in split.items()}
    records["train"] = hide_labels(records["train"], args.labelled_fraction, seed=args.seed)
    labelled = [r for r in records["train"] if r.label != UNLABELLED]
    check_before_training(records, labelled, build_baselines(baseline_names), args)
    return records, labelled


def train_and_score(records, labelled, baseline_names, run, args):
    """Trains the baselines and the cGAN on one split; scores its test patients once.

    Writes the split's table, ROC curves and confusion matrices into `run`
    and returns {"results", "comparisons", "seconds", "patches",
    "labelled_training_patches"}.
    """
    labels = {name: np.array([r.label for r in records[name]]) for name in ("validation", "test")}
    weights = idc.class_weights([r.label for r in labelled]) if args.class_weights else None
    results, scores, timings = {}, {}, {}

    # Baselines on the labelled training patches.
    for name, model in build_baselines(baseline_names).items():
        tic = time.perf_counter()
        epochs = args.baseline_epochs or model.default_training()["epochs"]
        train_classifier(
            model, labelled, epochs=epochs, batch_size=model.default_training()["batch_size"],
            seed=args.seed, size_policy=POLICY, class_weight=weights,
            backup_dir=run.path(f"backup-{name}"),
        )
        model.save(run.path(f"{name}.keras"))  # before scoring: nothing trained is lost
        scores[name] = {s: predict_scores(model, records[s], size_policy=POLICY) for s in labels}
        results[name] = {**evaluate(scores[name], labels, args.operating_point), "epochs": epochs}
        timings[name] = time.perf_counter() - tic

    # The semi-supervised cGAN.
    comparisons = {}
    if not args.skip_gan:
        tic = time.perf_counter()
        strategy = get_strategy(args.strategy)
        with strategy.scope():
            gan = gan_zoo.load(
                "semi_cgan", width=args.width, seed=args.seed,
                class_weights=None if weights is None else [weights[0], weights[1]],
                preset=args.preset, **parse_overrides(args.set),
            )
            gan.compile(jit_compile=args.jit)

        # `classifier()` is taken at each use, never once before training:
        # with an EMA of D it holds the average as of the call.
        def validation_auroc(model, epoch):
            val = predict_scores(gan.classifier(), records["validation"], size_policy=POLICY)
            return {"validation_auroc": clinical.binary_metrics(labels["validation"], val)["auroc"]}

        # The model's plan: flips, and the rate constant for the first half
        # of the epochs, then decaying linearly (the same plan `gan-zoo
        # train semi_cgan` uses). Grids one row per class, 3x upscaled.
        epoch_logs = train_gan(
            gan, records["train"], run, epochs=args.epochs, batch_size=args.batch_size,
            seed=args.seed, size_policy=POLICY, sample_upscale=3,
            evaluate=validation_auroc if args.eval_every else None,
            evaluate_every=args.eval_every or 1,
        )
        gan.save(run.path("semi_cgan.keras"))  # before scoring: nothing trained is lost
        classifier = gan.classifier()
        name = cgan_name(args)
        scores[name] = {s: predict_scores(classifier, records[s], size_policy=POLICY) for s in labels}
        results[name] = {**evaluate(scores[name], labels, args.operating_point), "epochs": len(epoch_logs)}
        timings[name] = time.perf_counter() - tic
        save_loss_curves(
            run.path("losses.png"),
            {k: [e[k] for e in epoch_logs] for k in ("d_loss", "g_loss", "class_loss")},
        )
        # Is the cGAN's AUROC different from each baseline's (same test patches)?
        comparisons = {
            other: clinical.delong_paired_test(labels["test"], scores[name]["test"], scores[other]["test"])
            for other in results if other != name
        }

    save_scores(run.path("scores.npz"), records, labels, scores)
    (run.directory / "table.md").write_text(clinical.format_metrics_table(results) + "\n")
    save_roc_curves(
        run.path("roc_test.png"), {n: (labels["test"], s["test"]) for n, s in scores.items()}
    )
    for model_name, result in results.items():
        predicted = (scores[model_name]["test"] >= result["threshold"]).astype(int)
        save_confusion_matrix(run.path(f"confusion_{model_name}.png"), labels["test"], predicted)
    return {
        "results": results, "comparisons": comparisons, "seconds": timings,
        "patches": {k: len(v) for k, v in records.items()},
        "labelled_training_patches": len(labelled),
    }


def save_scores(path, records, labels, scores):
    """Every model's per-patch scores, with labels, patients and files.

    Keys `<model>.<split>`, `labels.<split>`, `patients.<split>` and
    `paths.<split>` for the validation and test splits, so that runs can be
    compared on the same patches afterwards (e.g. a paired DeLong test of
    two cGAN settings: `gan_zoo.metrics.delong_paired_test`).
    """
    arrays = {}
    for split in labels:
        arrays[f"labels.{split}"] = labels[split]
        arrays[f"patients.{split}"] = np.array([str(r.group) for r in records[split]])
        arrays[f"paths.{split}"] = np.array([str(r.path) for r in records[split]])
        for model_name, by_split in scores.items():
            arrays[f"{model_name}.{split}"] = np.asarray(by_split[split], np.float32)
    np.savez_compressed(path, **arrays)


def cgan_name(args):
    return f"semi_cgan_w{args.width:g}" + (f"_{args.preset}" if args.preset else "")


def cross_validation_report(folds, args):
    """Mean +/- std over folds, and the cGAN against each baseline fold by fold."""
    models = list(folds[0]["results"])
    per_model = {m: [fold["results"][m] for fold in folds] for m in models}
    summary = crossval.summarise_folds(per_model)
    paired = {}
    name = cgan_name(args)
    if name in per_model:
        for other in models:
            if other == name:
                continue
            comparison = crossval.paired_fold_comparison(per_model[name], per_model[other], "auroc")
            comparison["delong_p_per_fold"] = [fold["comparisons"][other]["p_value"] for fold in folds]
            paired[f"{name} - {other}"] = comparison
    return summary, paired


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    cgan_config = None
    if not args.skip_gan:  # the cGAN's options, checked before anything is written
        overrides = parse_overrides(args.set)
        own = sorted({"width", "seed", "class_weights"} & set(overrides))
        if own:  # the recipe sets these itself (class weights per fold, from --class-weights)
            flag = "--class-weights" if own[0] == "class_weights" else f"--{own[0]}"
            raise UsageError(f"--set {own[0]}: the recipe sets it; use {flag}.")
        options = {"width": args.width, "seed": args.seed, **overrides}
        try:
            # Recorded resolved, so resuming refuses a preset whose values changed since.
            cgan_config = resolve_config("semi_cgan", preset=args.preset, **options)
            gan_zoo.load("semi_cgan", **cgan_config)
        except KeyError as error:
            raise UsageError(f"--preset: {error.args[0]}") from None
        except (TypeError, ValueError) as error:
            raise UsageError(f"--set: {error}") from None
    # A model option added since a run was recorded counts as its paper default.
    paper_defaults = {"cgan_config": dict(get_spec("semi_cgan").config)}
    run = start_run(NAME, args, option_defaults=paper_defaults, cgan_config=cgan_config)
    started = time.perf_counter()

    # Data, split by patient; every split checked before any training.
    data_dir = args.data_dir or demo_dir("histology")
    dataset = scan_idc_for_command(data_dir, args.on_error)
    print(dataset.summary())
    baseline_names = list(filter(None, args.baselines.split(",")))
    build_baselines(baseline_names)
    if args.split == "kfold":
        splits = kfold_splits(dataset, args.folds, args.validation_share, args.split_seed,
                              only=args.only_folds, tune=args.tune)
        split_note = (f"{args.folds}-fold cross-validation by patient; validation = "
                      f"{args.validation_share:g} of each fold's training patients")
        if args.only_folds is not None:
            split_note += f"; folds run: {', '.join(name for name, _ in splits)}"
        if args.tune:
            split_note += ("; TUNING: the folds' test patients were not read, the scored "
                           f"patients are each fold's validation patients and thresholds come "
                           f"from a further {args.validation_share:g} of its training patients")
    else:
        split, split_note = patient_split(dataset, args.split, args.split_seed)
        splits = [(None, split)]
    prepared = [(fold, split, *prepare_split(dataset, split, baseline_names, args))
                for fold, split in splits]
    data = {
        "source": str(data_dir),
        "labelled_fraction": args.labelled_fraction,
        "off_size_patches_padded": len(dataset.off_size),
        "skipped_files": len(dataset.skipped),
        "skipped_examples": [f"{path}: {reason}" for path, reason in dataset.skipped[:20]],
    }

    if args.split != "kfold":
        (_, split, records, labelled), = prepared
        outcome = train_and_score(records, labelled, baseline_names, run, args)
        print(f"\nTest patients ({split_note}); {args.operating_point.describe()}:\n")
        print((run.directory / "table.md").read_text())
        run.write_metrics({
            "test_metrics": outcome["results"],
            "delong_vs_cgan": outcome["comparisons"],
            "seconds": outcome["seconds"],
            "wall_seconds": time.perf_counter() - started,
            "split": split_note,
            "data": {**data, "patients": {k: len(v) for k, v in split.items()},
                     "patches": outcome["patches"],
                     "labelled_training_patches": outcome["labelled_training_patches"]},
        })
        print(f"\nRun folder: {run.directory}")
        return outcome["results"]

    folds = []
    for fold, split, records, labelled in prepared:
        fold_run = Run(run.path(fold), run.options)
        done = fold_run.path("fold.json")
        if done.exists():  # finished before an interruption
            folds.append(json.loads(done.read_text()))
            print(f"{fold}: done (resumed from {done})")
            continue
        print(f"\n{fold}: {len(split['train'])} training / {len(split['validation'])} validation / "
              f"{len(split['test'])} {'scored validation' if args.tune else 'test'} patients",
              flush=True)
        outcome = train_and_score(records, labelled, baseline_names, fold_run, args)
        outcome["patients"] = {k: sorted(v) for k, v in split.items()}
        fold_run.write_json("fold.json", outcome)
        folds.append(json.loads(done.read_text()))
    summary, paired = cross_validation_report(folds, args)
    table = crossval.format_cv_table(summary)
    scored = "Validation patients (tuning)" if args.tune else "Test patients"
    print(f"\n{scored} of every fold ({split_note}); {args.operating_point.describe()} "
          "of each fold:\n")
    print(table)
    for pair, comparison in paired.items():
        print(f"{pair}: AUROC difference {comparison['mean']:+.4f} +/- {comparison['std']:.4f} "
              f"over folds (wins {comparison['a_wins']}/{len(folds)}; paired t-test p = "
              f"{comparison['p_value']:.3g})")
    (run.directory / "table.md").write_text(table + "\n")
    run.write_metrics({
        "cross_validation": summary,
        "paired_vs_cgan": paired,
        "folds": [{k: fold[k] for k in ("results", "seconds", "patches", "patients")} for fold in folds],
        "wall_seconds": time.perf_counter() - started,
        "split": split_note,
        "tuning": args.tune,
        "data": data,
    })
    print(f"\nRun folder: {run.directory}")
    return summary


if __name__ == "__main__":
    sys.exit(main.command_line())
