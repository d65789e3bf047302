"""`gan-zoo score`: FID, KID, precision/recall and density/coverage of a generator."""

import json
import pathlib

from gan_zoo.arguments import HelpFormatter, positive_int, seed
from gan_zoo.errors import UsageError
from gan_zoo.cli.loading import load_checkpoint, require_generator

EXTRACTORS = ("inception", "keras")
METRICS = ("fid", "kid", "precision_recall", "density_coverage")


def add_parser(commands):
    """Adds `score` to the `gan-zoo` sub-command parsers.

    Args:
        commands: the object `ArgumentParser.add_subparsers` returned.
    """
    p = commands.add_parser(
        "score", help="FID/KID/precision-recall of a trained generator against real images",
        description="Scores a generator's samples against reference images with a feature\n"
        "extractor, and prints every score with its provenance (extractor and its\n"
        "weights' sha256, mode, sizes, n, seeds, reference). Reference statistics\n"
        "can be cached (--cache) and are reused only for the same extractor.\n\n"
        "Extractors: 'inception' = Keras' Inception-V3 pool_3 (ImageNet weights,\n"
        "downloaded when online, or --extractor-weights FILE.h5; NOT the TTUR/TF-GAN\n"
        "FID graph, so absolute FIDs differ from papers'); 'keras' = a layer of a\n"
        "saved Keras model (--extractor-model M.keras --extractor-layer NAME), e.g. a\n"
        "zoo classifier trained on the same domain's training patients.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="RUN_OR_MODEL",
                   help="a .keras generator, or a run folder holding one")
    p.add_argument("--reference", required=True, metavar="DIR|FILE.h5",
                   help="real images: an image folder (e.g. validation patients) or an HDF5 file")
    p.add_argument("--reference-split", default="validation",
                   help="the reference's split: recorded, and the HDF5 key <split>_img")
    p.add_argument("--extractor", choices=EXTRACTORS, default="inception", help="feature extractor")
    p.add_argument("--mode", choices=("legacy", "clean"), default="legacy",
                   help="Inception resizing: legacy = TF-GAN/TTUR bilinear without antialiasing; "
                   "clean = antialiased resize from uint8 (Parmar et al. 2022)")
    p.add_argument("--extractor-weights", default=None, metavar="FILE.h5",
                   help="local Inception-V3 weights (default: ImageNet, downloaded)")
    p.add_argument("--extractor-model", default=None, metavar="MODEL.keras",
                   help="the Keras model of --extractor keras")
    p.add_argument("--extractor-layer", default=None,
                   help="its layer whose output are the features (default: its output)")
    p.add_argument("--allow-channel-mismatch", action="store_true",
                   help="score a generator against references with another channel count "
                        "(e.g. an RGB generator against grayscale mammograms)")
    p.add_argument("--allow-random-extractor", action="store_true",
                   help="Inception with random weights (for tests only; the scores say so)")
    p.add_argument("--n", type=positive_int, default=5000, help="generated images")
    p.add_argument("--n-reference", type=positive_int, default=None,
                   help="reference images (default: all)")
    p.add_argument("--metrics", default=",".join(METRICS),
                   help=f"comma-separated, of {', '.join(METRICS)}")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the generated images, KID subsets and --allow-random-extractor weights")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per extractor batch")
    p.add_argument("--cache", default=None, metavar="FILE.npz",
                   help="cache of the reference statistics (reused for the same extractor only)")
    p.add_argument("--json", default=None, metavar="FILE.json", help="also write the scores here")
    p.set_defaults(handler=run)
    return p


def _find_model(path):
    path = pathlib.Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.keras"))
        if len(found) != 1:
            raise UsageError(
                f"{path} holds {len(found)} .keras files; name the model file itself."
            )
        path = found[0]
    return path


def _extractor(args):
    from gan_zoo.metrics.extractors import InceptionV3Extractor, KerasLayerExtractor

    if args.extractor == "keras":
        if not args.extractor_model:
            raise UsageError("--extractor keras needs --extractor-model MODEL.keras.")
        network = load_checkpoint(args.extractor_model)
        try:
            return KerasLayerExtractor(network, args.extractor_layer,
                                       weights_source=str(args.extractor_model))
        except ValueError as error:
            raise UsageError(f"--extractor-model {args.extractor_model}: {error}") from None
    weights = args.extractor_weights or "imagenet"
    if args.allow_random_extractor and not args.extractor_weights:
        weights = None
    if weights not in ("imagenet", None) and not pathlib.Path(weights).is_file():
        raise UsageError(f"--extractor-weights {weights} does not exist.")
    try:
        return InceptionV3Extractor(weights=weights, mode=args.mode,
                                    allow_random=args.allow_random_extractor, random_seed=args.seed)
    except Exception as error:  # the ImageNet download fails offline
        if weights == "imagenet":
            raise UsageError(
                f"Cannot load Inception-V3's ImageNet weights ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}); pass a local file "
                "with --extractor-weights, or use --extractor keras."
            ) from None
        raise


def run(args):
    """Scores the generator and prints the values with their provenance.

    Args:
        args: the parsed `score` options.
    """
    from gan_zoo.metrics.features import extract_features, reference_statistics
    from gan_zoo.metrics.scores import channel_mismatch, compute_scores

    metrics = tuple(m for m in args.metrics.split(",") if m)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise UsageError(f"--metrics {args.metrics!r}: choose from {', '.join(METRICS)}.")
    reference = pathlib.Path(args.reference)
    if not reference.exists():
        raise UsageError(f"--reference {reference} does not exist.")
    model_path = _find_model(args.model)
    model = load_checkpoint(model_path)
    require_generator(model, model_path)
    extractor = _extractor(args)
    options = dict(batch_size=args.batch_size, progress=True)
    try:
        real = reference_statistics(
            reference, extractor, cache=args.cache, split=args.reference_split,
            n=args.n_reference, **options,
        )
    except ValueError as error:
        raise UsageError(f"--reference {reference}: {error}") from None
    fake = extract_features(model, extractor, n=args.n, seed=args.seed,
                            name=str(model_path), **options)
    mismatch = channel_mismatch(real, fake)
    if mismatch and not args.allow_channel_mismatch:
        raise UsageError(f"{mismatch} Pass --allow-channel-mismatch if that is intended.")
    scores = compute_scores(real, fake, metrics=metrics, seed=args.seed)
    provenance = scores.pop("provenance")
    print()
    for name, value in scores.items():
        print(f"{name:>16}: {value:.6g}" if isinstance(value, float) else f"{name:>16}: {value}")
    print("provenance:")
    for name, value in provenance.items():
        print(f"  {name}: {value}")
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**scores, "provenance": provenance}, indent=2, default=str) + "\n")
        print(f"Wrote {path}.")
    return 0
