"""DiaGRAM on CBIS-DDSM, the no-GAN ablation and a plain CNN, then transfer (Shams et al. 2018).

Three models train on the source (CBIS-DDSM, PNG or TCIA layout) with one budget (epochs
of whole images, batch, optimizer, flips): diagram (the multi-task GAN: G, F, D with the
real/fake unit, E, on ROI patches and whole images), no_gan (the paper's ablation, Fig. 3:
D without the real/fake unit) and plain_cnn (F + E alone on whole images).

Evaluation is by patient: `--split kfold` (default) cross-validates over patients,
`--split official` tests on CBIS-DDSM's `Mass-Test_*` images. In each fold
`--validation-fraction` of the training patients choose the threshold (`--operating-point`,
default argmax: the paper states no operating point); test patients are scored once. Reported: mean +/- std over folds in the
paper's Table 1 layout, ROC curves of pooled out-of-fold scores (Fig. 2), AUC bars (Fig. 3)
and D's patch AUROC.

Transfer (Sec. 2.4): each model is trained once more on every source patient but the
validation ones (and but `--test-dir`'s), and its F + E path is fine-tuned on the target
(`--target-dir`: INbreast or mini-MIAS) for `--fine-tune-epochs` in k-fold CV by target
patient. `--test-dir` scores these final models on a separate folder of the source's format.
Without arguments it runs on demo mammograms (a source and a differently seeded target):

    python recipes/diagram_ddsm_to_inbreast.py
    python recipes/diagram_ddsm_to_inbreast.py --source-dir ../shared/data/cbis_ddsm_mass \\
        --target-dir ../shared/data/mini_mias --image-size 128 --width 0.25 --epochs 6

Resume: each finished training (part x fold x model) and final source model is kept in the
run folder; rerunning the same command reads them back.
"""

import dataclasses
import sys

from gan_zoo.arguments import fraction, positive_float, positive_int, seed
from gan_zoo.data.demo import demo_dir, make_demo_mammograms
from gan_zoo.data.mammography import FORMATS, official_split, patients
from gan_zoo.experiments import (Comparison, PatientSplitter, Report, Run, Split, Units, add_operating_point_option,
                                 cross_validate, recipe_main, recipe_parser, start_run, train_once)
from gan_zoo.experiments.comparison import format_paired
from gan_zoo.training.diagram_study import (MODELS, TransferStudy, add_patch_auroc, as_data_error, model_config,
                                            save_pooled_roc, scan_folder, threshold_rule, unit_result, write_table_1)

NAME = "diagram_ddsm_to_inbreast"
REFERENCE = "diagram"
# The demo takes minutes on a CPU. Real data: the paper's 5 folds; 256 px, widths, epochs, batch are our choices.
DEMO = {"image_size": 64, "width": 0.25, "epochs": 30, "folds": 3, "patch_copies": 4, "batch_size": 8}
REAL = {"image_size": 256, "width": 1.0, "epochs": 30, "folds": 5, "patch_copies": 8, "batch_size": 32}  # the plan's


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=None, batch_size=None)
    add = parser.add_argument
    add("--source-dir", help="CBIS-DDSM folder (PNG layout or TCIA release); absent = demo data")
    add("--target-dir", help="INbreast or mini-MIAS folder; absent = a demo target (with the demo source) or none")
    add("--target-format", choices=FORMATS, default="auto")
    add("--mias-task", choices=("malignant", "abnormal", "benign_malignant"), default="malignant",
        help="label of mini-MIAS images")
    add("--test-dir", help="a separate folder of the source's format, scored by the final models")
    add("--split", choices=("kfold", "official"), default="kfold")
    add("--folds", type=positive_int, help="folds (default 5; demo 3)")
    add("--split-seed", type=seed, default=0)
    add("--validation-fraction", type=fraction, default=0.15,
        help="share of each fold's training patients held out to choose thresholds")
    add_operating_point_option(parser, "argmax")  # the paper states none
    add("--models", default=",".join(MODELS), help=f"subset of {MODELS}")
    add("--image-size", type=positive_int, help="whole-image side, a multiple of 16 (default 256; demo 64)")
    add("--patch-size", type=positive_int, default=32)
    add("--patch-copies", type=positive_int, help="patches per ROI: the crop + random rotations/mirrorings (default 8)")
    add("--width", type=positive_float, help="multiplier of every network width (default 1; demo 0.25)")
    add("--k", type=positive_int, default=1, help="Algorithm 1's k")
    add("--learning-rate", type=positive_float, default=1e-4)
    add("--fine-tune-epochs", type=positive_int, default=20)
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        if args.source_dir is not None:
            parser.error("give --source-dir or --data-dir (the same option), not both")
        args.source_dir = str(args.data_dir)
    for key, value in DEMO.items():
        if getattr(args, key) is None:
            setattr(args, key, value if args.source_dir is None else REAL[key])
    unknown = sorted(set(args.models.split(",")) - set(MODELS))
    if unknown or not args.models:
        parser.error(f"--models: unknown {unknown}; choose from {MODELS}")
    if args.image_size % 16 or args.patch_size % 16:
        parser.error("--image-size and --patch-size must be multiples of 16")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    return args


def source_splits(splitter, records, args):
    """The source's k folds by patient, or CBIS-DDSM's official split (its test patients unseen in training)."""
    if args.split == "kfold":
        return splitter.kfold(records, args.folds)
    official = official_split(records, drop_overlap=True)
    split = splitter.fixed(records, {part: patients(official[part]) for part in ("train", "test")},
                           "CBIS-DDSM's official split (test images of training patients dropped)")
    return [dataclasses.replace(split, name="official")]


def cross_validate_models(part, splits, train_and_score, report, args):
    """Every model on every split as a unit (`<part>/<split>/<model>`), each split scored in `<part>/<split>`.

    `train_and_score(model, split, index)` gives `{"scores": {"validation", "test"}}` and extra results.
    """
    comparisons = []
    for index, split in enumerate(splits):
        print(f"{part} {split.name}: " + " / ".join(f"{len(split.patients(p))} {p}" for p in split.parts)
              + " patients", flush=True)
        point, fallback = threshold_rule(args.operating_point, [r.label for r in split["validation"]])
        comparison = Comparison(split, point)
        for kind in args.models.split(","):
            name = f"{part}/{split.name}/{kind}"
            unit = report.units.get(name, lambda k=kind, s=split, i=index: train_and_score(k, s, i))
            scores, extra = unit_result(name, unit)
            result = comparison.add(kind, scores, **fallback, **extra)
            print(f"  {kind}: AUROC {result['auroc']:.3f}, accuracy {result['accuracy']:.3f} "
                  f"({unit['seconds']:.0f} s)", flush=True)
        comparison.save(Run(report.run.path(part, split.name), report.run.options))
        comparisons.append(comparison)
    folds = [c.outcome(reference=REFERENCE) for c in comparisons]
    summary, paired = cross_validate(folds, reference=REFERENCE)
    add_patch_auroc(summary, folds)
    save_pooled_roc(report.run.path(f"roc_{part}.png"), comparisons, f"{part}: pooled out-of-fold scores")
    if paired and len(folds) > 1:
        print(format_paired(paired, len(folds)))
    return {"summary": summary, "paired": paired, "folds": folds, "note": splits[0].note}


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    demo = args.source_dir is None

    def splitter(seed):
        return PatientSplitter(patient=lambda r: r.patient_id, seed=seed, validation_share=args.validation_fraction)

    # Every given folder is read and checked, and the source split made, before any training.
    folders = {"source": scan_folder(args.source_dir or demo_dir("mammography"), "cbis_ddsm",
                                     name="demo source" if demo else "CBIS-DDSM")}
    splits = {"source": as_data_error(source_splits, splitter(args.split_seed), folders["source"].records, args)}
    if args.test_dir:
        folders["test_dir"] = scan_folder(args.test_dir, "cbis_ddsm")
    if args.target_dir:
        folders["target"] = scan_folder(args.target_dir, args.target_format, mias_task=args.mias_task)
    run = start_run(NAME, args)
    report = Report(run, Units(run))
    if demo and not args.target_dir:
        folders["target"] = scan_folder(make_demo_mammograms(run.path("demo_target"), patients=12, seed=1),
                                        "cbis_ddsm", name="demo target")
    source = folders["source"].records
    if "target" in folders:
        splits["target"] = as_data_error(splitter(args.split_seed).kfold, folders["target"].records, args.folds)
    # The final source models' validation patients are seeded apart from the folds'; with --test-dir,
    # its patients are left out of their training.
    final_splitter = splitter(args.split_seed + 100)
    final = (as_data_error(final_splitter.held_out, source, folders["test_dir"].records, "test: --test-dir")
             if args.test_dir else Split("final", dict(zip(("train", "validation"), final_splitter.carve(source)),
                                                       test=[]), "every source patient but validation ones"))

    config = model_config(width=args.width, image_size=args.image_size, patch_size=args.patch_size, k=args.k,
                          learning_rate=args.learning_rate, fine_tune_epochs=args.fine_tune_epochs, seed=args.seed)
    study = TransferStudy(config, source, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                          fine_tune_epochs=args.fine_tune_epochs, patch_copies=args.patch_copies)
    parts, final_models = {}, {}
    with report.stage("source"):
        parts["source"] = cross_validate_models("source", splits["source"], study.source_unit, report, args)
    with report.stage("final_source_models"):
        for kind in args.models.split(",") if len(folders) > 1 else ():
            model, final_models[kind] = train_once(run, f"final_{kind}", lambda kind=kind: (
                study.final_model(kind, final["train"]), {"trained_on": f"{final.name}: {final.note}"}))
            study.final[kind] = model.get_weights()
    if args.test_dir:
        test_whole = study.whole_images(folders["test_dir"].records)
        with report.stage("test_dir"):
            parts["test_dir"] = cross_validate_models("test_dir", [final], lambda kind, split, index: {
                "scores": study.held_out_scores(kind, split, test_whole)}, report, args)
    if "target" in folders:
        study.target = study.whole_images(folders["target"].records)
        with report.stage("target"):
            parts["target"] = cross_validate_models("target", splits["target"], study.target_unit, report, args)

    summaries = {p: parts[p]["summary"] for p in ("source", "target") if p in parts}
    write_table_1(run.directory, summaries, {p: folders[p].name for p in summaries},
                  f"{folders['source'].name}: {args.split} CV AUC")
    metrics = report.write({
        "cross_validation": summaries, "reference": REFERENCE,
        "paired_vs_reference": {p: parts[p]["paired"] for p in summaries},
        "folds": {p: parts[p]["folds"] for p in summaries}, "split": {p: parts[p]["note"] for p in summaries},
        "test_dir": {"test_metrics": parts["test_dir"]["folds"][0]["results"],
                     "delong_vs_reference": parts["test_dir"]["folds"][0]["comparisons"]} if args.test_dir else {},
        "operating_point": args.operating_point.describe(), "final_models": final_models, "config": config,
    }, data={**{p: folder.summary() for p, folder in folders.items()}, "roi_patches": len(study.rois),
             "skipped_rois": list(study.rois.skipped_rois), "final_source_models": final.summary(),
             "splits": {p: [split.summary() for split in part] for p, part in splits.items()}})
    print(f"\nWall time {metrics['wall_seconds']:.0f} s. Run folder: {run.directory}")
    return summaries


if __name__ == "__main__":
    sys.exit(main.command_line())
