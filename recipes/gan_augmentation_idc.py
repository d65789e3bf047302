"""GAN augmentation of an IDC classifier (Chi, Fang & Wang): DCGAN v1/v2/v3 and CycleGAN.

On a patient-level split of IDC (patients, never patches, are split 70/15/15):

1. SIFT bag-of-words k-means (k = 4) over the training patients' IDC patches,
   one montage per cluster, and the DCGAN variants trained on one randomly
   chosen cluster (the paper's Fig. 5 experiment);
2. the DCGAN variants trained per class (one generator per class) on the
   training patients (grids per variant: Fig. 5/6);
3. CycleGAN between the classes (A = non-IDC, B = IDC) on the training
   patients, applied to every training patch with its label flipped
   (pairs: Fig. 3), optionally without translations too close to their source;
4. the ResNet-18 transfer classifier trained on Real, CycleGAN only, CycleGAN
   + Real, DCGAN only and DCGAN + Real (per variant), threshold chosen on the
   validation patients (`--operating-point`, default Youden's J), test
   patients scored once: the paper's Table 1 (precision, recall, accuracy)
   plus balanced accuracy and AUROC with DeLong CIs and paired DeLong tests against Real; nearest neighbours of test
   patches that augmentation turned right (Fig. 8);
5. FID / KID of every generator against the real training patches of its
   class, in the feature space of a domain classifier (small_cnn trained on
   the training patients only).

ImageNet weights: `--backbone-weights auto` loads them when they can be
downloaded and otherwise initialises ResNet-18 randomly, saying so loudly in
the output, table.md and metrics.json (`--protocol auto` then fine-tunes every
layer: a frozen random backbone is no feature extractor). `--test-dir` scores
the final classifiers on a separate folder of the same layout.

The defaults are the papers' (64-filter networks, 25-50 GAN epochs, batch-1
CycleGAN, 25 classifier epochs): hours on a CPU even on the demo data. A
quick look at the demo data (a few minutes on 2 CPU cores):

    python recipes/gan_augmentation_idc.py --epochs 1 --dcgan-variants v1,v3 \
        --cluster-variants v1 --dcgan-epochs 1 --dcgan-filters 4 --cyclegan-epochs 1 \
        --cyclegan-filters 4 --cyclegan-batch 8 --domain-epochs 1

The measured IDC run (docs/results/cyclegan.md), about 20 minutes on 2 cores:

    python recipes/gan_augmentation_idc.py --data-dir ../shared/data/idc --train-patches 2400 \
        --dcgan-variants v3 --dcgan-epochs 15 --dcgan-filters 16 --cyclegan-epochs 5 \
        --cyclegan-filters 16 --cyclegan-batch 8 --epochs 3 --learning-rate 0.01
"""

import pathlib
import sys
import time

import numpy as np

import gan_zoo
from gan_zoo import metrics as clinical
from gan_zoo.arguments import fraction, non_negative_int, positive_float, positive_int, seed
from gan_zoo.data import idc
from gan_zoo.data.demo import demo_dir
from gan_zoo.data.sift_clusters import save_cluster_montages, sift_bow_clusters
from gan_zoo.data.streams import unpaired_source
from gan_zoo.metrics.plots import save_loss_curves, save_roc_curves
from gan_zoo.models.dcgan import VARIANTS
from gan_zoo.training import augmentation
from gan_zoo.images import save_image, save_image_grid, tile_images
from gan_zoo.training.classify import predict_scores
from gan_zoo.training.distribute import STRATEGIES, get_strategy
from gan_zoo.training.downstream import load_arrays
from gan_zoo.training.loop import train_gan
from gan_zoo.experiments import Run, recipe_main, recipe_parser, start_run
from gan_zoo.experiments.evaluation import add_operating_point_option, score_split

NAME = "gan_augmentation_idc"
POLICY = idc.IDC_SIZE_POLICY
SIZE = idc.PATCH_SIZE
TABLE = ("precision", "recall", "accuracy", "balanced_accuracy", "auroc")


def parse_args(argv=None):
    parser = recipe_parser(NAME, __doc__, epochs=25, batch_size=64)
    add = parser.add_argument
    add("--split-seed", type=seed, default=0, help="seed of the 70/15/15 patient split")
    add_operating_point_option(parser, "youden")
    add("--train-patches", type=positive_int, default=None,
        help="use a seeded, class-balanced subset of this many training patches (the paper: "
             "3,716 of 5,547); validation and test patients keep all their patches")
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
    add("--min-ssd", type=positive_float, default=None,
        help="drop CycleGAN translations whose sum of squared differences from their source "
             "(pixels in [0, 1]) is below this")
    add("--synthetic-fraction", type=fraction, default=None,
        help="synthetic share of each mixed batch (None: the natural share)")
    add("--backbone-weights", default="auto",
        help="ResNet-18 weights: auto (ImageNet if downloadable, else random), imagenet, none, or a "
             ".weights.h5 file")
    add("--protocol", choices=("auto", "frozen", "full"), default="auto",
        help="frozen conv layers + new head (the paper), full fine-tuning, or auto (frozen with "
             "pretrained weights, full with random ones)")
    add("--learning-rate", type=positive_float, default=1e-3, help="ResNet-18 SGD learning rate")
    add("--domain-epochs", type=positive_int, default=3, help="epochs of the FID/KID domain classifier")
    add("--test-dir", type=pathlib.Path, default=None,
        help="also score the final classifiers on this IDC folder (same layout)")
    add("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    args = parser.parse_args(argv)
    for option, empty_ok in (("dcgan_variants", False), ("cluster_variants", True)):
        given = getattr(args, option)
        variants = [v for v in given.split(",") if v]
        if set(variants) - set(VARIANTS) or not (variants or empty_ok):
            parser.error(f"--{option.replace('_', '-')}: choose from {sorted(VARIANTS)}, got {given!r}")
        setattr(args, option, variants)
    return args


# ------------------------------------------------------------------- data
def subsample(records, count, seed):
    """A seeded subset of `count` records, classes as equal as possible."""
    rng = np.random.default_rng(seed)
    by_class = {c: [r for r in records if r.label == c] for c in (0, 1)}
    share = {0: count // 2, 1: count - count // 2}
    short = {c: max(0, share[c] - len(by_class[c])) for c in (0, 1)}
    share = {c: min(len(by_class[c]), share[c] + short[1 - c]) for c in (0, 1)}
    chosen = [by_class[c][i] for c in (0, 1) for i in np.sort(rng.permutation(len(by_class[c]))[: share[c]])]
    return sorted(chosen, key=lambda r: r.path)


def load_split(args):
    data_dir = args.data_dir or demo_dir("histology")
    dataset = idc.scan_idc(data_dir)
    print(dataset.summary())
    split = idc.idc_split(dataset, scheme="random", seed=args.split_seed)
    records = {name: dataset.records(patients) for name, patients in split.items()}
    if args.train_patches and args.train_patches < len(records["train"]):
        records["train"] = subsample(records["train"], args.train_patches, args.split_seed)
    arrays = {name: load_arrays(recs, (SIZE, SIZE), size_policy=POLICY) for name, recs in records.items()}
    return data_dir, dataset, split, records, arrays


# ------------------------------------------------------------- generators
def train_dcgan(run, name, variant, records, args, strategy):
    batch = min(args.dcgan_batch, len(records))
    with strategy.scope():
        gan = gan_zoo.load("dcgan", variant=variant, image_size=SIZE, base_filters=args.dcgan_filters,
                           seed=args.seed)
        gan.compile(jit_compile=args.jit)
    tic = time.perf_counter()
    logs = train_gan(gan, records, Run(run.path(name), {}), epochs=args.dcgan_epochs, batch_size=batch,
                     seed=args.seed, size_policy=POLICY, cache="memory", sample_upscale=2, verbose=0)
    save_loss_curves(run.path(f"{name}_losses.png"), {k: [e[k] for e in logs] for k in ("d_loss", "g_loss")})
    gan.save(run.path(f"{name}.keras"))
    return gan, {"epochs": len(logs), "seconds": time.perf_counter() - tic, "images": len(records),
                 "final": {k: logs[-1][k] for k in ("d_loss", "g_loss")}}


def cluster_experiment(run, records, arrays, args, strategy):
    """SIFT clusters of the IDC training patches; the variants on one cluster (Fig. 5)."""
    idc_index = np.flatnonzero(arrays["train"][1] == 1)
    clusters = sift_bow_clusters(arrays["train"][0][idc_index], k=args.clusters, seed=args.seed)
    montages = save_cluster_montages(run.path("clusters"), arrays["train"][0][idc_index], clusters)
    chosen = choose_cluster(clusters.sizes, args.dcgan_batch, args.seed)
    report = {"sizes": clusters.sizes.tolist(), "without_keypoints": clusters.without_keypoints,
              "options": clusters.options, "chosen": chosen, "montages": [p.name for p in montages]}
    print(f"SIFT clusters of {len(idc_index)} IDC training patches: sizes {report['sizes']}; "
          f"DCGANs on cluster {chosen}")
    if args.cluster_variants:
        members = [records["train"][i] for i in idc_index[clusters.members(chosen)]]
        report["dcgan"] = {}
        for variant in args.cluster_variants:
            gan, info = train_dcgan(run, f"cluster{chosen}_dcgan_{variant}", variant, members, args, strategy)
            save_image_grid(run.path(f"fig5_cluster{chosen}_dcgan_{variant}.png"),
                            _upscale(gan.generate(32, seed=1234)), rows=4)
            report["dcgan"][variant] = info
    return report


def choose_cluster(sizes, min_size, seed):
    """A random cluster (the paper's choice) among those of at least `min_size` images.

    The paper's randomly chosen cluster held 404 patches; k-means on IDC
    histograms can also leave clusters of a handful of patches (a measured
    run drew one of 2), too few to train a GAN on. The largest cluster when
    none is big enough.
    """
    sizes = np.asarray(sizes)
    eligible = np.flatnonzero(sizes >= min_size)
    if len(eligible) == 0:
        return int(np.argmax(sizes))
    return int(np.random.default_rng(seed).choice(eligible))


def _upscale(images, factor=2):
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def train_cyclegan(run, records, arrays, args, strategy):
    by_class = [[r for r in records["train"] if r.label == c] for c in (0, 1)]
    with strategy.scope():
        gan = gan_zoo.load("cyclegan", image_size=SIZE, generator_filters=args.cyclegan_filters,
                           discriminator_filters=args.cyclegan_filters, seed=args.seed)
        gan.compile(jit_compile=args.jit)
    images, labels = arrays["train"]
    fixed = {"a": images[labels == 0][:8], "b": images[labels == 1][:8]}
    source = unpaired_source(by_class[0], by_class[1], image_size=SIZE, batch_size=args.cyclegan_batch,
                             seed=args.seed, size_policy=POLICY)
    tic = time.perf_counter()
    logs = train_gan(gan, source, Run(run.path("cyclegan"), {}), epochs=args.cyclegan_epochs,
                     batch_size=args.cyclegan_batch, seed=args.seed, sample_inputs=fixed,
                     sample_upscale=2, verbose=0)
    gan.save(run.path("cyclegan.keras"))
    save_loss_curves(run.path("cyclegan_losses.png"),
                     {k: [e[k] for e in logs] for k in ("d_loss", "g_loss", "cycle_loss", "identity_loss")})
    # Fig. 3: real non-IDC / fake IDC, real IDC / fake non-IDC.
    grid, _ = gan.preview(inputs=fixed)
    save_image_grid(run.path("fig3_cyclegan_pairs.png"), _upscale(grid), rows=4)
    return gan, {"epochs": len(logs), "seconds": time.perf_counter() - tic,
                 "final": {k: logs[-1][k] for k in ("d_loss", "g_loss", "cycle_loss")}}


def generator_scores(arrays, synthetic_sets, args):
    """FID / KID per synthetic set and class, in a domain classifier's features."""
    from gan_zoo.metrics.extractors import KerasLayerExtractor
    from gan_zoo.metrics.features import extract_features

    import keras

    keras.utils.set_random_seed(args.seed)
    domain = gan_zoo.load("small_cnn", width=0.5, seed=args.seed)
    augmentation.fit_classifier(domain, arrays["train"], None, epochs=args.domain_epochs,
                                batch_size=64, seed=args.seed, verbose=0)
    extractor = KerasLayerExtractor(domain, "gap", weights_source="small_cnn trained on the training patients")
    images, labels = arrays["train"]
    real = {c: extract_features(images[labels == c], extractor, name=f"train class {c}", split="train",
                                progress=False) for c in (0, 1)}
    scores = {}
    for name, synthetic in synthetic_sets.items():
        for c in (0, 1):
            fake = synthetic.images[synthetic.labels == c]
            if len(fake) < 2:
                continue
            features = extract_features(fake, extractor, name=f"{name} class {c}", progress=False)
            subset = min(1000, real[c].n, features.n)
            found = clinical.compute_scores(real[c], features, metrics=("fid", "kid"), kid_subset_size=subset)
            scores[f"{name} class {c}"] = {"fid": found["fid"], "kid": found["kid"],
                                           "n_real": real[c].n, "n_fake": features.n,
                                           "feature_dimensions": int(features.mean.shape[0]),
                                           "extractor": found["provenance"]["extractor_id"]}
    return scores


# ------------------------------------------------------------ classifiers
def resolve_backbone(args):
    """(backbone_weights for ResNet18Classifier, protocol, note) from --backbone-weights / --protocol."""
    from gan_zoo.models.resnet18_classifier import build_resnet18_backbone

    choice = {"none": None}.get(args.backbone_weights.lower(), args.backbone_weights)
    note = None
    if choice == "auto":
        try:
            build_resnet18_backbone(SIZE, "imagenet")
            choice = "imagenet"
        except RuntimeError as error:
            choice = None
            note = str(error).split(" Offline?")[0]
    protocol = args.protocol
    if protocol == "auto":
        protocol = "frozen" if choice is not None else "full"
    if choice is None:
        banner = "!" * 78
        print(f"\n{banner}\nResNet-18 is RANDOMLY INITIALISED, without ImageNet weights"
              f"{' (' + note + ')' if note else ''}.\nThe paper fine-tunes ImageNet weights; these "
              f"results are NOT comparable with its Table 1. Protocol: {protocol}.\n{banner}\n")
    return choice, protocol, note


def train_classifiers(run, arrays, sets, external, args, backbone):
    import logging
    import warnings

    import keras

    from gan_zoo.models.transfer import RandomWeightsWarning

    weights, protocol, _ = backbone
    real, epochs = arrays["train"], args.epochs
    # (real, synthetic, epochs) per row; the control trains real patches as
    # many steps as the "+ Real" rows take.
    rows = {"Real": (real, None, epochs),
            control_name(args, arrays, sets): (real, None, control_epochs(args, arrays, sets)),
            "CycleGAN": (None, sets["CycleGAN"], epochs),
            "CycleGAN + Real": (real, sets["CycleGAN"], epochs)}
    for variant in args.dcgan_variants:
        rows[f"DCGAN {variant}"] = (None, sets[f"DCGAN {variant}"], epochs)
        rows[f"DCGAN {variant} + Real"] = (real, sets[f"DCGAN {variant}"], epochs)
    results, scores, models, info = {}, {}, {}, {}
    quiet = logging.getLogger("gan_zoo.models.transfer")
    for name, (real, synthetic, epochs) in rows.items():
        keras.utils.set_random_seed(args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomWeightsWarning)  # said once, loudly, above
            quiet.setLevel(logging.ERROR)
            model = gan_zoo.load("resnet18_classifier", backbone_weights=weights, protocol=protocol,
                                 learning_rate=args.learning_rate, seed=args.seed)
            quiet.setLevel(logging.NOTSET)
        tic = time.perf_counter()
        _, stream = augmentation.fit_classifier(
            model, real, synthetic, epochs=epochs, batch_size=args.batch_size,
            synthetic_fraction=None if real is None or synthetic is None else args.synthetic_fraction,
            seed=args.seed, verbose=0)
        scores[name] = {split: predict_scores(model, arrays[split][0], size_policy="error")
                        for split in ("validation", "test")}
        results[name] = score_split(args.operating_point, {s: arrays[s][1] for s in ("validation", "test")},
                                    scores[name])
        if external is not None:
            scores[name]["external"] = predict_scores(model, external[0], size_policy="error")
        info[name] = {"seconds": time.perf_counter() - tic, "epochs": epochs,
                      "examples": stream.num_real + stream.num_synthetic,
                      "synthetic_fraction": stream.synthetic_fraction, "steps_per_epoch": stream.steps_per_epoch}
        models[name] = model
        print(f"  {name}: test AUROC {results[name]['auroc']:.3f} ({info[name]['seconds']:.0f} s)")
    return results, scores, models, info


def control_epochs(args, arrays, sets):
    """Epochs of real-only training with as many steps as the real + CycleGAN runs."""
    n_real = len(arrays["train"][1])
    return max(1, round(args.epochs * (n_real + len(sets["CycleGAN"])) / n_real))


def control_name(args, arrays, sets):
    """The control row: is a "+ Real" gain more than the extra steps it trains?"""
    return f"Real ({control_epochs(args, arrays, sets)} epochs)"


def nearest_neighbour_figure(path, model, arrays, synthetic, correct_now, wrong_before, k=5, rows=4):
    """Fig. 8: test patches that augmentation turned right and their k nearest training patches.

    Neighbours are found in the augmented classifier's pooled features (what
    its head sees) among the real and synthetic training patches. Frames: the
    test patch blue, real neighbours green, synthetic ones magenta.
    """
    import keras

    chosen = np.flatnonzero(correct_now & wrong_before)[:rows]
    if len(chosen) == 0:
        return None
    features = keras.Model(model.inputs, model.get_layer("gap").output)
    pool = np.concatenate([arrays["train"][0], synthetic.images])
    is_synthetic = np.r_[np.zeros(len(arrays["train"][0]), bool), np.ones(len(synthetic), bool)]
    embedded = features.predict(pool, verbose=0, batch_size=256)
    queries = features.predict(arrays["test"][0][chosen], verbose=0)
    tiles = []
    for query, index in zip(queries, chosen):
        nearest = np.argsort(np.square(embedded - query).sum(axis=1))[:k]
        tiles.append(_framed(arrays["test"][0][index], (0.0, 0.3, 1.0)))
        tiles += [_framed(pool[j], (1.0, 0.0, 1.0) if is_synthetic[j] else (0.0, 0.8, 0.0)) for j in nearest]
    save_image(path, tile_images(_upscale(np.asarray(tiles)), rows=len(chosen)))
    return {"test_patches": chosen.tolist(), "synthetic_neighbours": int(sum(
        is_synthetic[np.argsort(np.square(embedded - q).sum(axis=1))[:k]].sum() for q in queries))}


def _framed(image, colour, width=2):
    framed = np.array(image, np.float32, copy=True)
    framed[:width], framed[-width:], framed[:, :width], framed[:, -width:] = (colour,) * 4
    return framed


# ------------------------------------------------------------------- main
@recipe_main
def main(argv=None):
    args = parse_args(argv)
    external = None
    if args.test_dir is not None:  # checked before any training
        external_set = idc.scan_idc(args.test_dir)
        external = load_arrays(external_set.records(), (SIZE, SIZE), size_policy=POLICY)
    run = start_run(NAME, args)
    started = time.perf_counter()
    data_dir, dataset, split, records, arrays = load_split(args)
    backbone = resolve_backbone(args)
    strategy = get_strategy(args.strategy)
    timings, report = {}, {}

    if args.clusters:
        tic = time.perf_counter()
        report["clusters"] = cluster_experiment(run, records, arrays, args, strategy)
        timings["clusters"] = time.perf_counter() - tic

    sets, generators = {}, {}
    counts = np.bincount(arrays["train"][1], minlength=2)
    for variant in args.dcgan_variants:
        per_class = {}
        for c in (0, 1):
            class_records = [r for r in records["train"] if r.label == c]
            per_class[c], generators[f"dcgan_{variant}_class{c}"] = train_dcgan(
                run, f"dcgan_{variant}_class{c}", variant, class_records, args, strategy)
        sets[f"DCGAN {variant}"] = augmentation.generate_labelled(
            per_class, {0: int(counts[0]), 1: int(counts[1])}, seed=args.seed)
        grid = np.concatenate([per_class[c].generate(8, seed=1234) for c in (0, 1)])
        save_image_grid(run.path(f"fig5_dcgan_{variant}_per_class.png"), _upscale(grid), rows=2)

    cyclegan, generators["cyclegan"] = train_cyclegan(run, records, arrays, args, strategy)
    sets["CycleGAN"] = augmentation.translate_labelled(cyclegan, *arrays["train"], min_ssd=args.min_ssd)
    print(f"CycleGAN translations: {len(sets['CycleGAN'])} kept, "
          f"{sets['CycleGAN'].description['dropped_too_close']} dropped as too close to their source")

    tic = time.perf_counter()
    report["generator_scores"] = generator_scores(arrays, sets, args)
    timings["generator_scores"] = time.perf_counter() - tic

    results, scores, models, info = train_classifiers(run, arrays, sets, external, args, backbone)
    y_test = arrays["test"][1]
    control = control_name(args, arrays, sets)
    comparisons = {
        baseline: {name: clinical.delong_paired_test(y_test, scores[name]["test"], scores[baseline]["test"])
                   for name in results if name != baseline and (baseline == "Real" or "+ Real" in name)}
        for baseline in ("Real", control)
    }
    best = f"DCGAN {args.dcgan_variants[-1]} + Real"
    predicted = {n: scores[n]["test"] >= results[n]["threshold"] for n in ("Real", best)}
    report["nearest_neighbours"] = nearest_neighbour_figure(
        run.path("fig8_nearest_neighbours.png"), models[best], arrays, sets[f"DCGAN {args.dcgan_variants[-1]}"],
        correct_now=predicted[best] == y_test.astype(bool), wrong_before=predicted["Real"] != y_test.astype(bool))

    # Report.
    weights_used = models["Real"].weights_used
    header = (f"ResNet-18 weights: {weights_used.upper() if weights_used == 'random' else weights_used}; "
              f"protocol {backbone[1]}; {args.epochs} epochs ({control}: as many steps as the "
              f"+ Real runs); {args.operating_point.describe()}; "
              f"test patients: {', '.join(sorted(split['test'], key=idc_key))}")
    table = clinical.format_metrics_table(results, metrics=TABLE)
    tests = "\n".join(f"- {n} vs {b}: AUROC difference {c['difference']:+.3f}, DeLong p = {c['p_value']:.3g}"
                      for b, found in comparisons.items() for n, c in found.items())
    text = f"{header}\n\n{table}\n\nPaired DeLong tests on the test patches:\n{tests}\n"
    external_results = None
    if external is not None:
        external_results = {n: clinical.evaluate_classifier(external[1], scores[n]["external"],
                                                            threshold=results[n]["threshold"])
                            for n in results}
        text += (f"\n--test-dir {args.test_dir} (thresholds from validation):\n\n"
                 + clinical.format_metrics_table(external_results, metrics=TABLE) + "\n")
    print("\n" + text)
    (run.directory / "table.md").write_text(text)
    save_roc_curves(run.path("roc_test.png"), {n: (y_test, s["test"]) for n, s in scores.items()})
    run.write_metrics({
        "test_metrics": results,
        "delong_vs_real": comparisons["Real"],
        "delong_vs_real_same_steps": {"baseline": control, **comparisons[control]},
        "external_test_metrics": external_results,
        "classifier": {"weights_used": weights_used, "weights_note": backbone[2], "protocol": backbone[1],
                       "epochs": args.epochs, "batch_size": args.batch_size, "runs": info},
        "generators": generators,
        "synthetic_sets": {n: {**s.description, "size": len(s), "class_counts": s.class_counts()}
                           for n, s in sets.items()},
        **report,
        "seconds": timings,
        "wall_seconds": time.perf_counter() - started,
        "data": {
            "source": str(data_dir), "split": "random 70/15/15 by patient",
            "patients": {k: sorted(v, key=idc_key) for k, v in split.items()},
            "patches": {k: len(v) for k, v in records.items()},
            "class_counts": {k: np.bincount(a[1], minlength=2).tolist() for k, a in arrays.items()},
            "train_patches_option": args.train_patches,
        },
    })
    print(f"Run folder: {run.directory}")
    return results


def idc_key(patient):
    return (len(str(patient)), str(patient))


if __name__ == "__main__":
    sys.exit(main.command_line())
