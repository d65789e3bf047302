"""Train PathologyGAN on H&E tissue tiles; score it with KID / FID; walk its latent space.

--data-dir is a PathologyGAN HDF5 file (train_img; valid_img and test_img when present) or a folder of H&E
images or whole slides, tiled first (224x224, 50% overlap, background dropped, training tiles in their 8
rotations / mirrorings) with whole images (or patient folders, or BreaKHis slides) held out as validation and
test splits. KID / FID are computed every --eval-every epochs against the VALIDATION split and once, after
training, against the TEST split; --reference-dir gives a separate folder (or HDF5 file) as the test reference
instead. Without --data-dir it runs on the procedural demo patches (each 50x50 patch one tile, resized).

KID and FID need an image feature network, and ImageNet's know little of tissue (and cannot be downloaded
everywhere): by default the recipe trains a domain extractor once per run (`gan_zoo.training.he_extractor`), the
zoo's small_cnn as a tumour classifier on --extractor-data (when ../shared/data is present the IDC patches, no-IDC
vs IDC, else BreaKHis 224 crops, benign vs malignant, else the demo's classes), split 70/30 by patient, and uses
its pooled features ("gap"). Scores are comparable between runs with the same extractor id (recorded with every
score), not with the paper's Inception FID. --extractor PATH uses a saved classifier instead; --extractor
random-inception an UNTRAINED Inception (labelled as such in every score: tests only). --inception-weights FILE
(Keras Inception-V3 no-top weights, or "imagenet" to download them) adds the paper's Inception FID on the test
tiles. The paper's cancer-cell-feature FID (per-tile cancer / other cell counts and cancer-cell density from the
nuclei detector of `gan_zoo.metrics.cell_counts`) is always computed on the test tiles.

At the end it writes interpolation strips (in z and in w) and a w-vector strip for the extractor's "malignant"
direction (mean w of samples it calls malignant minus the mean w of the others).

    python recipes/pathology_gan.py                                    # demo, 28 px
    python recipes/pathology_gan.py --data-dir ../shared/data/he_tiles/brecahad/images \\
        --stages 3 --epochs 4 --augment color,translation,cutout
"""

import pathlib
import sys

import gan_zoo
from gan_zoo.arguments import fraction, non_negative_int, positive_float, positive_int, probability, seed
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.he.prepare import prepare_he_data
from gan_zoo.errors import UsageError, data_problem_line
from gan_zoo.experiments import PatientSplitter, Report, recipe_main, recipe_parser, start_run, train_once
from gan_zoo.layers.diff_augment import parse_policy
from gan_zoo.models.pathology_gan_figures import latent_strips
from gan_zoo.training import he_extractor, pathology_gan_study as study
from gan_zoo.training.distribute import STRATEGIES, get_strategy
from gan_zoo.training.loop import train_gan

NAME = "pathology_gan"
# The paper's sizes; the demo's train in a minute (its 50x50 patches are the tiles, resized to the model).
PAPER_SIZES = {"latent_dim": 200, "base_channels": 32, "initial_channels": 256, "dense_units": 1024, "stages": 5,
               "tile_size": 224}
DEMO_SIZES = {"latent_dim": 32, "base_channels": 8, "initial_channels": 32, "dense_units": 128, "stages": 2,
              "tile_size": 50}
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
SAME_NAMED = ("stages", "latent_dim", "base_channels", "initial_channels", "dense_units", "n_critic", "ema_decay",
              "orthogonal_regularization", "augment_probability", "seed")  # model options named as the recipe's


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=45, batch_size=64)
    add = parser.add_argument
    add("--reference-dir", type=pathlib.Path,
        help="test reference: a folder of H&E images (or HDF5 file) instead of a held-out split")
    add("--validation-fraction", type=fraction, default=0.15,
        help="share of the images (patients, slides) held out for KID/FID during training")
    add("--test-fraction", type=fraction, default=0.15,
        help="share of the images held out for the final KID/FID (unless --reference-dir)")
    add("--split-seed", type=seed, default=0, help="seed of the validation / test split")
    add("--stages", type=positive_int,
        help="generator stages: image side 7 * 2**stages (5 = 224, the paper; default 2 on the demo)")
    add("--tile-size", type=positive_int,
        help="side of the tiles cut from images (224, the paper; 50 on the demo: a patch is a tile)")
    add("--overlap", type=probability, default=0.5, help="tile overlap, in [0, 1)")
    add("--magnification", type=positive_float, help="read whole-slide images at this magnification (e.g. 20)")
    add("--no-dihedral", action="store_true", help="do not add the 8 rotations / mirrorings of each tile")
    add("--latent-dim", type=positive_int, help="size of z and w (200; demo 32)")
    add("--base-channels", type=positive_int, help="channels of the last generator stage (32; demo 8)")
    add("--initial-channels", type=positive_int, help="channels of the 7x7 map (256; demo 32)")
    add("--dense-units", type=positive_int, help="width of the dense layers (1024; demo 128)")
    add("--n-critic", type=positive_int, default=5, help="critic updates per generator update")
    add("--ema-decay", type=fraction, help="sample from an EMA generator with this decay")
    add("--orthogonal-regularization", type=float, default=0.0, help="weight of BigGAN's regulariser")
    add("--augment", metavar="POLICY", help="differentiable augmentation of D's inputs, e.g. color,translation,cutout")
    add("--augment-probability", type=probability,
        help="probability of each transform (default 1, DiffAugment; 0 with --ada, as ADA starts)")
    add("--ada", action="store_true", help="tune the probability with ADA's r_t heuristic")
    add("--ada-target", type=probability, default=0.6, help="ADA's r_t target")
    add("--ada-speed", type=positive_float, default=500_000, help="images over which ADA may move p by 1")
    add("--extractor", default="domain", help="'domain' (train small_cnn on --extractor-data), a saved "
        "classifier .keras, or 'random-inception' (untrained: tests only)")
    add("--extractor-layer", default="gap", help="layer of a saved classifier giving the features")
    add("--extractor-data", type=pathlib.Path,
        help="class folders (benign/malignant) or IDC layout for the domain extractor")
    add("--extractor-steps", type=positive_int, default=600,
        help="training steps (batches of 32) of the domain extractor, rounded up to whole epochs")
    add("--inception-weights", metavar="FILE", help="Keras Inception-V3 no-top weights file (or 'imagenet'): "
        "adds the paper's FID (pool_3, 299x299 bilinear, [-1, 1]) on the test tiles")
    add("--eval-every", type=non_negative_int, default=0,
        help="epochs between validation KID/FID (0: after the last epoch only)")
    add("--eval-samples", type=positive_int, default=None,
        help="generated images per KID/FID (default: as many as reference tiles, the paper's 5,000 vs 5,000)")
    add("--eval-real", type=positive_int, default=5000, help="at most this many reference tiles (the paper: 5,000)")
    add("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    args = parser.parse_args(argv)
    for option, path in ((o, getattr(args, o)) for o in ("data_dir", "reference_dir", "extractor_data")):
        if path is not None and not path.exists():
            parser.error(f"--{option.replace('_', '-')} {path} does not exist.")
    if args.extractor not in ("domain", "random-inception") and not pathlib.Path(args.extractor).is_file():
        parser.error(f"--extractor {args.extractor}: not 'domain', 'random-inception' or a .keras file.")
    if args.ada and not args.augment:
        parser.error("--ada tunes the augmentation probability: give --augment POLICY too.")
    held_out = args.validation_fraction + (0 if args.reference_dir else args.test_fraction)
    if held_out >= 1.0:
        parser.error(f"--validation-fraction and --test-fraction leave no training images ({held_out:g}).")
    if args.overlap >= 1.0:
        parser.error(f"--overlap {args.overlap:g}: must be below 1 (tiles would not advance).")
    try:
        args.augment and parse_policy(args.augment)
    except ValueError as error:
        parser.error(f"--augment {args.augment}: {error}")
    if args.augment_probability is None:
        args.augment_probability = 0.0 if args.ada else 1.0
    for option, value in (PAPER_SIZES if args.data_dir else DEMO_SIZES).items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    return args


@recipe_main
def main(argv=None):
    args = parse_args(argv)
    inception = args.inception_weights and study.inception_extractor(args.inception_weights)  # bad file: one line
    run = start_run(NAME, args)
    report = Report(run)
    with report.stage("data"):
        try:  # data problems: one line, before any training
            data = prepare_he_data(
                args.data_dir or demo_dir("histology"), run.directory / "data", tile_size=args.tile_size,
                overlap=args.overlap, magnification=args.magnification, dihedral=not args.no_dihedral,
                validation_fraction=args.validation_fraction, test_fraction=args.test_fraction,
                split_seed=args.split_seed, reference=args.reference_dir, batch_size=args.batch_size)
        except (ValueError, FileNotFoundError) as error:
            raise UsageError(data_problem_line(error)) from error
    print(data.counts_line())

    config = dict({k: getattr(args, k) for k in SAME_NAMED}, augment_policy=args.augment, augment_adaptive=args.ada,
                  augment_target=args.ada_target, augment_speed_images=args.ada_speed)
    if args.stages <= 2:  # self-attention at 14 px; none in a 14-px generator
        config["attention_resolution"] = 14 if args.stages == 2 else 0
    with get_strategy(args.strategy).scope():
        gan = gan_zoo.load("pathology_gan", **config)
        gan.compile(jit_compile=args.jit)
    size = gan.image_size

    with report.stage("extractor"):  # trained once per run: a resumed run scores in the same features
        if args.extractor == "domain":
            carve = PatientSplitter(seed=args.split_seed, validation_share=0.3).carve  # 70/30 by patient
            classifier, info = train_once(run, "extractor", lambda: he_extractor.train_domain_extractor(
                args.extractor_data or he_extractor.default_extractor_data(SHARED_DATA, demo=not args.data_dir),
                carve, image_size=size, steps=args.extractor_steps, seed=args.seed))
            extractor, about = he_extractor.domain_extractor(classifier, info, str(run.path("extractor.keras")))
        else:
            extractor, classifier, about = he_extractor.named_extractor(args.extractor, args.extractor_layer)
        callbacks = study.validation_kid_fid(
            data.references["validation"], extractor, every_epochs=args.eval_every or args.epochs,
            n_fake=args.eval_samples, n_real=args.eval_real, provenance_path=run.path("kid_fid_validation.jsonl"))

    with report.stage("gan"):
        source = data.training_source(batch_size=args.batch_size, image_size=size, seed=args.seed)
        logs = train_gan(gan, source, run, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                         callbacks=callbacks, sample_upscale=max(1, 112 // size))
    run.save_model(gan, "pathology_gan.keras")  # every worker calls it; before the scores, which may fail

    with report.stage("evaluation"):  # the test tiles are scored once, after training
        test, scored = study.test_kid_fid(gan, extractor, data.references["test"], n_fake=args.eval_samples,
                                          n_real=args.eval_real)
        run.write_json("kid_fid_test.json", test)
        inception_fid = inception and study.inception_test_scores(
            gan, inception, data.references["test"], n_fake=args.eval_samples, n_real=args.eval_real)
        cell_fid = study.cell_count_fid(gan, data.references["test"], n_fake=args.eval_samples, n_real=args.eval_real)
        strips = latent_strips(gan, classifier, run.directory)

    summary = study.training_summary(logs, data.summary["train_tiles"] // args.batch_size * args.batch_size)
    metrics = report.write({
        "model": NAME, "config": gan.get_config(), "image_size": size, **summary,
        "kid_fid_test": {k: test[k] for k in study.SCORE_KEYS if k in test},
        "kid_fid_protocol": study.kid_fid_protocol(n_fake=scored["generated"], n_test=scored["real"],
                                                   test_reference=data.summary["test"], extractor_id=extractor.id),
        "extractor": about, "cell_fid_test": cell_fid, **({"inception_fid_test": inception_fid} if inception else {}),
        "samples": sorted(str(p) for p in run.path("samples").glob("*.png")),
        "latent_strips": strips,
    }, data=data.summary)
    print(f"\nRun folder: {run.directory}")
    for s in summary["kid_fid_validation"]:
        print(f"  epoch {s['epoch']}: validation KID {s['kid']:.5f}  FID {s.get('fid', float('nan')):.3f}")
    print(f"  test: KID {test['kid']:.5f}  FID {test.get('fid', float('nan')):.3f}  cell-count FID {cell_fid['fid']}"
          + (f"  Inception FID {inception_fid['fid']}" if inception else ""))
    return metrics


if __name__ == "__main__":
    sys.exit(main.command_line())
