"""Reproduce ciGAN's Table 1 (Wu et al. 2018) on CBIS-DDSM mammogram patches.

1. Patches, split by patient: lesion patches (the lesion inside) and
   lesion-free patches with more than 75% breast tissue, masks with them;
   label 1 = malignant lesion.
2. ciGAN's feature loss: VGG-19 with ImageNet weights when they can be
   loaded (download or --feature-network FILE), else (--feature-network
   auto, said loudly) the documented domain substitute, a VGG-style
   lesion-vs-normal classifier trained on the TRAINING patients once per
   run folder (a resumed run reuses it).
3. ciGAN on the training patients only: pre-training of G on the feature
   loss, then the loss-triggered alternation (`gan_zoo.models.cigan`).
4. ResNet-50 three ways: no augmentation; traditional augmentation (rotation
   30 degrees, horizontal flip, scale 0.75-1.25); ciGAN + traditional (each
   non-malignant training patch gets a malignant lesion painted with another
   malignant lesion's mask, each malignant patch has its lesion removed;
   batches start 50% real, +20 points every --curriculum-every steps, up to
   90%). Each trains --classifier-steps steps and is scored with its last
   weights, as in the paper (--keep best: the best validation-patient AUROC,
   checked every --eval-every steps). A rerun skips the finished rows.
5. Test patients, scored once: the paper's Table 1 (AUROC with DeLong 95%
   CI, paired DeLong p-values between the rows; the other rates at
   --operating-point, default argmax: the paper states none), and the
   layout of its Fig. 1 (original, input, synthetic of the other class).

Splits (by patient): random 80/10/10 (the paper's; --fractions), --split
official (CBIS-DDSM's own train/test by image name; validation patients
carved from the training side), or --test-dir (another folder, the test set).

Without --data-dir it runs on the procedural demo mammograms in minutes
(smaller step defaults). On real data the step counts default to the
paper's (10,000 pre-training + 100,000 GAN, 10,000 classifier iterations).

    python recipes/cigan_ddsm.py
    python recipes/cigan_ddsm.py --data-dir ../shared/data/cbis_ddsm_mass --patch-size 64 \\
        --pretrain-steps 300 --gan-steps 1500 --classifier-steps 600
"""

import pathlib
import sys

from gan_zoo.arguments import non_negative_int, positive_float, positive_int, seed
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.mammography import official_split, scan_cbis_ddsm
from gan_zoo.errors import UsageError, data_problem_line
from gan_zoo.experiments import (Comparison, PatientSplitter, Report, Units, add_operating_point_option, recipe_main,
                                 recipe_parser, require_both_classes, require_full_batches, start_run, train_once)
from gan_zoo.models import feature_networks
from gan_zoo.models.cigan import CLASS_NAMES
from gan_zoo.training.cigan_study import (REGIMES, backbone_weights, feature_weights, patch_counts, patches_as_split,
                                          regime_slug, save_figure1, split_patches, synthesize, table_one,
                                          train_cigan, train_regime)
from gan_zoo.training.distribute import STRATEGIES

NAME = "cigan_ddsm"
# Paper values on real data; small ones for the demo (a few minutes on a CPU).
STEP_DEFAULTS = {
    "pretrain_steps": (10000, 20), "gan_steps": (100000, 80), "classifier_steps": (10000, 40),
    "eval_every": (1000, 20), "curriculum_every": (1000, 10), "domain_steps": (1500, 60),
}
# 16 demo patients: a quarter of them gives test patients of both classes.
DATA_DEFAULTS = {**STEP_DEFAULTS, "normal_per_image": (1, 2), "fractions": ("0.8,0.1,0.1", "0.5,0.25,0.25")}


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=None, batch_size=8)
    add_operating_point_option(parser, "argmax")  # the paper states none
    parser.add_argument("--keep", choices=("last", "best"), default="last", help="ResNet-50 weights scored: "
                        "the last (the paper: 10,000 iterations) or the best validation AUROC")
    parser.add_argument("--split", choices=("random", "official"), default="random",
                        help="patient split (see the description)")
    parser.add_argument("--fractions", default=None, help="train,validation,test patient fractions of the "
                        "random split (default 0.8,0.1,0.1; demo 0.5,0.25,0.25)")
    parser.add_argument("--split-seed", type=seed, default=0, help="seed of the patient split")
    parser.add_argument("--test-dir", type=pathlib.Path, default=None,
                        help="a folder of the same layout holding the test patients")
    parser.add_argument("--patch-size", type=positive_int, default=64, help="patch side (256 at full "
                        "resolution as in the paper; 64 or 128 for 256x256 whole images)")
    parser.add_argument("--target-height", type=positive_int, default=None,
                        help="resize mammograms to this height first (the paper: 1375)")
    parser.add_argument("--normal-per-image", type=non_negative_int, default=None,
                        help="lesion-free patches per image (default 1; demo 2)")
    parser.add_argument("--feature-network", default="auto", help="ciGAN's feature loss: auto (ImageNet "
                        "VGG-19, else the domain substitute, said loudly), imagenet, domain, random (not for "
                        "results), or a .h5 VGG-19 / .keras domain network file")
    parser.add_argument("--backbone-weights", default="auto", help="ResNet-50 init: auto (ImageNet, else "
                        "random, said loudly), imagenet, none, or a no-top weights file")
    for option, (paper, demo) in STEP_DEFAULTS.items():
        parser.add_argument(f"--{option.replace('_', '-')}", type=non_negative_int, default=None,
                            help=f"default {paper} (demo {demo})")
    parser.add_argument("--switch-threshold", type=positive_float, default=0.3, help="ciGAN's alternation threshold")
    parser.add_argument("--max-phase-steps", type=positive_int, default=None,
                        help="cap on the steps of one ciGAN d or g phase (not in the paper)")
    parser.add_argument("--classifier-batch-size", type=positive_int, default=32)
    parser.add_argument("--classifier-lr", type=positive_float, default=1e-5,
                        help="ResNet-50 Adam learning rate (the paper's 1e-5 fine-tunes ImageNet weights)")
    parser.add_argument("--gan-only", action="store_true",
                        help="train ciGAN and save its grids; no classifiers (e.g. for the notebook)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    args = parser.parse_args(argv)
    for option, (paper, demo) in DATA_DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, demo if args.data_dir is None else paper)
    try:
        values = [float(v) for v in args.fractions.split(",")]
        if len(values) != 3 or min(values) <= 0 or abs(sum(values) - 1) > 1e-6:
            raise ValueError
    except ValueError:
        parser.error(f"--fractions must be three positive numbers summing to 1, got {args.fractions!r}")
    if args.classifier_steps < 1 or args.eval_every < 1:
        parser.error("--classifier-steps and --eval-every must be at least 1")
    if args.split == "official" and args.test_dir is not None:
        parser.error("--split official and --test-dir both choose the test set; give one")
    for folder in (args.data_dir, args.test_dir):
        if folder is not None and not folder.is_dir():
            parser.error(f"folder not found: {folder}")
    return args


def patient_split(args):
    """The patient `Split` of the mammograms (--split, --fractions, --test-dir)."""
    records = scan_cbis_ddsm(args.data_dir or demo_dir("mammography"))
    train, validation, test = (float(v) for v in args.fractions.split(","))
    splitter = PatientSplitter(patient=lambda r: r.patient_id, label=lambda r: -1 if r.label is None else r.label,
                               seed=args.split_seed, validation_share=validation / (train + validation))
    if args.test_dir is not None:
        return splitter.held_out(records, scan_cbis_ddsm(args.test_dir), note=f"--test-dir {args.test_dir}")
    if args.split == "official":
        sides = official_split(records, drop_overlap=True)
        return splitter.fixed(sides["train"] + sides["test"], {side: {r.patient_id for r in sides[side]}
                                                               for side in ("train", "test")}, "CBIS-DDSM official split")
    return splitter.random(records, {"train": train, "validation": validation, "test": test})


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    run = start_run(NAME, args)
    report = Report(run, Units(run))
    with report.stage("patches"):  # data problems stop here, in one line
        try:
            split = patient_split(args)
            patches = split_patches(split, patch_size=args.patch_size, normal_per_image=args.normal_per_image,
                                    target_height=args.target_height, seed=args.seed)
        except ValueError as error:
            raise UsageError(data_problem_line(error)) from error
    print("\n".join(f"{part}: {found.summary()}" for part, found in patches.items()))
    require_both_classes({{"train": "training"}.get(part, part): p.labels for part, p in patches.items()},
                         split.name, "use more data or other --fractions", CLASS_NAMES)
    require_full_batches({"ciGAN (--batch-size)": (args.batch_size, len(patches["train"]))}, split.name)
    data = {"source": str(args.data_dir or demo_dir("mammography")), "test_source": args.test_dir and str(args.test_dir),
            "split": split.summary(), **patch_counts(patches)}

    # The feature loss's network, then ciGAN: both trained on the training patients only.
    with report.stage("feature_network"):
        weights_file, feature_info = feature_weights(args.feature_network, patches, run, seed=args.seed,
                                                     steps=args.domain_steps, keep=train_once)
        description = feature_networks.describe_feature_network(feature_info)
        print(f"ciGAN feature loss: {description}")
    with report.stage("cigan"):
        gan, gan_info = train_cigan(patches, run, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                                    strategy=args.strategy, jit=args.jit, config=dict(
                                        patch_size=args.patch_size, feature_weights=weights_file,
                                        pretrain_steps=args.pretrain_steps, train_steps=max(1, args.gan_steps),
                                        switch_threshold=args.switch_threshold,
                                        max_phase_steps=args.max_phase_steps, seed=args.seed))
        synthetic = synthesize(gan, patches["train"], args.seed)
        figure = save_figure1(gan, patches["test"], run.path("figure1_test_patients.png"), args.seed)
    summary = {"feature_network": {**feature_info, "description": description}, "cigan": gan_info,
               "figure1": figure.name, "split": split.note,
               "synthetic": {"count": len(synthetic[1]), "malignant": int(synthetic[1].sum()),
                             "classes": list(CLASS_NAMES)}}
    if args.gan_only:
        print(f"ciGAN trained ({gan_info['steps']} steps); run folder: {run.directory}")
        return report.write(summary, data=data)

    # ResNet-50 three ways, each a unit of work; test patients scored once, at the end.
    weights, weights_note = backbone_weights(args.backbone_weights, args.patch_size)
    comparison = Comparison(patches_as_split(split, patches), args.operating_point)
    for regime in REGIMES:
        unit = report.units.get(f"classifier-{regime_slug(regime)}", lambda regime=regime: train_regime(
            regime, patches, synthetic, run, weights=weights, patch_size=args.patch_size,
            learning_rate=args.classifier_lr, steps=args.classifier_steps, eval_every=args.eval_every,
            curriculum_every=args.curriculum_every, batch_size=args.classifier_batch_size, seed=args.seed,
            keep=args.keep))
        comparison.add(regime, unit["scores"], **{k: v for k, v in unit.items() if k not in ("scores", "seconds")})
    table, table_record = table_one(comparison)  # each row against the rows above it (p-values)
    comparison.save(run)
    run.path("table1.md").write_text(table + "\n")
    print(f"\nTest patients ({split.note}); {patches['test'].summary()}; {args.operating_point.describe()}\n"
          f"ResNet-50 init: {weights_note}\nciGAN feature loss: {description}\n\n{table}\n")
    metrics = report.write({**table_record, "test_metrics": comparison.results, "classifier_init": weights_note,
                            **summary}, data=data)
    print(f"Run folder: {run.directory}")
    return metrics


if __name__ == "__main__":
    sys.exit(main.command_line())
