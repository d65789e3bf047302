"""DiaGRAM on CBIS-DDSM, the no-GAN ablation and a plain CNN, then transfer (Shams et al. 2018).

Source (CBIS-DDSM, PNG or TCIA layout): ROI patches and whole images of
the training patients train three models with the same budget (epochs of
whole images, batch, optimizer, flips):

- diagram: the multi-task GAN (G, F, D with the real/fake unit, E);
- no_gan: the paper's ablation (Fig. 3): F, D without the real/fake unit, E;
- plain_cnn: F + E alone, trained on whole images only (L_i): the same
  network as DiaGRAM's classification path, without patches or GAN.

Evaluation (always by patient): `--split kfold` (default) is k-fold
cross-validation over patients (5 folds); `--split official` trains on
CBIS-DDSM's `Mass-Training_*` images and tests on `Mass-Test_*`. In each
fold 15% of the training patients are held out as validation patients: the
accuracy threshold (`--operating-point`, default Youden's J) is chosen on
them, the test patients are scored once. AUROC and accuracy are reported as
mean +/- std over folds (no spread for the official split's one fold),
with ROC curves of the pooled out-of-fold scores (the paper's Fig. 2) and a
bar chart of the AUCs (Fig. 3).

Transfer (Sec. 2.4): each model is trained once more on all source
patients (less 15% validation), and its F + E classification path is
fine-tuned on the target (`--target-dir`: INbreast or mini-MIAS, detected,
or `--target-format`) for `--fine-tune-epochs` (20) in k-fold CV by target
patient. `--test-dir` scores these final source models on a separate folder
of the source's format. The summary follows the paper's Table 1 rows.

Without arguments the recipe runs on the procedural demo mammograms (a
source and a differently seeded target) with small images and few epochs,
in a few minutes:

    python recipes/diagram_ddsm_to_inbreast.py
    python recipes/diagram_ddsm_to_inbreast.py --source-dir ../shared/data/cbis_ddsm_mass \\
        --target-dir ../shared/data/mini_mias --image-size 128 --width 0.25 --epochs 6

Resume: every finished training (fold x model) stores its scores in the run
folder; rerunning the same command skips them and continues with the next.
"""

import sys
import time

import keras
import numpy as np

from gan_zoo import metrics as clinical
from gan_zoo.arguments import fraction, positive_float, positive_int, seed
from gan_zoo.errors import UsageError
from gan_zoo.data.demo import demo_dir, make_demo_mammograms
from gan_zoo.data.mammography import (
    FORMATS,
    kfold_by_patient,
    label_counts,
    official_split,
    patients,
    scan_mammograms,
    split_by_patient,
)
from gan_zoo.data.mammography.arrays import prepare_mammograms
from gan_zoo.data.mammography.pixels import check_decodable
from gan_zoo.data.mammography.streams import diagram_streams, float_streams
from gan_zoo.metrics.plots import save_roc_curves
from gan_zoo.models.diagram import DiaGRAM
from gan_zoo.registry import get_spec
from gan_zoo.experiments import recipe_main, recipe_parser, start_run
from gan_zoo.experiments.evaluation import add_operating_point_option, score_split, summarise_folds
from gan_zoo.experiments.units import Units

NAME = "diagram_ddsm_to_inbreast"
MODELS = ("diagram", "no_gan", "plain_cnn")
PAPER_ROWS = (  # Table 1 of Shams et al. 2018 (accuracy, AUC in %)
    ("DiaGRAM (paper)", "DDSM", "89 +/- 3.4", "88.4 +/- 2.9"),
    ("DiaGRAM (paper)", "INbreast", "93.5 +/- 2.9", "92.5 +/- 2.4"),
    ("DiaGRAM without GAN (paper, Fig. 3)", "DDSM", "n/a", "85.5"),
)
# Demo defaults: small images and widths, so the demo takes minutes on a CPU.
DEMO = {"image_size": 64, "width": 0.25, "epochs": 30, "folds": 3, "patch_copies": 4,
        "batch_size": 8}
# Defaults on real data: the paper's 5 folds and 32 px patches; 256 px whole
# images, full widths, 30 epochs and batch 16 are documented choices.
REAL = {"image_size": 256, "width": 1.0, "epochs": 30, "folds": 5, "patch_copies": 8,
        "batch_size": 16}


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=None, batch_size=None)
    parser.add_argument("--source-dir", type=str, default=None,
                        help="CBIS-DDSM folder (PNG layout or TCIA release); absent = demo data")
    parser.add_argument("--target-dir", type=str, default=None,
                        help="INbreast or mini-MIAS folder; absent = a demo target (with the demo "
                             "source) or no transfer")
    parser.add_argument("--target-format", choices=FORMATS, default="auto")
    parser.add_argument("--mias-task", choices=("malignant", "abnormal", "benign_malignant"),
                        default="malignant", help="label of mini-MIAS images")
    parser.add_argument("--test-dir", type=str, default=None,
                        help="a separate folder of the source's format, scored by the final models")
    parser.add_argument("--split", choices=("kfold", "official"), default="kfold")
    parser.add_argument("--folds", type=positive_int, default=None, help="folds (default 5; demo 3)")
    parser.add_argument("--split-seed", type=seed, default=0)
    parser.add_argument("--validation-fraction", type=fraction, default=0.15,
                        help="share of each fold's training patients held out to choose thresholds")
    add_operating_point_option(parser, "youden")
    parser.add_argument("--models", default=",".join(MODELS), help=f"subset of {MODELS}")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help="whole-image side (default 256; demo 64); a multiple of 16")
    parser.add_argument("--patch-size", type=positive_int, default=32)
    parser.add_argument("--patch-copies", type=positive_int, default=None,
                        help="patches per ROI: the crop + random rotations/mirrorings (default 8)")
    parser.add_argument("--width", type=positive_float, default=None,
                        help="multiplier of every network width (default 1; demo 0.25)")
    parser.add_argument("--k", type=positive_int, default=1, help="Algorithm 1's k")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-4)
    parser.add_argument("--fine-tune-epochs", type=positive_int, default=20)
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        if args.source_dir is not None:
            parser.error("give --source-dir or --data-dir (the same option), not both")
        args.source_dir = str(args.data_dir)
    demo = args.source_dir is None
    for key, value in DEMO.items():
        if getattr(args, key) is None:
            setattr(args, key, value if demo else REAL[key])
    unknown = sorted(set(args.models.split(",")) - set(MODELS))
    if unknown or not args.models:
        parser.error(f"--models: unknown {unknown}; choose from {MODELS}")
    if args.image_size % 16 or args.patch_size % 16:
        parser.error("--image-size and --patch-size must be multiples of 16")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    return args


def model_config(args):
    """DiaGRAM's registered config with the recipe's sizes and widths."""
    config = dict(get_spec("diagram").config)

    def scale(widths):
        return [max(1, int(round(w * args.width))) for w in widths]

    config.update(
        image_size=args.image_size, patch_size=args.patch_size, k=args.k,
        learning_rate=args.learning_rate, fine_tune_epochs=args.fine_tune_epochs, seed=args.seed,
        feature_filters=scale(config["feature_filters"]),
        extended_filters=scale(config["extended_filters"]),
        generator_filters=scale(config["generator_filters"]),
    )
    return config


# ------------------------------------------------------------------ training
def _state(variables):
    return [np.array(v.numpy()) for v in variables]


def _restore(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)


class Trainers:
    """Each model is built and traced once; every training restores its start.

    Rebuilding a model per fold would retrace its train step each time (most
    of a small run's time); restoring the initial weights and zeroed
    optimizer states gives the same training at a fraction of the cost.
    """

    def __init__(self, config, batch_size, seed):
        self.config, self.batch_size, self.seed = config, batch_size, seed
        self._models, self._paths = {}, {}

    def _adversarial(self, kind):
        if kind not in self._models:
            keras.utils.set_random_seed(self.seed)
            model = DiaGRAM(**{**self.config, "use_gan": kind == "diagram"})
            model.compile()
            variables = list(model.variables) + [
                v for o in model.optimizers_by_group().values() for v in o.variables]
            self._models[kind] = (model, variables, _state(variables))
        return self._models[kind]

    def _path(self, kind):
        """A compiled F + E path (plain_cnn's network, or a fine-tuning copy)."""
        if kind not in self._paths:
            keras.utils.set_random_seed(self.seed)
            template = DiaGRAM(**{**self.config, "use_gan": False})
            path = template.classification_path()
            optimizer = template.fine_tune_optimizer()
            path.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            optimizer.build(path.trainable_variables)
            self._paths[kind] = (path, _state(path.variables), list(optimizer.variables),
                                 _state(optimizer.variables))
        return self._paths[kind]

    def train(self, kind, whole, patches, epochs, seed):
        """Trains `kind` from its start; returns its F + E path's weights."""
        if kind == "plain_cnn":
            return self.fit_path("plain_cnn", None, whole, epochs, seed)
        model, variables, start = self._adversarial(kind)
        _restore(variables, start)
        stream = diagram_streams(whole, patches, batch_size=self.batch_size, seed=seed, epochs=epochs)
        model.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs,
                  shuffle=False, verbose=0)
        return model.classification_path().get_weights()

    def fit_path(self, kind, weights, whole, epochs, seed):
        """Trains an F + E path on whole images (from `weights`, or from its start)."""
        path, start, optimizer_variables, optimizer_start = self._path(kind)
        _restore(path.variables, start)
        if weights is not None:
            path.set_weights(weights)
        _restore(optimizer_variables, optimizer_start)
        stream = float_streams({"images": whole}, batch_size=min(self.batch_size, len(whole)),
                               seed=seed, epochs=epochs)
        dataset = stream.dataset.map(lambda b: ((b["images"][0] + 1.0) / 2.0, b["images"][1]))
        path.fit(dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs, shuffle=False,
                 verbose=0)
        return path.get_weights()

    def patch_scores(self, kind, patches):
        """P(class 1) of [0, 1] ROI patches under D of the model `kind` just trained."""
        model = self._adversarial(kind)[0]
        return model.patch_classifier().predict(patches, batch_size=256, verbose=0)[:, 1]

    def scores(self, weights, images):
        """P(class 1) of [0, 1] whole images under path `weights`."""
        path = self._path("scoring")[0]
        path.set_weights(weights)
        return path.predict(images, batch_size=64, verbose=0)[:, 1]


# ---------------------------------------------------------------- evaluation
def evaluate(test_labels, test_scores, val_labels, val_scores, point):
    """Test metrics at `point` (0.5 where the validation patients hold one class)."""
    result = score_split(point, {"validation": val_labels, "test": test_labels},
                         {"validation": val_scores, "test": test_scores}, one_class_validation="argmax")
    return {k: result[k] for k in ("auroc", "accuracy", "balanced_accuracy", "recall", "specificity",
                                   "threshold", "operating_point", "threshold_source", "n_validation")}


def summarise(per_model_folds):
    """{model: {auroc, accuracy: mean, std (NaN for one fold), folds}}."""
    return summarise_folds(per_model_folds, ("auroc", "accuracy"))


def _pm(stats, key):
    std = stats[key]["std"]
    spread = "n/a (one fold)" if np.isnan(std) else f"{100 * std:.1f}"
    return f"{100 * stats[key]['mean']:.1f} +/- {spread}"


def table_1(rows):
    """The paper's Table 1 layout: model, end-to-end, dataset, accuracy, AUC."""
    lines = ["| Model | End-to-end | Dataset | Accuracy (%) | AUC (%) |",
             "|---|---|---|---|---|"]
    for name, dataset, stats in rows:
        lines.append(f"| {name} | yes | {dataset} | {_pm(stats, 'accuracy')} | {_pm(stats, 'auroc')} |")
    for name, dataset, accuracy, auc in PAPER_ROWS:
        lines.append(f"| {name} | yes | {dataset} | {accuracy} | {auc} |")
    return "\n".join(lines)


def save_auc_bars(path, summaries, title):
    """Fig. 3: mean CV AUC (+/- std) of each configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summaries)
    figure, axes = plt.subplots(figsize=(4.5, 3.2))
    means = [100 * summaries[n]["auroc"]["mean"] for n in names]
    stds = [100 * np.nan_to_num(summaries[n]["auroc"]["std"]) for n in names]  # no bar for one fold
    axes.bar(names, means, yerr=stds, capsize=4, color=["#4c72b0", "#dd8452", "#8c8c8c"][: len(names)])
    axes.set_ylabel("AUC (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title, fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# ---------------------------------------------------------------------- data
class DataError(UsageError, ValueError):
    """A dataset folder cannot be used as asked: one line, exit status 2."""


def scan(folder, data_format, **options):
    """`scan_mammograms` with one file of each kind decoded; errors as one-line `DataError`s."""
    try:
        found_format, records = scan_mammograms(folder, data_format, **options)
        check_decodable([r.path for r in records])
    except ValueError as error:
        raise DataError(str(error)) from None
    return found_format, records


def source_folds(records, args):
    """[(name, train records, test records)] by patient."""
    if args.split == "official":
        split = official_split(records, drop_overlap=True)
        return [("official", split["train"], split["test"])]
    folds = kfold_by_patient(records, k=args.folds, seed=args.split_seed)
    return [(f"fold{i}", train, test) for i, (train, test) in enumerate(folds)]


def carve_validation(records, args, seed):
    parts = split_by_patient(records, {"train": 1 - args.validation_fraction,
                                       "validation": args.validation_fraction}, seed=seed)
    return parts["train"], parts["validation"]


def describe(name, records):
    return (f"{name}: {len(records)} images, {len(patients(records))} patients, "
            f"labels {label_counts(records)}")


def report_unit(name, result):
    print(f"  {name}: AUROC {result['metrics']['auroc']:.3f}, accuracy "
          f"{result['metrics']['accuracy']:.3f} ({result['seconds']:.0f} s)", flush=True)


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    demo = args.source_dir is None
    source_dir = args.source_dir or str(demo_dir("mammography"))
    # Read and check every folder, and the split, before any training.
    source_format, source = scan(source_dir, "cbis_ddsm")
    try:
        folds = source_folds(source, args)
    except ValueError as error:
        raise DataError(str(error)) from None
    test_records = scan(args.test_dir, "cbis_ddsm")[1] if args.test_dir else None
    target_format, target = (scan(args.target_dir, args.target_format, mias_task=args.mias_task)
                             if args.target_dir else (None, None))
    run = start_run(NAME, args)
    started = time.perf_counter()
    target_dir = args.target_dir
    if target_dir is None and demo:
        target_dir = str(make_demo_mammograms(run.path("demo_target"), patients=12, seed=1))
        target_format, target = scan(target_dir, "cbis_ddsm")
    print(describe(f"Source ({source_dir})", source))
    if target is not None:
        print(describe(f"Target ({target_format}: {target_dir})", target))

    config = model_config(args)
    models = args.models.split(",")
    print(f"Preparing whole images ({args.image_size} px) and ROI patches ({args.patch_size} px, "
          f"{args.patch_copies} per ROI)...", flush=True)
    whole, rois = prepare_mammograms(source, image_size=args.image_size, patch_size=args.patch_size,
                                     patch_copies=args.patch_copies, seed=args.seed)
    print(f"  {len(whole)} whole images, {len(rois)} ROI patches"
          + (f"; {len(rois.skipped_rois)} ROIs outside their image skipped (e.g. {rois.skipped_rois[0]})"
             if rois.skipped_rois else ""), flush=True)
    trainers, units = Trainers(config, args.batch_size, args.seed), Units(run, report_unit)

    def train_and_score(kind, train, validation, test, test_whole, seed):
        weights = trainers.train(kind, whole.select(patients(train)), rois.select(patients(train)),
                                 args.epochs, seed)
        val = whole.select(patients(validation))
        val_scores = trainers.scores(weights, val.images)
        test_scores = trainers.scores(weights, test_whole.images)
        result = {"metrics": evaluate(test_whole.labels, test_scores, val.labels, val_scores,
                                       args.operating_point),
                  "labels": test_whole.labels.tolist(), "scores": test_scores.tolist(),
                  "test_patients": len(set(test_whole.patients))}
        test_patches = rois.select(patients(test))
        if kind != "plain_cnn" and len(set(test_patches.labels.tolist())) == 2:
            # D's class units on the test patients' ROI patches (all copies).
            scores = trainers.patch_scores(kind, test_patches.images)
            result["patch_auroc"] = clinical.binary_metrics(test_patches.labels, scores)["auroc"]
        return weights, result

    # Source: cross-validation by patient (or the official split).
    source_results = {m: [] for m in models}
    for index, (fold, train, test) in enumerate(folds):
        train, validation = carve_validation(train, args, args.split_seed + index)
        print(f"Source {fold}: {len(patients(train))} train / {len(patients(validation))} "
              f"validation / {len(patients(test))} test patients", flush=True)
        for kind in models:
            source_results[kind].append(units.get(  # units.get calls the function at once
                f"source/{fold}/{kind}", lambda kind=kind, train=train, validation=validation, test=test,
                seed=args.seed + index: train_and_score(
                    kind, train, validation, test, whole.select(patients(test)), seed)[1]))

    # Final source models (all source patients but validation): transfer and --test-dir.
    final_weights, test_dir_results = {}, {}
    if target is not None or test_records is not None:
        train, validation = carve_validation(source, args, args.split_seed + 100)
        for kind in models:
            weights_file = run.path("final", f"{kind}.weights.npz")
            if weights_file.exists():
                with np.load(weights_file) as saved:
                    final_weights[kind] = [saved[f"w{i}"] for i in range(len(saved.files))]
                continue
            print(f"Final source model {kind} on {len(patients(train))} patients...", flush=True)
            final_weights[kind] = trainers.train(kind, whole.select(patients(train)),
                                                 rois.select(patients(train)), args.epochs, args.seed)
            np.savez(weights_file, **{f"w{i}": w for i, w in enumerate(final_weights[kind])})
        if test_records is not None:
            test_whole, _ = prepare_mammograms(test_records, image_size=args.image_size,
                                               with_patches=False)
            val = whole.select(patients(validation))
            for kind in models:
                scores = trainers.scores(final_weights[kind], test_whole.images)
                test_dir_results[kind] = evaluate(test_whole.labels, scores, val.labels,
                                                  trainers.scores(final_weights[kind], val.images),
                                                  args.operating_point)

    # Target: fine-tune each final classification path, k-fold by target patient.
    target_results = {m: [] for m in models}
    if target is not None:
        target_whole, _ = prepare_mammograms(target, image_size=args.image_size, with_patches=False)
        folds = kfold_by_patient(target, k=args.folds, seed=args.split_seed)
        for index, (train, test) in enumerate(folds):
            train, validation = carve_validation(train, args, args.split_seed + index)
            print(f"Target fold{index}: {len(patients(train))} train / {len(patients(validation))} "
                  f"validation / {len(patients(test))} test patients", flush=True)
            for kind in models:
                def fine_tune(kind=kind, train=train, validation=validation, test=test, index=index):
                    tuned = trainers.fit_path("fine_tune", final_weights[kind],
                                              target_whole.select(patients(train)),
                                              args.fine_tune_epochs, args.seed + index)
                    val = target_whole.select(patients(validation))
                    test_whole = target_whole.select(patients(test))
                    scores = trainers.scores(tuned, test_whole.images)
                    return {"metrics": evaluate(test_whole.labels, scores, val.labels,
                                                trainers.scores(tuned, val.images), args.operating_point),
                            "labels": test_whole.labels.tolist(), "scores": scores.tolist()}
                target_results[kind].append(units.get(f"target/fold{index}/{kind}", fine_tune))

    # Report.
    source_name = "demo source" if demo else "CBIS-DDSM"
    target_name = "demo target" if (demo and args.target_dir is None) else target_format
    summaries = {"source": summarise({m: [u["metrics"] for u in source_results[m]] for m in models})}
    for m in models:
        patch = [u["patch_auroc"] for u in source_results[m] if "patch_auroc" in u]
        if patch:
            summaries["source"][m]["patch_auroc"] = {
                "mean": float(np.mean(patch)), "folds": patch,
                "std": float(np.std(patch, ddof=1)) if len(patch) > 1 else float("nan")}
            print(f"{m}: ROI-patch AUROC (D's class units, test patients) "
                  f"{_pm(summaries['source'][m], 'patch_auroc')} %")
    rows = [(m, source_name, summaries["source"][m]) for m in models]
    curves = {"source": {m: (np.concatenate([u["labels"] for u in source_results[m]]),
                             np.concatenate([u["scores"] for u in source_results[m]])) for m in models}}
    if target is not None:
        summaries["target"] = summarise({m: [u["metrics"] for u in target_results[m]] for m in models})
        rows += [(f"{m} (fine-tuned)", target_name, summaries["target"][m]) for m in models]
        curves["target"] = {m: (np.concatenate([u["labels"] for u in target_results[m]]),
                                np.concatenate([u["scores"] for u in target_results[m]]))
                            for m in models}
    table = table_1(rows)
    print("\n" + table)
    for part, part_curves in curves.items():
        save_roc_curves(run.path(f"roc_{part}.png"), part_curves,
                        title=f"{part}: pooled out-of-fold scores")
    save_auc_bars(run.path("auc_configurations.png"), summaries["source"],
                  f"{source_name}: {args.split} CV AUC")
    (run.directory / "table.md").write_text(table + "\n")
    wall = time.perf_counter() - started
    run.write_metrics({
        "summary": summaries, "test_dir": test_dir_results, "wall_seconds": wall,
        "unit_seconds": units.seconds(),
        "seconds": {part: {m: sum(u["seconds"] for u in res[m]) for m in models}
                    for part, res in (("source", source_results), ("target", target_results))},
        "folds": {"source": {m: [u["metrics"] for u in source_results[m]] for m in models},
                  "target": {m: [u["metrics"] for u in target_results[m]] for m in models}},
        "data": {"source": source_dir, "source_format": source_format,
                 "source_images": len(source), "source_patients": len(patients(source)),
                 "roi_patches": len(rois), "skipped_rois": list(rois.skipped_rois),
                 "target": target_dir, "target_format": target_format,
                 "target_images": None if target is None else len(target),
                 "target_patients": None if target is None else len(patients(target)),
                 "mias_task": args.mias_task if target_format == "mias" else None},
        "config": config, "split": args.split, "fold_count": args.folds, "epochs": args.epochs,
        "fine_tune_epochs": args.fine_tune_epochs,
    })
    print(f"\nWall time {wall:.0f} s. Run folder: {run.directory}")
    return summaries


if __name__ == "__main__":
    sys.exit(main.command_line())
