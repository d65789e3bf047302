"""GAN data augmentation for classifiers: synthetic labelled sets and real:synthetic mixes.

Shared by the recipes that train a classifier with a generator's images
(Chi et al.'s DCGAN and CycleGAN augmentation of IDC patches; ciGAN's
synthesized mammogram patches):

- `generate_labelled`: images of a class-conditional generator, or of one
  unconditional generator per class (or per cluster), with their labels;
- `translate_labelled`: translations of real images by an image translator
  (CycleGAN), labelled with the class they were translated to (Chi et al.
  flip the labels) or with their source class, optionally without the
  translations too close to their source (sum of squared differences under a
  threshold: the paper's proposed fix for pairs of near-identical images
  with opposite labels);
- `mixed_stream`: real and synthetic examples mixed at a chosen ratio in
  every batch of a `tf.data` pipeline (`gan_zoo.data.streams.mixed_batches`
  underneath: the batch of step s is a function of (seed, s) only);
- `fit_on_mix`: trains a zoo classifier on such a mix with its paper
  optimizer and loss (`gan_zoo.training.classify.fit_classifier`).

Synthetic images live in memory as float32 in [0, 1]; the pipeline stores
them, like every image it reads, as 8-bit pixels (what saving them as PNG
files would keep).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from gan_zoo.training.classify import fit_classifier


__all__ = [
    "MixedTrainingStream",
    "SyntheticSet",
    "fit_on_mix",
    "generate_labelled",
    "mixed_stream",
    "sum_squared_differences",
    "translate_labelled",
]

# Chi et al.: non-IDC (0) is CycleGAN's domain A, IDC (1) its domain B.
BINARY_TRANSLATIONS = {0: ("a_to_b", 1), 1: ("b_to_a", 0)}


@dataclasses.dataclass(frozen=True)
class SyntheticSet:
    """Synthetic labelled images.

    Args:
        images: float32 `[N, H, W, C]` in [0, 1].
        labels: int32 `[N]`.
        sources: for translations, the index of each image's source in the
            real arrays it was translated from; None for generated images.
        description: how the set was made (for metrics.json).
    """

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray | None = None
    description: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return int(len(self.labels))

    def class_counts(self, num_classes=2):
        return np.bincount(self.labels, minlength=num_classes).tolist()


def _counts(counts, classes):
    if isinstance(counts, (int, np.integer)) and not isinstance(counts, bool):
        counts = {c: int(counts) for c in classes}
    counts = {int(c): int(n) for c, n in dict(counts).items()}
    bad = {c: n for c, n in counts.items() if n < 0}
    if bad:
        raise ValueError(f"counts must be >= 0 per class, got {bad}.")
    return counts


def generate_labelled(generators, counts, *, seed=0, batch_size=256):
    """Images of a trained generator (or one per class) with their labels.

    Args:
        generators: a class-conditional zoo generator (a `LatentGenerator`
            with `num_classes > 0`), or `{label: unconditional generator}`
            (Chi et al.: one DCGAN per class or per cluster).
        counts: `{label: images}`, or one int for every class.
        seed: seed of the latents (class c of a per-class dict uses seed + c).
        batch_size: images per forward pass.

    Returns:
        A `SyntheticSet`, class by class in increasing label order.
    """
    if isinstance(generators, dict):
        counts = _counts(counts, generators)
        missing = sorted(set(counts) - set(generators))
        if missing:
            raise ValueError(f"No generator for class(es) {missing}; generators cover {sorted(generators)}.")
        kind, conditional = "one generator per class", False
    else:
        if not getattr(generators, "num_classes", 0):
            raise ValueError(
                "generate_labelled needs a class-conditional generator or {label: generator}."
            )
        counts = _counts(counts, range(generators.num_classes))
        kind, conditional = "class-conditional generator", True
    images, labels = [], []
    for label in sorted(counts):
        n = counts[label]
        if n == 0:
            continue
        if conditional:
            images.append(generators.generate(n, labels=label, seed=seed, batch_size=batch_size))
        else:
            images.append(generators[label].generate(n, seed=seed + label, batch_size=batch_size))
        labels.append(np.full(n, label, np.int32))
    if not images:
        raise ValueError("generate_labelled: every count is 0.")
    return SyntheticSet(
        images=np.concatenate(images).astype(np.float32),
        labels=np.concatenate(labels),
        description={"kind": kind, "counts": {str(c): n for c, n in counts.items()}, "seed": int(seed)},
    )


def sum_squared_differences(a, b):
    """Per-image sum of squared differences of images in [0, 1], float64 `[N]`."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Images differ in shape: {a.shape} and {b.shape}.")
    return np.square(a - b).reshape(len(a), -1).sum(axis=1)


def translate_labelled(
    translator, images, labels, *, translations=None, flip_labels=True, min_ssd=None, batch_size=64
):
    """Translations of real images, labelled, optionally without near-copies.

    Args:
        translator: a zoo image translator (e.g. `CycleGAN`).
        images: real images, float32 `[N, H, W, C]` in [0, 1].
        labels: their int labels `[N]`.
        translations: `{source label: (direction, target label)}`; default
            non-IDC (0) -> "a_to_b" -> IDC (1) and IDC -> "b_to_a" -> non-IDC.
            Images of other labels are not translated.
        flip_labels: label each translation with its target class (Chi et
            al.); False keeps the source label (their robustness variant).
        min_ssd: drop translations whose sum of squared differences from
            their source (pixels in [0, 1], summed over H, W, C) is below
            this; None keeps all.
        batch_size: images per forward pass.

    Returns:
        A `SyntheticSet` whose `sources` index `images`; its description
        gives the SSD quantiles and how many translations were dropped.
    """
    translations = BINARY_TRANSLATIONS if translations is None else translations
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    if min_ssd is not None and float(min_ssd) < 0:
        raise ValueError(f"min_ssd must be None or >= 0, got {min_ssd}.")
    out_images, out_labels, out_sources, distances = [], [], [], []
    for source_label, (direction, target_label) in sorted(translations.items()):
        index = np.flatnonzero(labels == source_label)
        if len(index) == 0:
            continue
        translated = translator.translate(images[index], direction=direction, batch_size=batch_size)
        ssd = sum_squared_differences(translated, images[index])
        out_images.append(translated)
        out_labels.append(np.full(len(index), target_label if flip_labels else source_label, np.int32))
        out_sources.append(index)
        distances.append(ssd)
    if not out_images:
        raise ValueError(f"No image has a label in {sorted(translations)} to translate.")
    translated = np.concatenate(out_images)
    new_labels, sources, ssd = (np.concatenate(x) for x in (out_labels, out_sources, distances))
    keep = np.ones(len(ssd), bool) if min_ssd is None else ssd >= float(min_ssd)
    quantiles = {f"q{int(q * 100):02d}": float(np.quantile(ssd, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
    return SyntheticSet(
        images=translated[keep],
        labels=new_labels[keep],
        sources=sources[keep],
        description={
            "kind": "translations",
            "flip_labels": bool(flip_labels),
            "min_ssd": None if min_ssd is None else float(min_ssd),
            "translated": int(len(ssd)),
            "dropped_too_close": int(np.count_nonzero(~keep)),
            "ssd_quantiles": quantiles,
        },
    )


@dataclasses.dataclass(frozen=True)
class MixedTrainingStream:
    """What `mixed_stream` returns.

    Args:
        dataset: yields `(images, labels)` batches, images float32 in [0, 1].
        steps_per_epoch: steps of one epoch (all real and synthetic
            examples, once on average).
        batch_size: examples per batch.
        real_per_batch: real examples in every batch (the rest synthetic).
        num_real: real examples.
        num_synthetic: synthetic examples.
    """

    dataset: tf.data.Dataset
    steps_per_epoch: int
    batch_size: int
    real_per_batch: int
    num_real: int
    num_synthetic: int

    @property
    def synthetic_fraction(self):
        return 1.0 - self.real_per_batch / self.batch_size


def _pixels(images, labels):
    images = np.asarray(images, np.float32)
    if images.size and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise ValueError("Images must be float32 in [0, 1].")
    pixels = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    return tf.data.Dataset.from_tensor_slices({"image": pixels, "label": labels})


def _arrays(data, what):
    if data is None:
        return None
    if isinstance(data, SyntheticSet):
        data = (data.images, data.labels)
    images, labels = data
    if len(images) != len(labels):
        raise ValueError(f"{what}: {len(images)} images but {len(labels)} labels.")
    return (images, labels) if len(labels) else None


def mixed_stream(real, synthetic, *, batch_size, synthetic_fraction=None, seed=0, epochs=None, flips=False,
                 start_epoch=0):
    """Real and synthetic labelled images, mixed at a fixed ratio in every batch.

    Args:
        real: `(images, labels)` of real images in [0, 1], or None.
        synthetic: a `SyntheticSet` or `(images, labels)`, or None.
        batch_size: examples per batch.
        synthetic_fraction: share of synthetic examples in each batch, in
            [0, 1] (the real count per batch is rounded half up); None takes
            the natural share `n_synthetic / (n_real + n_synthetic)`.
        seed: seed of the orders (and flips).
        epochs: epochs the dataset yields (None: endless).
        flips: random horizontal and vertical flips.
        start_epoch: the first epoch the dataset yields (the batches of an
            uninterrupted stream from there on: exact resume).

    Returns:
        A `MixedTrainingStream`; an epoch has `(n_real + n_synthetic) //
        batch_size` steps.
    """
    from gan_zoo.data.pipeline import training_stream
    from gan_zoo.data.streams import StreamSource, mixed_batches

    real, synthetic = _arrays(real, "real"), _arrays(synthetic, "synthetic")
    if real is None and synthetic is None:
        raise ValueError("mixed_stream needs real or synthetic examples.")
    n_real = 0 if real is None else len(real[1])
    n_synthetic = 0 if synthetic is None else len(synthetic[1])
    if synthetic_fraction is None:
        synthetic_fraction = n_synthetic / (n_real + n_synthetic)
    synthetic_fraction = float(synthetic_fraction)
    if not 0.0 <= synthetic_fraction <= 1.0:
        raise ValueError(f"synthetic_fraction must be in [0, 1], got {synthetic_fraction}.")
    steps = (n_real + n_synthetic) // int(batch_size)
    if steps == 0:
        raise ValueError(f"{n_real + n_synthetic} examples hold no batch of {batch_size}.")
    real_per_batch = int(np.floor((1.0 - synthetic_fraction) * batch_size + 0.5))
    if real_per_batch > 0 and real is None:
        raise ValueError(f"synthetic_fraction {synthetic_fraction} asks for real examples; none given.")
    if real_per_batch < batch_size and synthetic is None:
        raise ValueError(f"synthetic_fraction {synthetic_fraction} asks for synthetic examples; none given.")
    shape = (real or synthetic)[0].shape[1:3]
    common = dict(image_size=tuple(int(s) for s in shape), value_range=(0.0, 1.0),
                  flips=flips, cache="memory", labels=True, size_policy="error")
    if real_per_batch in (0, batch_size):
        images, labels = real if real_per_batch else synthetic
        stream = training_stream(
            _pixels(images, labels), batch_size=batch_size, seed=seed, epochs=epochs,
            start_epoch=start_epoch, image_size=common["image_size"], value_range=(0.0, 1.0), flips=flips,
            cache="memory", size_policy="error",
        )
        dataset = stream.dataset
    else:
        mixed = mixed_batches(
            StreamSource(_pixels(*real), what="real images", **common),
            StreamSource(_pixels(*synthetic), what="synthetic images", **common),
            lambda step: real_per_batch / batch_size,
            batch_size=batch_size, seed=seed, start_step=int(start_epoch) * steps,
            steps=None if epochs is None else int(epochs) * steps,
        )
        dataset = mixed.dataset.map(lambda batch: (batch["images"], batch["labels"]))
    return MixedTrainingStream(
        dataset=dataset, steps_per_epoch=steps, batch_size=int(batch_size),
        real_per_batch=real_per_batch, num_real=n_real, num_synthetic=n_synthetic,
    )


def fit_on_mix(model, real, synthetic, *, epochs, batch_size, synthetic_fraction=None,
               seed=0, optimizer="paper", backup_dir=None, callbacks=(), verbose="auto"):
    """Trains a zoo classifier on a real:synthetic mix (`mixed_stream`).

    Args:
        model: a `ZooClassifier` (compiled here with its paper optimizer
            and loss unless `optimizer` is another optimizer).
        real: `(images, labels)` in [0, 1], or None (synthetic only).
        synthetic: a `SyntheticSet` / `(images, labels)`, or None (real only).
        epochs: training epochs.
        batch_size: batch size.
        synthetic_fraction: synthetic share of each batch (None: natural).
        seed: seed of the data order.
        optimizer: as `gan_zoo.training.classify.fit_classifier`'s.
        backup_dir: backups of the training; an interrupted call resumes.
        callbacks: Keras callbacks.
        verbose: Keras verbosity.

    Returns:
        `(history, stream)`: the Keras `History` and the `MixedTrainingStream`.
    """
    def stream(start_epoch):
        return mixed_stream(real, synthetic, batch_size=batch_size, synthetic_fraction=synthetic_fraction,
                            seed=seed, epochs=epochs, start_epoch=start_epoch)

    first = stream(0)
    fit = fit_classifier(
        model, lambda start: first.dataset if start == 0 else stream(start).dataset,
        epochs=int(epochs), steps_per_epoch=first.steps_per_epoch, optimizer=optimizer,
        backup_dir=backup_dir, callbacks=callbacks, verbose=verbose,
    )
    return fit.history, first
