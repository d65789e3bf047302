"""The steps of ciGAN's study (Wu, Wu, Cox & Lotter 2018) on mammogram patches.

ciGAN paints a malignant lesion into a patch through a mask, or removes one,
and the paper asks whether ResNet-50 classifies malignant lesion patches
better when its training set is augmented with such patches. The study's
steps, on `PatchSet`s of one patient split
(`gan_zoo.data.mammography.lesion_patches`):

- `split_patches`: each part's patches; `patches_as_split` makes them the
  records a `gan_zoo.experiments.Comparison` scores.
- `feature_weights`: the network of ciGAN's feature loss (`--feature-network`),
  ImageNet VGG-19 or the documented domain substitute trained on the
  training patients (`train_domain_network`).
- `train_cigan`: ciGAN on the training patients' patches (lesion-free ones
  borrow a lesion's mask), resumable through `train_gan`.
- `synthesize` and `save_figure1`: the augmentation set, and the paper's
  Fig. 1 grid of test patches.
- `train_regime`: ResNet-50 in one of the three rows of Table 1 (`REGIMES`),
  from `backbone_weights`' initial weights, through the project's one
  classifier-training path (`gan_zoo.training.classify.fit_classifier`:
  resumable, the last or the best-on-validation weights kept).
- `table_one`: Table 1's layout, AUROC with DeLong's 95% CI and the paired
  DeLong p-value of each row against every row above it (`row_pairs`).
"""

import collections
import dataclasses
import math

import keras
import numpy as np

import gan_zoo
from gan_zoo.data.mammography.lesion_patches import augmentation_masks, borrowed_masks, sample_patches
from gan_zoo.data.streams import StreamSource, mixed_batches, training_streams
from gan_zoo.images import save_image_grid
from gan_zoo.models.feature_networks import DOMAIN_LAYERS, load_feature_network
from gan_zoo.training.classify import fit_classifier
from gan_zoo.training.curriculum import Curriculum
from gan_zoo.training.distribute import get_strategy
from gan_zoo.training.domain_classifier import train_domain_classifier
from gan_zoo.training.loop import train_gan

# Row of Table 1 -> (traditional augmentation, ciGAN data); the first row is
# the real-only reference the others are compared with.
REGIMES = {
    "Baseline (no augmentation)": (False, False),
    "Traditional augmentation": (True, False),
    "ciGAN + Traditional aug": (True, True),
}
TABLE_KEYS = ("auroc", "auroc_ci_low", "auroc_ci_high", "n", "n_positive")  # Table 1's JSON

# One scored patch: `Comparison` reads its patient, label and where it comes from.
PatchRecord = collections.namedtuple("PatchRecord", "patient label path")


def split_patches(split, *, patch_size, normal_per_image, target_height, seed):
    """`{part: PatchSet}` of a patient `Split` of mammograms (`sample_patches` of each part).

    Args:
        split: the `Split` of `MammogramRecord`s.
        patch_size: patch side in pixels.
        normal_per_image: lesion-free patches per image.
        target_height: resize each mammogram to this height first (None: as is).
        seed: seed of the patch positions.
    """
    return {part: sample_patches(records, patch_size=patch_size, normal_per_image=normal_per_image,
                                 target_height=target_height, seed=seed)
            for part, records in split.parts.items()}


def patches_as_split(split, patches):
    """`split` with each part's patches as its records (`PatchRecord`s), for scoring them.

    Args:
        split: the mammograms' `Split` (its name and note are kept).
        patches: `split_patches`' result; a record's `path` is
            `<image>@<top>,<left>` of its patch.
    """
    return dataclasses.replace(split, patient=lambda record: record.patient, parts={
        part: [PatchRecord(str(patient), int(label), f"{source}@{top},{left}")
               for patient, label, source, (top, left) in zip(p.patients, p.labels, p.sources, p.corners)]
        for part, p in patches.items()})


def regime_slug(regime):
    """The regime's name in file names: none, traditional, traditional_cigan."""
    augment, use_gan = REGIMES[regime]
    return ("traditional" if augment else "none") + ("_cigan" if use_gan else "")


def patch_source(images, labels, what):
    """A cached `StreamSource` of uint8 patches read as [0, 1] grayscale.

    Args:
        images: uint8 [N, S, S].
        labels: [N] class labels.
        what: the source's name in messages.
    """
    import tensorflow as tf

    pixels = np.asarray(images, np.uint8)[..., None]
    dataset = tf.data.Dataset.from_tensor_slices({"image": pixels, "label": np.asarray(labels, np.int32)})
    return StreamSource(dataset, image_size=pixels.shape[1], channels=1, value_range=(0.0, 1.0),
                        cache="memory", labels=True, what=what)


def feature_weights(choice, patches, run, *, seed, steps, keep):
    """ciGAN's `feature_weights` for `--feature-network`, and what the network is.

    Args:
        choice: "auto" (ImageNet VGG-19, else the domain substitute, said
            loudly), "imagenet", "domain", "random" (said to be no result),
            or a VGG-19 `.h5` / domain `.keras` file.
        patches: `{"train", "validation"}` -> `PatchSet`, for the substitute.
        run: the run folder that keeps the substitute.
        seed: the substitute's seed.
        steps: the substitute's Adam steps.
        keep: `gan_zoo.experiments.train_once` (given by the caller: this
            layer sits below it): the substitute is trained once per run
            folder and read back on resume, so that a resumed GAN keeps the
            feature loss it started with.

    Returns:
        `(feature_weights, description)`; the description has `kind`,
        `source` and `layers` (`describe_feature_network` reads them).
    """
    if choice in ("auto", "imagenet"):
        try:
            return "imagenet", load_feature_network("imagenet")[1]
        except RuntimeError as error:
            if choice == "imagenet":
                raise
            print(f"\n*** {error}\n*** --feature-network auto: using the DOMAIN SUBSTITUTE (a VGG-style "
                  "lesion-vs-normal classifier trained on the training patients), not ImageNet VGG-19.\n")
    if choice in ("auto", "domain"):
        _, info = keep(run, "feature_network", lambda: train_domain_network(patches, seed=seed, steps=steps))
        return str(run.path(info["file"])), info
    if choice == "random":
        print("\n*** --feature-network random: the feature loss uses RANDOM VGG-19 weights; this is not a result.\n")
    return choice, load_feature_network(choice)[1]


def train_domain_network(patches, *, seed, steps):
    """The feature loss's domain substitute: `(classifier, description)`.

    It learns lesion vs lesion-free on the training patients' patches only
    (it becomes part of the GAN's loss) and reports its accuracy on the
    validation patients'.

    Args:
        patches: `{"train", "validation"}` -> `PatchSet`.
        seed: seed of its weights and data order.
        steps: Adam steps.
    """
    train, validation = patches["train"], patches["validation"]
    classifier, report = train_domain_classifier(
        train.images, train.has_lesion.astype(np.int32), seed=seed, steps=steps,
        validation=(validation.images, validation.has_lesion.astype(np.int32)))
    # The source names the run folder's file, not its absolute path, so that
    # a run's results do not depend on where its folder lies.
    return classifier, {"kind": "domain_classifier", "layers": list(DOMAIN_LAYERS),
                        "source": "feature_network.keras of this run", **report}


def train_cigan(patches, run, *, config, batch_size, epochs=None, seed=0, strategy="auto", jit=False):
    """ciGAN trained on the training patients' patches; resumes from `run`'s backup.

    Args:
        patches: `{"train", "validation"}` -> `PatchSet`; the first 8
            validation patches are the fixed inputs of the sample grids.
        run: the run folder (receives backups, grids, `cigan.keras`,
            `cigan.weights.h5` and `cigan_config.json`).
        config: `gan_zoo.load("cigan", **config)` options.
        batch_size: global batch size.
        epochs: total epochs (None: the model's `paper_epochs`).
        seed: seed of the data order and the borrowed masks.
        strategy: `tf.distribute` strategy name.
        jit: XLA-compile the train step.

    Returns:
        `(gan, summary)`: epochs, steps, the final phase and the last epoch's logs.
    """
    train = patches["train"]
    masks = borrowed_masks(train, seed=seed)  # lesion-free patches borrow a lesion's mask
    with get_strategy(strategy).scope():
        gan = gan_zoo.load("cigan", **config)
        gan.compile(jit_compile=jit)
    images = patch_source(train.images, train.labels, "ciGAN patches")
    mask_pixels = patch_source(masks * 255, train.labels, "ciGAN masks")  # {0, 255} -> {0, 1}

    def source(start_epoch, epoch_count):
        return training_streams({"images": images, "masks": mask_pixels}, batch_size=batch_size, seed=seed,
                                start_epoch=start_epoch, epochs=epoch_count, pairing="aligned")

    steps_per_epoch = source(0, 1).steps_per_epoch
    epochs = epochs or gan.paper_epochs(steps_per_epoch)
    validation = patches["validation"]
    fixed = np.arange(min(8, len(validation)))
    sample = (validation.unit_images()[fixed], borrowed_masks(validation, seed)[fixed], validation.labels[fixed])
    logs = train_gan(gan, source, run, epochs=epochs, batch_size=batch_size, seed=seed,
                     sample_inputs=sample, sample_upscale=2)
    run.save_model(gan, "cigan.keras")
    gan.save_weights(run.path("cigan.weights.h5"))  # with cigan_config.json: what the notebook loads
    run.write_json("cigan_config.json", {k: v for k, v in gan.get_config().items() if k != "name"})
    return gan, {"epochs": epochs, "steps": epochs * steps_per_epoch, "steps_per_epoch": steps_per_epoch,
                 "final_phase": gan.current_phase().name, "last_epoch": logs[-1] if logs else {}}


def synthesize(gan, patches, seed):
    """ciGAN's augmentation set of `patches`: (uint8 images, target labels).

    Each malignant patch has its lesion removed; each other patch gets a
    malignant lesion painted through another malignant lesion's mask.

    Args:
        gan: the trained ciGAN.
        patches: the training patients' `PatchSet`.
        seed: seed of the borrowed masks and the generator's noise.
    """
    masks, targets = augmentation_masks(patches, seed=seed)
    images = gan.infill(patches.unit_images(), masks.astype(np.float32), targets, seed=seed)
    return np.round(images[..., 0] * 255).astype(np.uint8), targets


def save_figure1(gan, patches, path, seed, per_class=4):
    """Fig. 1 rows of `patches` (original, input, synthetic of the other class).

    Args:
        gan: the trained ciGAN.
        patches: the test patients' `PatchSet`.
        path: the PNG to write (returned).
        seed: seed of the chosen patches, masks and noise.
        per_class: malignant -> non-malignant rows first, then as many
            rows the other way; enlarged 2x.
    """
    masks, targets = augmentation_masks(patches, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for label in (1, 0):
        index = np.flatnonzero(patches.labels == label)
        rows.extend(rng.choice(index, size=min(per_class, index.size), replace=False).tolist())
    rows = np.asarray(rows, int)
    grid, count = gan.figure_rows(patches.unit_images()[rows], masks[rows], 1 - targets[rows], seed=seed)
    save_image_grid(path, np.repeat(np.repeat(grid, 2, axis=1), 2, axis=2), count)
    return path


def backbone_weights(choice, patch_size):
    """ResNet-50's initial weights for `--backbone-weights`, and a note for the results.

    Args:
        choice: "auto" (ImageNet, else random init, said loudly),
            "imagenet", "none", or a no-top weights file.
        patch_size: the input side ImageNet weights are loaded for.
    """
    if choice in ("auto", "imagenet"):
        try:
            keras.applications.ResNet50(include_top=False, weights="imagenet", input_shape=(patch_size, patch_size, 3))
            return "imagenet", "ImageNet (as in the paper)"
        except Exception as error:  # noqa: BLE001 - keras raises a bare Exception offline
            if choice == "imagenet":
                raise RuntimeError(f"--backbone-weights imagenet: {str(error).splitlines()[0]}") from None
            print("\n*** ResNet-50 ImageNet weights unavailable: the classifiers are trained FROM "
                  "SCRATCH (random init), unlike the paper.\n")
    if choice in ("auto", "none"):
        return None, "random init (ImageNet weights unavailable): NOT the paper's setting"
    return choice, f"file {choice}"


def train_regime(regime, patches, synthetic, run, *, weights, patch_size, learning_rate, steps, eval_every,
                 curriculum_every, batch_size, seed, keep="last", callbacks=()):
    """ResNet-50 in one row of Table 1, and its scores.

    Training runs in chunks of `eval_every` steps; after each chunk the
    validation AUROC is computed and the best weights kept. The last
    weights (`keep="last"`, the paper's fixed number of iterations) or the
    best (`keep="best"`) then score the validation and test patches.
    Interrupted, it resumes from `backup-<slug>` in `run` with the same
    batches.

    Args:
        regime: a key of `REGIMES`.
        patches: `{"train", "validation", "test"}` -> `PatchSet`.
        synthetic: `synthesize`'s (images, labels) of the training patches.
        run: the run folder.
        weights: `backbone_weights`' choice.
        patch_size: input side.
        learning_rate: Adam learning rate.
        steps: training steps (rounded up to whole chunks).
        eval_every: steps between validation AUROCs.
        curriculum_every: steps between +20 points of real share (the
            ciGAN row: 50% real at first, up to 90%).
        batch_size: batch size.
        seed: seed of init, order and augmentation.
        keep: "last" or "best" (see above).
        callbacks: extra Keras callbacks, run before the backup is written.

    Returns:
        JSON: the best validation AUROC and its step, the steps, the
        regime, and `scores` `{"validation": [...], "test": [...]}`.
    """
    print(f"\n== {regime}")
    augment, use_gan = REGIMES[regime]
    slug = regime_slug(regime)
    keras.utils.set_random_seed(seed)
    model = gan_zoo.load("resnet50_classifier", image_size=patch_size, backbone_weights=weights,
                         augment=augment, learning_rate=learning_rate, seed=seed)
    model.compile()
    train = patches["train"]
    real = patch_source(train.images, train.labels, "real patches")
    if use_gan:
        curriculum, fake = Curriculum(every=curriculum_every), patch_source(*synthetic, "ciGAN patches")
    else:  # every batch real: the second source is never read
        curriculum, fake = (lambda step: 1.0), real
    chunks = math.ceil(steps / eval_every)

    def batches(start):
        stream = mixed_batches(real, fake, curriculum, batch_size=batch_size, seed=seed,
                               start_step=start * eval_every, steps=chunks * eval_every)
        return stream.dataset.map(lambda b: (b["images"], b["labels"]))

    validation = patches["validation"]
    fit = fit_classifier(
        model, batches, epochs=chunks, steps_per_epoch=eval_every, optimizer=None,
        backup_dir=run.path(f"backup-{slug}"), validation=(validation.unit_images(), validation.labels),
        best_path=run.path(f"best-{slug}.weights.h5"), keep=keep, callbacks=callbacks, verbose=2)
    scores = {part: model.predict(patches[part].unit_images(), batch_size=64, verbose=0)[:, 1].tolist()
              for part in ("validation", "test")}
    return {"best_validation_auroc": fit.best["auroc"], "best_step": fit.best["step"],
            "steps": chunks * eval_every, "kept": keep, "augmentation": augment, "cigan": use_gan,
            "scores": scores}


def patch_counts(patches):
    """`{"patients", "patches"}` counts of each part, for metrics.json's data provenance.

    Args:
        patches: `{part: PatchSet}`.
    """
    return {"patients": {part: len(set(p.patients.tolist())) for part, p in patches.items()},
            "patches": {part: {"count": len(p), "malignant": int(p.labels.sum()), "lesion": int(p.has_lesion.sum()),
                               **p.stats} for part, p in patches.items()}}


def row_pairs(comparison, rows):
    """Paired DeLong tests of each row against every row above it (Table 1's p-values).

    Args:
        comparison: a `gan_zoo.experiments.Comparison` holding every row.
        rows: the rows in table order.

    Returns:
        `{(row, above): test}`, where the test is `comparison.paired(above)[row]`
        (`auc_a` is the row above's). With fewer than 2 test patches of a
        class the test cannot be made: its `p_value` is NaN and `error` says why.
    """
    pairs = {}
    for index, above in enumerate(rows):
        try:
            tests = comparison.paired(above)
        except ValueError as error:
            tests = {row: {"p_value": float("nan"), "error": str(error)} for row in rows}
        pairs.update({(row, above): tests[row] for row in rows[index + 1:]})
    return pairs


def table_one(comparison):
    """Table 1 of a `Comparison` holding every row of `REGIMES`: Markdown and JSON.

    Returns:
        `(markdown, record)`: the record has `table1` (each row's AUROC,
        its CI and the test counts), `reference` (the first row, real data
        only), `delong_vs_reference` (`comparison.paired(reference)`) and
        `delong` (every row against every row above it, `"<above> vs <row>"`).
    """
    rows, results = list(REGIMES), comparison.results
    pairs = row_pairs(comparison, rows)
    return format_table_one(results, pairs), {
        "table1": {row: {k: results[row][k] for k in TABLE_KEYS if k in results[row]} for row in rows},
        "reference": rows[0],
        "delong_vs_reference": {row: pairs[(row, rows[0])] for row in rows[1:]},
        "delong": {f"{above} vs {row}": test for (row, above), test in pairs.items()},
    }


def format_table_one(results, pairs):
    """The paper's Table 1: AUROC (95% CI) per row, and p-values against the rows above.

    Args:
        results: `{row: test metrics}` with `auroc`, `auroc_ci_low` and `auroc_ci_high`.
        pairs: `row_pairs`' tests.

    Returns:
        A Markdown table (no trailing newline).
    """
    rows = list(results)
    header = ["Data augmentation scheme", "AUROC (95% CI)", *[f"p vs {r.split(' (')[0]}" for r in rows[:-1]]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in rows:
        result = results[row]
        cells = [row, f"{result['auroc']:.3f} ({result['auroc_ci_low']:.3f}-{result['auroc_ci_high']:.3f})"]
        cells += ["" if (row, other) not in pairs else f"{pairs[(row, other)]['p_value']:.3g}" for other in rows[:-1]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
