"""Train a DCGAN (Chi et al. variants v1/v2/v3) on IDC patches.

Trains one class-conditional DCGAN on the training patients' 50x50 patches,
saves sample grids (one row per class), scores its samples' KID and FID
against the validation patients in a domain feature extractor (the small CNN
trained once on the real training patients, reused on resume), and scores
the generator downstream: a small CNN trained on real, synthetic, and real +
synthetic patches is evaluated on the test patients once, after training,
at a threshold chosen on validation patients (with --eval-every N the same
classifiers are scored on the VALIDATION patients every N epochs). The data
is checked before training; without --data-dir it runs on the demo data.

IDC patches are 50x50 and are trained at that size: another --image-size is
refused. The IDC size policy pads or crops (it never stretches, so that the
off-size patches cut at a slide's border keep the tissue's scale); at 64 px
every image would be 39% black padding, at 32 px it would lose 59% of its
tissue. Resizing all patches instead would need the edge patches padded
first, which the pipeline's single size policy cannot express.

    python recipes/dcgan_idc.py --epochs 10 --base-filters 32
    python recipes/dcgan_idc.py --data-dir ../shared/data/idc --variant v3
"""

import argparse
import sys

import numpy as np

import gan_zoo
from gan_zoo.arguments import non_negative_int, positive_float, positive_int, seed
from gan_zoo.errors import UsageError
from gan_zoo.data import idc
from gan_zoo.data.demo import demo_dir
from gan_zoo.layers.diff_augment import parse_policy
from gan_zoo.metrics.extractors import KerasLayerExtractor
from gan_zoo.metrics.features import extract_features
from gan_zoo.metrics.plots import save_loss_curves
from gan_zoo.metrics.generative import fid_sample_problem
from gan_zoo.metrics.scores import compute_scores
from gan_zoo.models.dcgan import VARIANTS
from gan_zoo.training.distribute import STRATEGIES, get_strategy
from gan_zoo.training.generative_eval import GenerativeEvaluation
from gan_zoo.training.downstream import AugmentationEvaluation, load_arrays
from gan_zoo.training.loop import train_gan
from gan_zoo.experiments import (PatientSplitter, Report, add_operating_point_option, recipe_main,
                                 recipe_parser, require_both_classes, require_full_batches, start_run, train_once)

NAME = "dcgan_idc"
POLICY = idc.IDC_SIZE_POLICY


def augment_policy(text):
    """--augment: DiffAugment transform names, checked before any work."""
    try:
        return ",".join(parse_policy(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=None, batch_size=64)
    add_operating_point_option(parser, "argmax")  # the paper states none
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="v3",
                        help="Chi et al. variant (the paper's final model is v3)")
    parser.add_argument("--image-size", type=positive_int, default=idc.PATCH_SIZE,
                        help="image side; must be the IDC patch side (see the description)")
    parser.add_argument("--base-filters", type=positive_int, default=64,
                        help="width f of the networks (64 in the paper; 32 trains ~4x faster)")
    parser.add_argument("--split-seed", type=seed, default=0,
                        help="seed of the random 70/15/15 patient split")
    parser.add_argument("--eval-every", type=non_negative_int, default=0,
                        help="epochs between downstream evaluations (0: only at the end)")
    parser.add_argument("--eval-epochs", type=positive_int, default=5,
                        help="epochs of each downstream classifier")
    parser.add_argument("--eval-width", type=positive_float, default=0.5,
                        help="width multiplier of the downstream small CNN")
    parser.add_argument("--eval-batch-size", type=positive_int, default=64,
                        help="batch size of the downstream small CNN")
    parser.add_argument("--sample-every", type=positive_int, default=1,
                        help="epochs between sample grids (one is always saved at the end)")
    parser.add_argument("--kid-every", type=non_negative_int, default=0,
                        help="epochs between KID (and FID) scores of the generator against the "
                        "validation patients (0: only after training)")
    parser.add_argument("--ema-half-life", type=positive_float, default=None,
                        help="sample from an EMA of the generator with this half-life in steps "
                        "(not in the paper; cleaner samples early in training)")
    parser.add_argument("--augment", type=augment_policy, default=None, metavar="POLICY",
                        help="differentiable augmentation of everything D sees, e.g. "
                        "'color,translation,cutout' (DiffAugment; not in the paper)")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                        help="unreadable or misnamed patches are found before training: "
                        "'raise' stops naming the first, 'skip' leaves them out "
                        "(counted in metrics.json)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto",
                        help="tf.distribute strategy")
    args = parser.parse_args(argv)
    problem = idc.idc_size_problem(args.image_size)
    if problem:
        parser.error(f"--image-size {args.image_size}: {problem}")
    if args.epochs is None:
        args.epochs = VARIANTS[args.variant]["epochs"]
    return args


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    run = start_run(NAME, args)
    report = Report(run)

    # Data: patients split 70/15/15, never patches. Every patch is decoded
    # while scanning, so a bad file stops the run here, not mid-training.
    data_dir = args.data_dir or demo_dir("histology")
    dataset = idc.scan_idc_for_command(data_dir, args.on_error)
    print(dataset.summary())
    split = PatientSplitter(seed=args.split_seed).random(dataset.records())
    require_both_classes({{"train": "training"}.get(part, part): [r.label for r in split[part]] for part in split.parts},
                         split.name, "use data with both classes or another --split-seed", idc.CLASS_NAMES)
    require_full_batches({"The GAN (--batch-size)": (args.batch_size, len(split["train"]))}, split.name)
    arrays = {part: load_arrays(split[part], (args.image_size,) * 2, size_policy=POLICY) for part in split.parts}
    try:  # checks what the downstream evaluation needs, before training
        evaluation = AugmentationEvaluation(
            arrays["train"], arrays["validation"], arrays["test"],
            classifier_options={"width": args.eval_width, "image_size": args.image_size},
            epochs=args.eval_epochs, batch_size=args.eval_batch_size, seed=args.seed,
            operating_point=args.operating_point,
        )
    except ValueError as error:
        raise UsageError(f"{error} Lower --eval-batch-size or use more data.") from None

    # The domain feature extractor for FID/KID: the downstream classifier
    # trained on the real TRAINING patients, once per run (a resumed run
    # reads it back); the reference is the validation patients.
    with report.stage("feature_extractor"):
        model, extractor_info = train_once(run, "feature_extractor", lambda: (evaluation.real_classifier(), {
            "what": f"small_cnn (width {args.eval_width}) trained on this run's training patients"}))
        evaluation.use_real_classifier(model)
    extractor = KerasLayerExtractor(evaluation.real_classifier(), "gap", weights_source=extractor_info["what"])
    reference = extract_features(arrays["validation"][0], extractor, split="validation", progress=False,
                                 name=f"{data_dir} validation patients (split seed {args.split_seed})")
    # Generated sets take the reference's class mix, so FID/KID compare tissue, not class proportions.
    scoring = dict(labels=arrays["validation"][1], n=len(arrays["validation"][1]), seed=args.seed)

    with get_strategy(args.strategy).scope():
        gan = gan_zoo.load("dcgan", variant=args.variant, image_size=args.image_size,
                           base_filters=args.base_filters, num_classes=2, seed=args.seed,
                           ema_half_life_steps=args.ema_half_life, augment_policy=args.augment)
        gan.compile(jit_compile=args.jit)

    # Per-epoch downstream scores and KID use the VALIDATION patients only.
    callbacks = [GenerativeEvaluation(reference, extractor, every_epochs=args.kid_every,
                                      provenance_path=run.path("generative_metrics.jsonl"), **scoring)
                 ] if args.kid_every else []
    with report.stage("gan"):
        logs = train_gan(gan, split["train"], run, epochs=args.epochs, batch_size=args.batch_size,
                         seed=args.seed, size_policy=POLICY, sample_every=args.sample_every, sample_upscale=2,
                         callbacks=callbacks, evaluate=evaluation.validation_hook() if args.eval_every else None,
                         evaluate_every=args.eval_every or 1)
    run.save_model(gan, "dcgan.keras")  # before the evaluation: a failing evaluation loses no training
    save_loss_curves(run.path("losses.png"), {k: [e[k] for e in logs] for k in ("d_loss", "g_loss")})

    with report.stage("evaluation"):  # generative quality on validation, downstream on test patients once
        fake = extract_features(gan, extractor, progress=False, name="dcgan samples", **scoring)
        fid_problem = fid_sample_problem(reference.n, fake.n, reference.mean.shape[0])
        generative = compute_scores(reference, fake, seed=args.seed, kid_subset_size=min(1000, reference.n),
                                    metrics=("kid",) if fid_problem else ("kid", "fid"))
        downstream = {**evaluation.real_baseline(), **evaluation.test_metrics(gan)}
    # Train steps only: not the first epoch of a fit call, which traces the train step.
    steady = [e for e in logs if e.get("fit_epoch", 1) > 1] or logs
    per_epoch = len(split["train"]) // args.batch_size * args.batch_size
    metrics = report.write({
        "model": "dcgan", "variant": args.variant, "epochs": len(logs),
        "final": {k: logs[-1][k] for k in ("d_loss", "g_loss")},
        "train_images_per_second": float(np.mean([per_epoch / e["train_seconds"] for e in steady])),
        "train_images_per_second_method": "train-step time of epochs after the first of each fit call",
        "downstream_test": downstream, "generative_validation": generative, "feature_extractor": extractor_info,
        "downstream_protocol": (
            f"small_cnn width {args.eval_width}, {args.eval_epochs} epochs, batch {args.eval_batch_size}, "
            f"trained on real / synthetic / real+synthetic train patches; {args.operating_point.describe()}; "
            "scored on test patients once after training (per-epoch scores in metrics.jsonl: validation)"),
        "samples": sorted(str(p.name) for p in run.path("samples").glob("*.png")),
    }, data={"source": str(data_dir), "split": split.summary(), "patients": split.summary()["patients"],
             "patches": split.summary()["records"], "off_size_patches": len(dataset.off_size),
             "skipped_files": len(dataset.skipped),
             "skipped_examples": [f"{path}: {reason}" for path, reason in dataset.skipped[:20]]})
    print(f"\nRun folder: {run.directory}")
    for key in ("real_auroc", "synthetic_auroc", "augmented_auroc"):
        print(f"  {key:>18}: {downstream[key]:.3f}")
    spread = "n/a" if np.isnan(generative["kid_std"]) else f"{generative['kid_std']:.4f}"
    print(f"  {'KID':>18}: {generative['kid']:.4f} +/- {spread} "
          f"({fake.n} samples vs {reference.n} validation patches; domain extractor)")
    print(f"  {'FID':>18}: {fid_problem or format(generative['fid'], '.2f')}")
    return metrics


if __name__ == "__main__":
    sys.exit(main.command_line())
