"""The generators of Chi, Fang & Wang's GAN-augmentation study on IDC.

- `subsample`: a seeded, class-balanced subset of the training patches;
- `GanTrainer`: the DCGANs (per class or per cluster) and the CycleGAN
  between the classes, each trained in its own sub-folder of the run (it
  resumes from its own backup), with loss curves and the paper's Fig. 3 and
  Fig. 5 grids, and the synthetic training sets they make;
- `cluster_experiment` / `choose_cluster`: SIFT bag-of-words clusters of
  the IDC training patches and DCGANs on one of them (Fig. 5);
- `fit_domain_classifier` / `generator_scores`: FID / KID of every
  generator in the features of a small CNN trained on the training patients.

The classifiers of the study: `gan_zoo.training.augmentation_study`.
"""

import dataclasses
import time

import numpy as np

import gan_zoo
from gan_zoo.data import idc
from gan_zoo.data.sift_clusters import save_cluster_montages, sift_bow_clusters
from gan_zoo.data.streams import unpaired_source
from gan_zoo.images import save_image_grid
from gan_zoo.metrics.plots import save_loss_curves
from gan_zoo.training.augmentation import fit_on_mix, generate_labelled, translate_labelled
from gan_zoo.training.loop import train_gan

SIZE = idc.PATCH_SIZE
POLICY = idc.IDC_SIZE_POLICY


def subsample(records, count, seed):
    """A seeded subset of `count` records, classes as equal as possible.

    Args:
        records: labelled records (labels 0 and 1).
        count: records to keep; a class short of its half gives its
            shortfall to the other.
        seed: seed of the draw.

    Returns:
        The chosen records, sorted by path.
    """
    rng = np.random.default_rng(seed)
    by_class = {c: [r for r in records if r.label == c] for c in (0, 1)}
    share = {0: count // 2, 1: count - count // 2}
    short = {c: max(0, share[c] - len(by_class[c])) for c in (0, 1)}
    share = {c: min(len(by_class[c]), share[c] + short[1 - c]) for c in (0, 1)}
    chosen = [by_class[c][i] for c in (0, 1) for i in np.sort(rng.permutation(len(by_class[c]))[: share[c]])]
    return sorted(chosen, key=lambda r: r.path)


def upscale(images, factor=2):
    """Nearest-neighbour magnification of `[N, H, W, C]` images (50 px patches are small)."""
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


# ------------------------------------------------------------- generators
# `GanTrainer` fields a recipe takes from its options of the same names.
GAN_OPTIONS = ("seed", "jit", "dcgan_filters", "dcgan_epochs", "dcgan_batch", "cyclegan_filters",
               "cyclegan_epochs", "cyclegan_batch", "cyclegan_decay")


@dataclasses.dataclass
class GanTrainer:
    """Trains the study's generators into a run folder.

    Args:
        run: the run (its `path(name)` receives models, curves and figures).
        folder: `name -> Run` of a sub-folder, where `train_gan` keeps that
            generator's backup, samples and logs.
        strategy: the `tf.distribute` strategy.
        seed: seed of weights, data order and samples.
        jit: XLA-compile the train steps.
        dcgan_filters, dcgan_epochs, dcgan_batch: DCGAN width, epochs (None:
            the variant's) and batch size (capped by the images).
        cyclegan_filters, cyclegan_epochs, cyclegan_batch: the CycleGAN's.
        cyclegan_decay: its rate schedule, `CycleGAN(lr_decay=...)`: "run"
            (the reference's halves of the epochs trained) or "reference".
    """

    run: object
    folder: object
    strategy: object
    seed: int
    jit: bool
    dcgan_filters: int
    dcgan_epochs: int
    dcgan_batch: int
    cyclegan_filters: int
    cyclegan_epochs: int
    cyclegan_batch: int
    cyclegan_decay: str = "run"

    def dcgan(self, name, variant, records):
        """An unconditional DCGAN `variant` trained on `records`: (model, JSON info)."""
        with self.strategy.scope():
            gan = gan_zoo.load("dcgan", variant=variant, image_size=SIZE, base_filters=self.dcgan_filters,
                               seed=self.seed)
            gan.compile(jit_compile=self.jit)
        tic = time.perf_counter()
        logs = train_gan(gan, records, self.folder(name), epochs=self.dcgan_epochs,
                         batch_size=min(self.dcgan_batch, len(records)), seed=self.seed, size_policy=POLICY,
                         cache="memory", sample_upscale=2, verbose=0)
        save_loss_curves(self.run.path(f"{name}_losses.png"),
                         {k: [e[k] for e in logs] for k in ("d_loss", "g_loss")})
        self.run.save_model(gan, f"{name}.keras")
        return gan, {"epochs": len(logs), "seconds": time.perf_counter() - tic, "images": len(records),
                     "final": {k: logs[-1][k] for k in ("d_loss", "g_loss")}}

    def per_class_dcgans(self, variant, records):
        """One DCGAN per class (0, 1) and the Fig. 5 grid: ({class: model}, {name: info})."""
        models, info = {}, {}
        for c in (0, 1):
            name = f"dcgan_{variant}_class{c}"
            models[c], info[name] = self.dcgan(name, variant, [r for r in records if r.label == c])
        grid = np.concatenate([models[c].generate(8, seed=1234) for c in (0, 1)])
        save_image_grid(self.run.path(f"fig5_dcgan_{variant}_per_class.png"), upscale(grid), rows=2)
        return models, info

    def cyclegan(self, records, arrays):
        """CycleGAN between non-IDC (A) and IDC (B) training patches: (model, JSON info)."""
        with self.strategy.scope():
            gan = gan_zoo.load("cyclegan", image_size=SIZE, generator_filters=self.cyclegan_filters,
                               discriminator_filters=self.cyclegan_filters, lr_decay=self.cyclegan_decay,
                               seed=self.seed)
            gan.compile(jit_compile=self.jit)
        images, labels = arrays
        fixed = {"a": images[labels == 0][:8], "b": images[labels == 1][:8]}
        source = unpaired_source([r for r in records if r.label == 0], [r for r in records if r.label == 1],
                                 image_size=SIZE, batch_size=self.cyclegan_batch, seed=self.seed,
                                 size_policy=POLICY)
        tic = time.perf_counter()
        logs = train_gan(gan, source, self.folder("cyclegan"), epochs=self.cyclegan_epochs,
                         batch_size=self.cyclegan_batch, seed=self.seed, sample_inputs=fixed,
                         sample_upscale=2, verbose=0)
        self.run.save_model(gan, "cyclegan.keras")
        save_loss_curves(self.run.path("cyclegan_losses.png"),
                         {k: [e[k] for e in logs] for k in ("d_loss", "g_loss", "cycle_loss", "identity_loss")})
        # Fig. 3: real non-IDC / fake IDC, real IDC / fake non-IDC.
        grid, _ = gan.preview(inputs=fixed)
        save_image_grid(self.run.path("fig3_cyclegan_pairs.png"), upscale(grid), rows=4)
        return gan, {"epochs": len(logs), "seconds": time.perf_counter() - tic,
                     "final": {k: logs[-1][k] for k in ("d_loss", "g_loss", "cycle_loss")}}

    def synthetic_sets(self, records, arrays, variants, min_ssd, per_class=None):
        """The study's synthetic training sets and the generators that made them.

        Per DCGAN variant, one generator per class draws as many patches of
        each class as the real training set holds (the project's reading: the
        paper gives no count; `per_class` sets another); the CycleGAN translates every real
        training patch into the other class, its label flipped (one
        translation per real patch, whatever `per_class`).

        Args:
            records: the training records, in `arrays` order.
            arrays: `(images, labels)` of the training patches.
            variants: the DCGAN variants.
            min_ssd: drop translations closer than this to their source (None: keep all).
            per_class: patches each DCGAN draws per class (None: the real counts).

        Returns:
            `({"DCGAN <v>": SyntheticSet, ..., "CycleGAN": SyntheticSet}, {generator: JSON info})`.
        """
        sets, generators = {}, {}
        counts = np.bincount(arrays[1], minlength=2)
        for variant in variants:
            generators_of, info = self.per_class_dcgans(variant, records)
            generators.update(info)
            sizes = {c: int(counts[c]) if per_class is None else int(per_class) for c in (0, 1)}
            sets[f"DCGAN {variant}"] = generate_labelled(generators_of, sizes, seed=self.seed)
        cyclegan, generators["cyclegan"] = self.cyclegan(records, arrays)
        sets["CycleGAN"] = translate_labelled(cyclegan, *arrays, min_ssd=min_ssd)
        print(f"CycleGAN translations: {len(sets['CycleGAN'])} kept, "
              f"{sets['CycleGAN'].description['dropped_too_close']} dropped as too close to their source")
        return sets, generators


def describe_sets(sets):
    """JSON of `{name: SyntheticSet}`: how each was made, its size and class counts."""
    return {name: {**s.description, "size": len(s), "class_counts": s.class_counts()} for name, s in sets.items()}


def cluster_experiment(trainer, records, arrays, *, clusters, variants):
    """SIFT clusters of the IDC training patches; the DCGAN variants on one cluster (Fig. 5).

    Args:
        trainer: the `GanTrainer`.
        records: the training records, in `arrays` order.
        arrays: `(images, labels)` of the training patches.
        clusters: k of the k-means.
        variants: DCGAN variants trained on the chosen cluster (may be empty).

    Returns:
        JSON: cluster sizes, the chosen cluster, montages and each DCGAN's info.
    """
    idc_index = np.flatnonzero(arrays[1] == 1)
    found = sift_bow_clusters(arrays[0][idc_index], k=clusters, seed=trainer.seed)
    montages = save_cluster_montages(trainer.run.path("clusters"), arrays[0][idc_index], found)
    chosen = choose_cluster(found.sizes, trainer.dcgan_batch, trainer.seed)
    report = {"sizes": found.sizes.tolist(), "without_keypoints": found.without_keypoints,
              "options": found.options, "chosen": chosen, "montages": [p.name for p in montages]}
    print(f"SIFT clusters of {len(idc_index)} IDC training patches: sizes {report['sizes']}; "
          f"DCGANs on cluster {chosen}")
    if variants:
        members = [records[i] for i in idc_index[found.members(chosen)]]
        report["dcgan"] = {}
        for variant in variants:
            gan, report["dcgan"][variant] = trainer.dcgan(f"cluster{chosen}_dcgan_{variant}", variant, members)
            save_image_grid(trainer.run.path(f"fig5_cluster{chosen}_dcgan_{variant}.png"),
                            upscale(gan.generate(32, seed=1234)), rows=4)
    return report


def choose_cluster(sizes, min_size, seed):
    """A random cluster (the paper's choice) among those of at least `min_size` images.

    The paper's randomly chosen cluster held 404 patches; k-means on IDC
    histograms can also leave clusters of a handful of patches (a measured
    run drew one of 2), too few to train a GAN on. The largest cluster when
    none is big enough.

    Args:
        sizes: images per cluster.
        min_size: the fewest images a cluster needs to be drawn (a batch).
        seed: seed of the draw.
    """
    sizes = np.asarray(sizes)
    eligible = np.flatnonzero(sizes >= min_size)
    if len(eligible) == 0:
        return int(np.argmax(sizes))
    return int(np.random.default_rng(seed).choice(eligible))


def fit_domain_classifier(train, *, epochs, seed):
    """The FID / KID feature network: a small CNN trained on the training patches.

    Args:
        train: `(images, labels)` of the training patients.
        epochs: training epochs.
        seed: seed of weights and data order.

    Returns:
        `(model, JSON info)`, as `gan_zoo.experiments.train_once` takes them.
    """
    import keras

    keras.utils.set_random_seed(seed)
    domain = gan_zoo.load("small_cnn", width=0.5, seed=seed)
    fit_on_mix(domain, train, None, epochs=epochs, batch_size=64, seed=seed, verbose=0)
    return domain, {"what": "small_cnn trained on the training patients", "epochs": epochs}


def generator_scores(domain, train, synthetic_sets, weights_source):
    """FID / KID per synthetic set and class against the real training patches of that class.

    Args:
        domain: the domain classifier (`fit_domain_classifier`); features
            are its "gap" layer.
        train: `(images, labels)` of the real training patches.
        synthetic_sets: `{name: SyntheticSet}`.
        weights_source: where the domain classifier's weights come from.

    Returns:
        `{"<set> class <c>": {"fid", "kid", "n_real", "n_fake", ...}}`; a
        class with fewer than 2 synthetic images is left out.
    """
    from gan_zoo.metrics.extractors import KerasLayerExtractor
    from gan_zoo.metrics.features import extract_features
    from gan_zoo.metrics.scores import compute_scores

    extractor = KerasLayerExtractor(domain, "gap", weights_source=weights_source)
    images, labels = train
    real = {c: extract_features(images[labels == c], extractor, name=f"train class {c}", split="train",
                                progress=False) for c in (0, 1)}
    scores = {}
    for name, synthetic in synthetic_sets.items():
        for c in (0, 1):
            fake = synthetic.images[synthetic.labels == c]
            if len(fake) < 2:
                continue
            features = extract_features(fake, extractor, name=f"{name} class {c}", progress=False)
            found = compute_scores(real[c], features, metrics=("fid", "kid"),
                                   kid_subset_size=min(1000, real[c].n, features.n))
            scores[f"{name} class {c}"] = {"fid": found["fid"], "kid": found["kid"],
                                           "n_real": real[c].n, "n_fake": features.n,
                                           "feature_dimensions": int(features.mean.shape[0]),
                                           "extractor": found["provenance"]["extractor_id"]}
    return scores


# ------------------------------------------------------------ classifiers
