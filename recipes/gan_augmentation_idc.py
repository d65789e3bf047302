"""GAN augmentation of an IDC classifier (Chi, Fang & Wang): DCGAN v1/v2/v3 and CycleGAN.

Patients are split 70/15/15 (seeded; --split chi: the paper's 67/33 split of
the patches, which leaks patients); `--test-dir` gives the test patients (a
seeded 15% of the others validate; those in both folders leave training). On
the training patients: SIFT bag-of-words clusters of the IDC patches and the DCGAN
variants on one of them (Fig. 5); the DCGAN variants per class (Fig. 5/6);
CycleGAN between the classes, every training patch translated with its label
flipped (Fig. 3); FID / KID of each generator in a small CNN's features
(trained on the training patients once per run). Then ResNet-18 on Real,
CycleGAN (+ Real) and DCGAN (+ Real), and a real-only control with the steps
of the "+ Real" rows; threshold on the validation patients, test patients
scored once: Table 1's layout (not the paper's data or protocol, see
docs/results/cyclegan.md) plus balanced accuracy and AUROC with DeLong CIs,
paired DeLong tests, and the nearest neighbours of Fig. 8.

The same command with the same `--out` resumes: finished classifier rows are
read back (scores kept in units/), GANs resume from their backups.
`--backbone-weights auto` takes ImageNet weights if they can be downloaded
(decided once per run), else random ones, said loudly in the output, table.md
and metrics.json (`--protocol auto` then trains every layer). The defaults
are the papers' sizes (hours on a CPU). A quick look at the demo data:

    python recipes/gan_augmentation_idc.py --epochs 1 --dcgan-variants v1,v3 --cluster-variants v1 \
        --dcgan-epochs 1 --dcgan-filters 4 --cyclegan-epochs 1 --cyclegan-filters 4 --cyclegan-batch 8 \
        --domain-epochs 1

The measured IDC run, its command and its results: docs/results/cyclegan.md.
"""

import dataclasses
import pathlib
import sys

import numpy as np

from gan_zoo.arguments import fraction, non_negative_int, positive_float, positive_int, seed
from gan_zoo.data import idc
from gan_zoo.data.demo import demo_dir
from gan_zoo.experiments import (Comparison, PatientSplitter, Report, Run, Units, add_operating_point_option,
                                 recipe_main, recipe_parser, require_both_classes, require_full_batches,
                                 start_run, train_once)
from gan_zoo.models.dcgan import VARIANTS
from gan_zoo.training import augmentation_study as study
from gan_zoo.training.distribute import STRATEGIES, get_strategy
from gan_zoo.training.downstream import load_arrays

NAME = "gan_augmentation_idc"
TABLE = ("precision", "recall", "accuracy", "balanced_accuracy", "auroc")
REFERENCE = "Real"


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=25, batch_size=64)
    add = parser.add_argument
    add("--split", choices=("patients", "chi"), default="patients", help="a random 70/15/15 split of the patients, "
        "or Chi et al.'s own 67/33 split of the PATCHES (patients leak across it: reproduction only)")
    add("--split-seed", type=seed, default=0, help="seed of the split")
    add_operating_point_option(parser, "argmax")  # the paper states none
    add("--train-patches", type=positive_int, default=None, help="use a seeded, class-balanced subset of this "
        "many training patches (the paper: 3,716 of 5,547); validation and test patients keep all theirs")
    add("--dcgan-variants", default="v1,v2,v3", help="DCGAN variants to train per class")
    add("--dcgan-epochs", type=positive_int, default=None, help="DCGAN epochs (default: the variant's)")
    add("--dcgan-filters", type=positive_int, default=64, help="DCGAN base width (64 in the paper)")
    add("--dcgan-batch", type=positive_int, default=64, help="DCGAN batch size")
    add("--clusters", type=non_negative_int, default=4, help="SIFT k-means clusters (0: skip)")
    add("--cluster-variants", default="v1,v2,v3",
        help="DCGAN variants trained on one SIFT cluster (the paper's Fig. 5; '' for none)")
    add("--cyclegan-epochs", type=positive_int, default=25, help="CycleGAN epochs (Chi et al.: 25)")
    add("--cyclegan-filters", type=positive_int, default=64, help="CycleGAN base width (64)")
    add("--cyclegan-batch", type=positive_int, default=1, help="CycleGAN batch (reference: 1)")
    add("--synthetic-per-class", type=positive_int, default=None, help="patches each DCGAN draws per "
        "class (default: as many as the real training set holds; the paper gives no count)")
    add("--cyclegan-decay", choices=("run", "reference"), default="run", help="CycleGAN rate: constant for "
        "half the epochs, then decayed to 0 ('run'), or the reference's 100 + 100 epochs ('reference')")
    add("--min-ssd", type=positive_float, default=None, help="drop CycleGAN translations whose sum of "
        "squared differences from their source (pixels in [0, 1]) is below this")
    add("--synthetic-fraction", type=fraction, default=None, help="synthetic share of each mixed batch (natural)")
    add("--backbone-weights", default="auto", help="ResNet-18 weights: auto (ImageNet if downloadable, "
        "else random), imagenet, none, or a .weights.h5 file")
    add("--protocol", choices=("auto", "frozen", "full"), default="auto", help="frozen conv layers + new "
        "head (the paper), full fine-tuning, or auto (frozen with pretrained weights, full with random ones)")
    add("--learning-rate", type=positive_float, default=1e-3, help="ResNet-18 SGD learning rate")
    add("--domain-epochs", type=positive_int, default=3, help="epochs of the FID/KID domain classifier")
    add("--test-dir", type=pathlib.Path, default=None, help="test on this IDC folder (same layout); --data-dir "
        "then gives training and validation patients, without those found in both folders")
    add("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    args = parser.parse_args(argv)
    for option, empty_ok in (("dcgan_variants", False), ("cluster_variants", True)):
        given = getattr(args, option)
        variants = [v for v in given.split(",") if v]
        if set(variants) - set(VARIANTS) or not (variants or empty_ok):
            parser.error(f"--{option.replace('_', '-')}: choose from {sorted(VARIANTS)}, got {given!r}")
        setattr(args, option, variants)
    return args


def make_split(dataset, tested, args):
    """The split (`--split`, `--test-dir`), checked, with `--train-patches` drawn."""
    splitter = PatientSplitter(seed=args.split_seed)
    if args.split == "chi":  # the paper's protocol, by patch: reproduce it, never claim with it
        split = splitter.by_image(dataset.records(), 0.33, "Chi et al.'s 67/33")
    else:
        split = (splitter.random(dataset.records()) if tested is None else
                 splitter.held_out(dataset.records(), tested.records(), note=f"--test-dir {args.test_dir}"))
    if args.train_patches and args.train_patches < len(split["train"]):
        train = study.subsample(split["train"], args.train_patches, args.split_seed)
        split = dataclasses.replace(split, parts={**split.parts, "train": train},
                                    note=f"{split.note}; a class-balanced draw of {len(train)} training patches")
    require_both_classes({{"train": "training"}.get(p, p): [r.label for r in split[p]] for p in split.parts},
                         split.name, "use data with both classes or another --split-seed", idc.CLASS_NAMES)
    require_full_batches({"The classifier (--batch-size)": (args.batch_size, len(split["train"]))}, split.name)
    return split


def classify(run, units, split, arrays, sets, backbone, args):
    """Every row trained once (a unit, its scores kept beside it) and scored at the operating point."""
    comparison, runs, nearest = Comparison(split, args.operating_point), {}, None
    best = f"DCGAN {args.dcgan_variants[-1]} + Real"  # the augmented classifier of Fig. 8
    rows = study.classifier_rows(arrays["train"], sets, args.dcgan_variants, args.epochs)
    for name, row in rows.items():
        def train(name=name, row=row):
            model, scores, info = study.train_row(
                row, {part: arrays[part][0] for part in ("validation", "test")}, backbone=backbone,
                learning_rate=args.learning_rate, batch_size=args.batch_size,
                synthetic_fraction=args.synthetic_fraction, seed=args.seed)
            if name == best:  # Fig. 8 needs this model, kept only while its row trains
                info["nearest_neighbours"] = study.nearest_neighbour_figure(
                    run.path("fig8_nearest_neighbours.png"), model, arrays["train"][0], row.synthetic,
                    arrays["test"][0], study.turned_right(
                        comparison.labels["test"], scores["test"], comparison.add(name, scores)["threshold"],
                        comparison.scores[REFERENCE]["test"], comparison.results[REFERENCE]["threshold"]))
            return info, scores

        runs[name], scores = study.unit_with_arrays(units, f"classifier/{name}", train)
        nearest = runs[name].pop("nearest_neighbours", nearest)
        result = comparison.add(name, scores)
        print(f"  {name}: test AUROC {result['auroc']:.3f} ({runs[name]['seconds']:.0f} s)")
    return comparison, runs, next(name for name, row in rows.items() if row.control), nearest


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    tested = None if args.test_dir is None else idc.scan_idc_for_command(args.test_dir)  # before any work
    run = start_run(NAME, args)
    report = Report(run, Units(run))
    data_dir = args.data_dir or demo_dir("histology")
    dataset = idc.scan_idc_for_command(data_dir)
    print(dataset.summary())
    split = make_split(dataset, tested, args)
    arrays = {part: load_arrays(split[part], (study.SIZE,) * 2, size_policy=study.POLICY) for part in split.parts}
    # Resolved once per run: a rerun that could now download ImageNet weights keeps the first choice.
    backbone = report.units.get("backbone", lambda: study.resolve_backbone(args.backbone_weights, args.protocol))
    print(study.random_backbone_banner(backbone), end="")
    trainer = study.GanTrainer(run, lambda name: Run(run.path(name), {}), get_strategy(args.strategy),
                               **{option: getattr(args, option) for option in study.GAN_OPTIONS})
    found = {}
    if args.clusters:
        found["clusters"] = report.units.get("clusters", lambda: study.cluster_experiment(
            trainer, split["train"], arrays["train"], clusters=args.clusters, variants=args.cluster_variants))
    with report.stage("generators"):
        sets, generators = trainer.synthetic_sets(split["train"], arrays["train"], args.dcgan_variants, args.min_ssd,
                                                  per_class=args.synthetic_per_class)
    with report.stage("generator_scores"):
        domain, domain_info = train_once(run, "domain_classifier", lambda: study.fit_domain_classifier(
            arrays["train"], epochs=args.domain_epochs, seed=args.seed))
        found["generator_scores"] = study.generator_scores(domain, arrays["train"], sets, domain_info["what"])
    comparison, runs, control, found["nearest_neighbours"] = classify(run, report.units, split, arrays, sets,
                                                                      backbone, args)
    comparison.save(run)  # scores.npz, ROC curves, confusion matrices; table.md is written below
    weights_used = runs[REFERENCE]["weights_used"]
    paired = study.paired_tests(comparison, REFERENCE, control)
    text = study.table_text(comparison.table(TABLE), paired, weights_used, backbone["protocol"], args.epochs,
                            control, args.operating_point, split.note, split.patients("test"))
    print("\n" + text)
    (run.directory / "table.md").write_text(text)
    report.write({
        "test_metrics": comparison.results, "reference": REFERENCE, "delong_vs_reference": paired[REFERENCE],
        "delong_vs_real_same_steps": {"baseline": control, **paired[control]}, "split": split.note,
        "classifier": {"weights_used": weights_used, "weights_note": backbone["note"],
                       "protocol": backbone["protocol"], "epochs": args.epochs, "batch_size": args.batch_size,
                       "runs": runs},
        "generators": generators, "domain_classifier": domain_info, "synthetic_sets": study.describe_sets(sets),
        **found,
    }, data={
        "source": str(data_dir), "test_dir": args.test_dir and str(args.test_dir),
        "split": split.summary(), "patients": {part: split.patients(part) for part in split.parts},
        "patches": {part: len(records) for part, records in split.parts.items()},
        "class_counts": {part: np.bincount(a[1], minlength=2).tolist() for part, a in arrays.items()},
        "train_patches_option": args.train_patches,
    })
    print(f"Run folder: {run.directory}")
    return comparison.results


if __name__ == "__main__":
    sys.exit(main.command_line())
