"""Train PathologyGAN on H&E tissue tiles; score it with KID / FID; walk its latent space.

--data-dir is a PathologyGAN HDF5 file (train_img; valid_img and test_img
when present) or a folder of H&E images or whole slides, which is tiled
first (224x224, 50% overlap, background dropped, training tiles in their 8
rotations / mirrorings) with whole images (or patient folders, or BreaKHis
slides) held out as validation and test splits. KID / FID are computed
every --eval-every epochs against the VALIDATION split
(`gan_zoo.training.generative_eval.GenerativeEvaluation`) and once, after
training, against the TEST split; --reference-dir gives a separate folder
(or HDF5 file) as the test reference instead. Without --data-dir it runs on
the procedural demo patches (each 50x50 patch one tile, resized).

KID and FID need an image feature network. Inception-V3's ImageNet weights
cannot be downloaded everywhere, and ImageNet features know little of
tissue, so by default the recipe trains a domain extractor: the zoo's
small_cnn as a tumour classifier on --extractor-data (when ../shared/data is
present the IDC patches, no-IDC vs IDC, else BreaKHis 224 crops, benign vs
malignant, else the demo's classes), split 70/30 by patient, and uses its
pooled features ("gap"). The scores are
therefore comparable between runs with the same extractor id (recorded with
every score), not with the paper's Inception FID. --extractor PATH uses a
saved classifier instead; --extractor random-inception an UNTRAINED
Inception (labelled as such in every score: tests only).

At the end it writes interpolation strips (in z and in w) and a w-vector
strip for the extractor's "malignant" direction (mean w of samples it
calls malignant minus the mean w of the others).

    python recipes/pathology_gan.py                                    # demo, 28 px
    python recipes/pathology_gan.py --data-dir ../shared/data/he_tiles/brecahad/images \\
        --stages 3 --epochs 4 --augment color,translation,cutout
"""

import json
import math
import pathlib
import sys
import time

import numpy as np

import gan_zoo
from gan_zoo.arguments import fraction, non_negative_int, positive_float, positive_int, seed
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.he import PathologyHDF5, hdf5_splits, scan_he_images, write_tiles
from gan_zoo.data.he.stream import hdf5_training_stream
from gan_zoo.data.splits import split_by_group
from gan_zoo.training.distribute import STRATEGIES, get_strategy
from gan_zoo.training.generative_eval import GenerativeEvaluation
from gan_zoo.training.loop import train_gan
from gan_zoo.errors import UsageError, data_problem_line
from gan_zoo.experiments import recipe_main, recipe_parser, start_run

NAME = "pathology_gan"
HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
# The paper's widths; the demo's are small enough to train in a minute.
PAPER_WIDTHS = {"latent_dim": 200, "base_channels": 32, "initial_channels": 256, "dense_units": 1024}
DEMO_WIDTHS = {"latent_dim": 32, "base_channels": 8, "initial_channels": 32, "dense_units": 128}
DEMO_PATCH = 50  # the demo's IDC-like patches are the tiles (resized to the model)
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_BREAKHIS = SHARED_DATA / "he_tiles" / "breakhis_224"
SHARED_IDC = SHARED_DATA / "idc"


def probability(text):
    """argparse type of a value in [0, 1]."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is not in [0, 1]")
    return value


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=45, batch_size=64)
    add = parser.add_argument
    add("--reference-dir", type=pathlib.Path, default=None,
        help="test reference: a folder of H&E images (or HDF5 file) instead of a held-out split")
    add("--validation-fraction", type=fraction, default=0.15,
        help="share of the images (patients, slides) held out for KID/FID during training")
    add("--test-fraction", type=fraction, default=0.15,
        help="share of the images held out for the final KID/FID (unless --reference-dir)")
    add("--split-seed", type=seed, default=0, help="seed of the validation / test split")
    add("--stages", type=positive_int, default=None,
        help="generator stages: image side 7 * 2**stages (5 = 224, the paper; default 2 on the demo)")
    add("--tile-size", type=positive_int, default=None,
        help="side of the tiles cut from images (224, the paper; 50 on the demo: a patch is a tile)")
    add("--overlap", type=probability, default=0.5, help="tile overlap, in [0, 1)")
    add("--magnification", type=positive_float, default=None,
        help="read whole-slide images at this magnification (e.g. 20)")
    add("--no-dihedral", action="store_true", help="do not add the 8 rotations / mirrorings of each tile")
    add("--latent-dim", type=positive_int, default=None, help="size of z and w (200; demo 32)")
    add("--base-channels", type=positive_int, default=None,
        help="channels of the last generator stage (32; demo 8)")
    add("--initial-channels", type=positive_int, default=None, help="channels of the 7x7 map (256; demo 32)")
    add("--dense-units", type=positive_int, default=None, help="width of the dense layers (1024; demo 128)")
    add("--n-critic", type=positive_int, default=5, help="critic updates per generator update")
    add("--ema-decay", type=fraction, default=None, help="sample from an EMA generator with this decay")
    add("--orthogonal-regularization", type=float, default=0.0, help="weight of BigGAN's regulariser")
    add("--augment", default=None, metavar="POLICY",
        help="differentiable augmentation of D's inputs, e.g. color,translation,cutout")
    add("--augment-probability", type=probability, default=None,
        help="probability of each transform (default 1, DiffAugment; 0 with --ada, as ADA starts)")
    add("--ada", action="store_true", help="tune the probability with ADA's r_t heuristic")
    add("--ada-target", type=probability, default=0.6, help="ADA's r_t target")
    add("--ada-speed", type=positive_float, default=500_000, help="images over which ADA may move p by 1")
    add("--extractor", default="domain",
        help="'domain' (train small_cnn on --extractor-data), a saved classifier .keras, "
             "or 'random-inception' (untrained: tests only)")
    add("--extractor-layer", default="gap", help="layer of a saved classifier giving the features")
    add("--extractor-data", type=pathlib.Path, default=None,
        help="class folders (benign/malignant) or IDC layout for the domain extractor")
    add("--extractor-steps", type=positive_int, default=600,
        help="training steps (batches of 32) of the domain extractor, rounded up to whole epochs")
    add("--eval-every", type=non_negative_int, default=0,
        help="epochs between validation KID/FID (0: after the last epoch only)")
    add("--eval-samples", type=positive_int, default=1000, help="generated images per KID/FID")
    add("--eval-real", type=positive_int, default=5000, help="at most this many reference tiles")
    add("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    args = parser.parse_args(argv)
    for option in ("data_dir", "reference_dir", "extractor_data"):
        path = getattr(args, option)
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
    if args.augment:
        from gan_zoo.layers.diff_augment import parse_policy

        try:
            parse_policy(args.augment)
        except ValueError as error:
            parser.error(f"--augment {args.augment}: {error}")
    if args.augment_probability is None:
        args.augment_probability = 0.0 if args.ada else 1.0
    widths = PAPER_WIDTHS if args.data_dir else DEMO_WIDTHS
    for option, value in widths.items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    if args.stages is None:
        args.stages = 5 if args.data_dir else 2
    if args.tile_size is None:
        args.tile_size = 224 if args.data_dir else DEMO_PATCH
    return args


# ---------------------------------------------------------------------- data
def _is_hdf5(path):
    return path is not None and path.is_file() and path.suffix.lower() in HDF5_SUFFIXES


def prepare_data(args, run):
    """(train HDF5, {"validation", "test"}: (HDF5, split) or None, summary).

    Tiles image folders (whole groups per split), checks HDF5 files.
    """
    data = args.data_dir or demo_dir("histology")
    tiling = dict(tile_size=args.tile_size, overlap=args.overlap, magnification=args.magnification)
    augment = () if args.no_dihedral else ("train",)
    summary = {"source": str(data)}
    references = {"validation": None, "test": None}
    if _is_hdf5(data):
        splits = hdf5_splits(data)
        if "train" not in splits:
            raise ValueError(f"{data} has no train_img dataset.")
        if "test" not in splits and args.reference_dir is None:
            raise ValueError(f"{data} has no test_img split to score against: give --reference-dir.")
        train_path = data
        references["validation"] = (data, "valid") if "valid" in splits else None
        references["test"] = (data, "test") if "test" in splits else None
    else:
        sources = scan_he_images(data)
        groups = sorted({s.group for s in sources})
        fractions = {"valid": args.validation_fraction}
        if args.reference_dir is None:
            fractions["test"] = args.test_fraction
        if len(groups) < len(fractions) + 1:
            raise ValueError(f"{data} holds {len(groups)} image group(s): too few to hold out "
                             f"{' and '.join(fractions)} images (give --reference-dir).")
        fractions["train"] = 1.0 - sum(fractions.values())
        held_out = split_by_group(groups, fractions, seed=args.split_seed)
        splits = {g: split for split in ("valid", "test") for g in held_out.get(split, ())}
        train_path = run.path("data", "tiles.h5")
        summary["tiling"] = write_tiles(sources, train_path, splits, augment=augment, **tiling)
        small = summary["tiling"]["smaller_than_a_tile"]
        if small and not sum(summary["tiling"]["tiles"].values()):
            raise ValueError(f"{len(small)} of the {len(sources)} images are smaller than one "
                             f"{args.tile_size}-pixel tile (e.g. {small[0]}): give a smaller --tile-size.")
        present = hdf5_splits(train_path)
        references["validation"] = (train_path, "valid") if "valid" in present else None
        references["test"] = (train_path, "test") if "test" in present else None
    if args.reference_dir is not None:
        if _is_hdf5(args.reference_dir):
            references["test"] = (args.reference_dir, "test")
        else:
            path = run.path("data", "reference.h5")
            sources = scan_he_images(args.reference_dir)
            summary["reference_tiling"] = write_tiles(
                sources, path, {s.group: "test" for s in sources}, augment=False, **tiling)
            references["test"] = (path, "test")
    if references["test"] is None:
        raise ValueError("No test tiles to score against (every held-out tile was background?).")
    with PathologyHDF5(train_path, "train") as train:
        summary.update(train_tiles=len(train), tile_shape=list(train.image_shape))
    for name, reference in references.items():
        if reference is not None:
            with PathologyHDF5(*reference) as tiles:
                summary[f"{name}_tiles"] = len(tiles)
            summary[name] = f"{reference[0]}:{reference[1]}_img"
    return train_path, references, summary


# ----------------------------------------------------------------- extractor
def _domain_records(folder):
    """Labelled records with patient groups: class folders, or the IDC layout."""
    from gan_zoo.data.he.tiles import _breakhis_group
    from gan_zoo.data.image_folder import ImageRecord, scan_image_folder

    folder = pathlib.Path(folder)
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if subfolders and all({c.name for c in p.iterdir() if c.is_dir()} <= {"0", "1"} and
                          any(c.is_dir() for c in p.iterdir()) for p in subfolders):
        from gan_zoo.data import idc

        dataset = idc.scan_idc(folder)
        return list(dataset.records(dataset.patients)), ("no IDC", "IDC")
    scanned = scan_image_folder(folder)
    records = []
    for r in scanned.records:
        stem = pathlib.Path(r.path).stem
        records.append(ImageRecord(r.path, r.label, group=_breakhis_group(stem) or stem))
    return records, scanned.class_names


def default_extractor_data():
    """IDC (230 patients) when ../shared/data has it, else BreaKHis 224 crops, else the demo."""
    for folder in (SHARED_IDC, SHARED_BREAKHIS):
        if folder.is_dir():
            return folder
    return demo_dir("histology")


def build_extractor(args, run, image_size):
    """(feature extractor, classifier or None, summary)."""
    from gan_zoo.metrics import delong
    from gan_zoo.metrics.extractors import InceptionV3Extractor, KerasLayerExtractor

    if args.extractor == "random-inception":
        extractor = InceptionV3Extractor(weights=None, allow_random=True, input_size=75)
        return extractor, None, {"kind": "RANDOM-WEIGHTS Inception-V3 (tests only)", "id": extractor.id}
    if args.extractor != "domain":
        classifier = gan_zoo.load_model(args.extractor)
        extractor = KerasLayerExtractor(classifier, args.extractor_layer, weights_source=args.extractor)
        return extractor, classifier, {"kind": "saved classifier", "path": args.extractor, "id": extractor.id}

    saved = run.path("extractor.keras")
    if saved.is_file() and run.path("extractor.json").is_file():
        # A resumed run keeps its extractor, so all its scores share one id.
        classifier = gan_zoo.load_model(saved)
        extractor = KerasLayerExtractor(classifier, "gap", weights_source=str(saved))
        summary = json.loads(run.path("extractor.json").read_text())
        if summary.get("id") != extractor.id:
            raise ValueError(f"{saved} is not the extractor this run scored with; delete it to retrain.")
        return extractor, classifier, summary

    from gan_zoo.training.classify import predict_scores, train_classifier

    folder = args.extractor_data or (default_extractor_data() if args.data_dir else demo_dir("histology"))
    records, class_names = _domain_records(folder)
    groups = [r.group for r in records]
    split = split_by_group(groups, {"train": 0.7, "validation": 0.3}, seed=args.split_seed,
                           labels=[r.label for r in records])
    train = [r for r in records if r.group in split["train"]]
    validation = [r for r in records if r.group in split["validation"]]
    classifier = gan_zoo.load("small_cnn", image_size=image_size, width=0.5, seed=args.seed)
    batch = min(32, len(train))
    epochs = math.ceil(args.extractor_steps / (len(train) // batch))
    train_classifier(classifier, train, epochs=epochs, batch_size=batch,
                     size_policy="resize", seed=args.seed, verbose=0)
    scores = predict_scores(classifier, validation, size_policy="resize")
    labels = np.array([r.label for r in validation])
    auc = float(delong.auroc(labels, scores)) if len(set(labels.tolist())) == 2 else float("nan")
    classifier.save(run.path("extractor.keras"))
    extractor = KerasLayerExtractor(classifier, "gap", weights_source=str(run.path("extractor.keras")))
    summary = {
        "kind": f"small_cnn (width 0.5, {image_size} px) trained {class_names[0]} vs {class_names[1]}",
        "data": str(folder), "classes": list(class_names), "epochs": epochs, "batch_size": batch,
        "patients": {"train": len(split["train"]), "validation": len(split["validation"])},
        "images": {"train": len(train), "validation": len(validation)},
        "validation_auroc": auc, "id": extractor.id,
    }
    run.write_json("extractor.json", summary)
    print(f"Domain extractor: validation AUROC {auc:.3f} on {len(validation)} images "
          f"of {len(split['validation'])} held-out patients")
    return extractor, classifier, summary


def test_scores(gan, extractor, real, args):
    """KID and FID of the final generator against the test reference, once."""
    from gan_zoo.metrics.features import extract_features
    from gan_zoo.metrics.generative import fid_sample_problem
    from gan_zoo.metrics.scores import compute_scores

    fake = extract_features(gan, extractor, n=args.eval_samples, seed=123_456, progress=False)
    metrics = ("kid",) if fid_sample_problem(real.n, fake.n, real.mean.shape[0]) else ("kid", "fid")
    return compute_scores(real, fake, metrics=metrics, kid_subset_size=min(1000, real.n, fake.n))


# -------------------------------------------------------------- latent tools
def latent_strips(gan, classifier, run, steps=8):
    """Interpolation strips in z and w, and the classifier's w direction."""
    from gan_zoo.models import latent_tools

    z = gan.latent(8, seed=2024)
    upscale = max(1, 112 // gan.image_size)
    pairs = [(z[i], z[i + 1]) for i in range(0, 8, 2)]
    out = {}
    for space, walk in (("z", latent_tools.interpolate_z), ("w", latent_tools.interpolate_w)):
        strips = [walk(gan, a, b, steps) for a, b in pairs]
        path = latent_tools.save_strips(run.path(f"interpolation_{space}.png"), strips, upscale)
        out[f"interpolation_{space}"] = str(path)
    if classifier is None:
        return out
    probabilities = []

    def malignant(images):
        p = np.asarray(classifier.predict(images, verbose=0))[:, 1]
        probabilities.append(p)
        return p > 0.5

    try:
        vector = latent_tools.attribute_vector(gan, malignant, n=256, seed=7)
        rule = "P(class 1) > 0.5"
    except ValueError:  # one-sided: split at the median instead
        scores = np.concatenate(probabilities)
        threshold = float(np.median(scores))
        vector = latent_tools.attribute_vector(
            gan, lambda x: np.asarray(classifier.predict(x, verbose=0))[:, 1] > threshold, n=256, seed=7)
        rule = f"P(class 1) > its median {threshold:.3f}"
    strips = latent_tools.vector_strips(gan, gan.map_latent(z[:4]), vector["vector"])
    out["w_vector"] = str(latent_tools.save_strips(run.path("w_vector_class1.png"), strips, upscale))
    out["w_vector_rule"] = f"{rule}: {vector['with']} with, {vector['without']} without"
    return out


# ---------------------------------------------------------------------- main
@recipe_main
def main(argv=None):
    args = parse_args(argv)
    run = start_run(NAME, args)
    started = time.perf_counter()
    try:  # data problems: one line, before any training
        train_path, references, data_summary = prepare_data(args, run)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(data_problem_line(error)) from error
    if data_summary["train_tiles"] < args.batch_size:
        raise UsageError(f"{data_summary['source']} gives {data_summary['train_tiles']} training tiles, fewer "
                         f"than one batch of {args.batch_size}: use more images or a smaller --batch-size.")
    print("Tiles: " + ", ".join(f"{data_summary[f'{k}_tiles']} {k}" for k in ("train", "validation", "test")
                                if f"{k}_tiles" in data_summary))

    strategy = get_strategy(args.strategy)
    config = dict(
        stages=args.stages, latent_dim=args.latent_dim, base_channels=args.base_channels,
        initial_channels=args.initial_channels, dense_units=args.dense_units, n_critic=args.n_critic,
        ema_decay=args.ema_decay, orthogonal_regularization=args.orthogonal_regularization,
        augment_policy=args.augment, augment_probability=args.augment_probability,
        augment_adaptive=args.ada, augment_target=args.ada_target, augment_speed_images=args.ada_speed,
        seed=args.seed,
    )
    if 7 * 2**args.stages < 28:
        config["attention_resolution"] = 0 if args.stages == 1 else 14
    elif 7 * 2**args.stages == 28:
        config["attention_resolution"] = 14
    with strategy.scope():
        gan = gan_zoo.load("pathology_gan", **config)
        gan.compile(jit_compile=args.jit)
    size = gan.image_size

    from gan_zoo.metrics.features import extract_features

    extractor, classifier, extractor_summary = build_extractor(args, run, size)
    callbacks = []
    if references["validation"] is not None:
        path, split = references["validation"]
        validation = extract_features(path, extractor, split=split, n=args.eval_real, progress=False)
        callbacks.append(GenerativeEvaluation(
            validation, extractor, reference_split="validation", every_epochs=args.eval_every or args.epochs,
            n=args.eval_samples, seed=10_000, provenance_path=run.path("kid_fid_validation.jsonl"),
        ))
    else:
        print("No validation split: KID / FID only after training, on the test split.")

    def source(start_epoch, epochs):
        return hdf5_training_stream(train_path, batch_size=args.batch_size, image_size=size,
                                    seed=args.seed, start_epoch=start_epoch, epochs=epochs)

    epoch_logs = train_gan(
        gan, source, run, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
        callbacks=callbacks, sample_upscale=max(1, 112 // size),
    )
    gan.save(run.path("pathology_gan.keras"))

    # The test reference is scored once, after training.
    path, split = references["test"]
    test_real = extract_features(path, extractor, split=split, n=args.eval_real, progress=False)
    test = test_scores(gan, extractor, test_real, args)
    run.write_json("kid_fid_test.json", test)
    strips = latent_strips(gan, classifier, run)

    steady = [e for e in epoch_logs if e.get("fit_epoch", 1) > 1] or epoch_logs
    images_per_epoch = data_summary["train_tiles"] // args.batch_size * args.batch_size
    evaluations = [{"epoch": e["epoch"], **{k: e[k] for k in ("kid", "kid_std", "fid") if k in e}}
                   for e in epoch_logs if "kid" in e]
    metrics = {
        "model": NAME,
        "config": gan.get_config(),
        "image_size": size,
        "epochs": len(epoch_logs),
        "final": {k: epoch_logs[-1][k] for k in ("d_loss", "g_loss", "gradient_penalty")
                  if k in epoch_logs[-1]},
        "kid_fid_validation": evaluations,
        "kid_fid_test": {k: test[k] for k in ("kid", "kid_std", "fid") if k in test},
        "kid_fid_protocol": (
            f"{args.eval_samples} generated tiles vs the validation tiles every --eval-every epochs "
            f"and vs {test_real.n} test tiles ({data_summary['test']}) once after training; "
            f"features from {extractor.id}; FID only with more images than feature dimensions; "
            "provenance in kid_fid_validation.jsonl and kid_fid_test.json"
        ),
        "extractor": extractor_summary,
        "data": data_summary,
        "train_images_per_second": float(np.mean([images_per_epoch / e["train_seconds"] for e in steady])),
        # Every epoch's, also those of earlier invocations of a resumed run
        # (each includes its evaluations and sample grid).
        "epoch_seconds": [round(e["seconds"], 1) for e in epoch_logs],
        "train_seconds": float(sum(e["seconds"] for e in epoch_logs)),
        "wall_seconds_this_invocation": time.perf_counter() - started,
        "samples": sorted(str(p) for p in run.path("samples").glob("*.png")),
        "latent_strips": strips,
    }
    run.write_metrics(metrics)
    print(f"\nRun folder: {run.directory}")
    for record in evaluations:
        print(f"  epoch {record['epoch']}: validation KID {record['kid']:.5f}  FID {record.get('fid', float('nan')):.3f}")
    print(f"  test: KID {test['kid']:.5f}  FID {test.get('fid', float('nan')):.3f}")
    return metrics


if __name__ == "__main__":
    sys.exit(main.command_line())
