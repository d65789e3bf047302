"""The model-specific steps of Chi, Fang & Wang's GAN-augmentation study on IDC.

The recipe `recipes/gan_augmentation_idc.py` runs the study on the
experiment protocol (`gan_zoo.experiments`: split, units of work, scoring at
an operating point, report); what is particular to this paper lives here:

- the generators (DCGANs, CycleGAN, SIFT clusters, FID / KID):
  `gan_zoo.training.augmentation_generators`, re-exported here;
- `resolve_backbone` / `random_backbone_banner`: the ResNet-18 weights and
  fine-tuning protocol from the options, and the warning when they are random;
- `classifier_rows` / `control_epochs`: the rows of Table 1's layout, plus
  the real-only control trained for as many steps as the "+ Real" rows;
- `train_row`: one row's ResNet-18 trained and its scores;
  `unit_with_arrays`: a unit of work whose scores are kept beside its JSON;
- `paired_tests` / `table_text`: the DeLong tests against Real and the
  control, and table.md;
- `turned_right` / `nearest_neighbour_figure`: Fig. 8.
"""

import dataclasses
import logging
import warnings

import numpy as np

import gan_zoo
from gan_zoo.images import save_image, tile_images
from gan_zoo.training.augmentation import fit_on_mix
from gan_zoo.training.augmentation_generators import (
    GAN_OPTIONS,
    GanTrainer,
    POLICY,
    SIZE,
    choose_cluster,
    cluster_experiment,
    describe_sets,
    fit_domain_classifier,
    generator_scores,
    subsample,
    upscale,
)
from gan_zoo.training.classify import predict_scores

__all__ = [
    "GAN_OPTIONS",
    "GanTrainer",
    "POLICY",
    "Row",
    "SIZE",
    "choose_cluster",
    "classifier_rows",
    "cluster_experiment",
    "control_epochs",
    "describe_sets",
    "fit_domain_classifier",
    "generator_scores",
    "nearest_neighbour_figure",
    "paired_tests",
    "random_backbone_banner",
    "resolve_backbone",
    "subsample",
    "table_text",
    "train_row",
    "turned_right",
    "unit_with_arrays",
    "upscale",
]


def resolve_backbone(weights, protocol):
    """ResNet-18 weights and protocol from `--backbone-weights` / `--protocol`.

    "auto" weights are ImageNet's when they can be downloaded, else random
    (the reason is kept); "auto" protocol freezes the convolutions over
    pretrained weights and trains every layer over random ones (a frozen
    random backbone is no feature extractor).

    Returns:
        JSON `{"weights": for ResNet18Classifier, "protocol", "note"}`.
    """
    from gan_zoo.models.resnet18_classifier import build_resnet18_backbone

    choice = {"none": None}.get(weights.lower(), weights)
    note = None
    if choice == "auto":
        try:
            build_resnet18_backbone(SIZE, "imagenet")
            choice = "imagenet"
        except RuntimeError as error:
            choice = None
            note = str(error).split(" Offline?")[0]
    if protocol == "auto":
        protocol = "frozen" if choice is not None else "full"
    return {"weights": choice, "protocol": protocol, "note": note}


def random_backbone_banner(backbone):
    """The loud warning printed when ResNet-18 has no pretrained weights (else "")."""
    if backbone["weights"] is not None:
        return ""
    banner = "!" * 78
    note = f" ({backbone['note']})" if backbone["note"] else ""
    return (f"\n{banner}\nResNet-18 is RANDOMLY INITIALISED, without ImageNet weights{note}.\nThe paper "
            f"fine-tunes ImageNet weights; these results are NOT comparable with its Table 1. "
            f"Protocol: {backbone['protocol']}.\n{banner}\n")


@dataclasses.dataclass
class Row:
    """One classifier of the table: what it trains on, and for how long.

    Args:
        real: `(images, labels)` of real training patches, or None.
        synthetic: a `SyntheticSet`, or None.
        epochs: training epochs.
        control: whether it is the real-only control of the "+ Real" rows.
    """

    real: object
    synthetic: object
    epochs: int
    control: bool = False


def control_epochs(epochs, n_real, n_cyclegan):
    """Epochs of real-only training with as many steps as the real + CycleGAN rows."""
    return max(1, round(epochs * (n_real + n_cyclegan) / n_real))


def classifier_rows(real, sets, variants, epochs):
    """`{row name: Row}` in table order: Real, the control, CycleGAN, DCGAN per variant.

    The control ("Real (N epochs)") answers whether a "+ Real" row's gain is
    more than the extra SGD steps its larger training set takes.

    Args:
        real: `(images, labels)` of the real training patches.
        sets: `{"CycleGAN": SyntheticSet, "DCGAN <v>": SyntheticSet}`.
        variants: the DCGAN variants.
        epochs: epochs of every row but the control.
    """
    control = control_epochs(epochs, len(real[1]), len(sets["CycleGAN"]))
    rows = {"Real": Row(real, None, epochs), f"Real ({control} epochs)": Row(real, None, control, True),
            "CycleGAN": Row(None, sets["CycleGAN"], epochs), "CycleGAN + Real": Row(real, sets["CycleGAN"], epochs)}
    for variant in variants:
        rows[f"DCGAN {variant}"] = Row(None, sets[f"DCGAN {variant}"], epochs)
        rows[f"DCGAN {variant} + Real"] = Row(real, sets[f"DCGAN {variant}"], epochs)
    return rows


def paired_tests(comparison, reference, control):
    """Paired DeLong tests: every row against `reference`, the "+ Real" rows against `control`.

    Args:
        comparison: the `gan_zoo.experiments.Comparison` of the rows.
        reference, control: the real-only row and the real-only control row.

    Returns:
        `{baseline: {row: test}}`, difference = AUROC(baseline) - AUROC(row).
    """
    return {reference: comparison.paired(reference),
            control: {n: t for n, t in comparison.paired(control).items() if "+ Real" in n}}


def table_text(table, paired, weights_used, protocol, epochs, control, operating_point, split_note, test_patients):
    """table.md: a heading that says how the rows were trained, the table, and the DeLong tests.

    The tests are printed as gains (row minus baseline), the reading of the
    paper's question: did augmentation help?

    Args:
        table: the metrics table (Table 1's layout).
        paired: `paired_tests`' result.
        weights_used, protocol: the ResNet-18 weights' provenance ("random"
            is shouted) and "frozen" or "full".
        epochs, control: epochs of the rows, and the control row's name.
        operating_point, split_note, test_patients: the `OperatingPoint`,
            how the patients were split, and the test patients' ids.
    """
    tests = "\n".join(f"- {n} vs {b}: AUROC difference {-t['difference']:+.3f}, DeLong p = {t['p_value']:.3g}"
                      for b, found in paired.items() for n, t in found.items())
    header = (f"ResNet-18 weights: {weights_used.upper() if weights_used == 'random' else weights_used}; "
              f"protocol {protocol}; {epochs} epochs ({control}: as many steps as the + Real runs); "
              f"{operating_point.describe()}; {split_note}; test patients: {', '.join(test_patients)}")
    return f"{header}\n\n{table}\n\nPaired DeLong tests on the test patches:\n{tests}\n"


def turned_right(labels, scores, threshold, before_scores, before_threshold):
    """Test patches a classifier gets right that another (without augmentation) got wrong."""
    truth = np.asarray(labels).astype(bool)
    return ((np.asarray(scores) >= threshold) == truth) & ((np.asarray(before_scores) >= before_threshold) != truth)


def unit_with_arrays(units, name, compute):
    """A unit of work whose result has arrays too, kept as `<unit>.npz` beside its JSON.

    Args:
        units: the run's `gan_zoo.experiments.Units`.
        name: the unit's name.
        compute: `() -> (JSON dict, {key: array})`, called only when the
            unit is not done.

    Returns:
        `(JSON result, {key: array})`, read back when the unit was done.
    """
    stored, computed = units.path(name).with_suffix(".npz"), {}

    def compute_and_store():
        result, computed["arrays"] = compute()
        if getattr(units.run, "chief", True):  # only the chief of a multi-worker run writes
            np.savez(stored, **computed["arrays"])  # before the unit's JSON, whose presence means done
        return result

    result = units.get(name, compute_and_store)
    if "arrays" in computed:
        return result, computed["arrays"]
    with np.load(stored) as arrays:
        return result, {key: arrays[key] for key in arrays.files}


def train_row(row, images, *, backbone, learning_rate, batch_size, synthetic_fraction, seed):
    """Trains one row's ResNet-18 and scores images with it.

    Args:
        row: the `Row`.
        images: `{part: images}` to score (e.g. validation and test).
        backbone: `resolve_backbone`'s result.
        learning_rate: SGD learning rate.
        batch_size: batch size.
        synthetic_fraction: synthetic share of each mixed batch (None: natural).
        seed: seed of weights and data order (the same for every row).

    Returns:
        `(model, {part: P(IDC)}, JSON info)`.
    """
    import keras

    from gan_zoo.models.transfer import RandomWeightsWarning

    keras.utils.set_random_seed(seed)
    quiet = logging.getLogger("gan_zoo.models.transfer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)  # said once, loudly, by the recipe
        quiet.setLevel(logging.ERROR)
        model = gan_zoo.load("resnet18_classifier", backbone_weights=backbone["weights"],
                             protocol=backbone["protocol"], learning_rate=learning_rate, seed=seed)
        quiet.setLevel(logging.NOTSET)
    _, stream = fit_on_mix(
        model, row.real, row.synthetic, epochs=row.epochs, batch_size=batch_size,
        synthetic_fraction=None if row.real is None or row.synthetic is None else synthetic_fraction,
        seed=seed, verbose=0)
    scores = {part: predict_scores(model, x, size_policy="error") for part, x in images.items()}
    return model, scores, {"epochs": row.epochs, "examples": stream.num_real + stream.num_synthetic,
                           "synthetic_fraction": stream.synthetic_fraction,
                           "steps_per_epoch": stream.steps_per_epoch, "weights_used": model.weights_used}


def nearest_neighbour_figure(path, model, train_images, synthetic, test_images, turned_right, k=5, rows=4):
    """Fig. 8: test patches that augmentation turned right and their k nearest training patches.

    Neighbours are found in the augmented classifier's pooled features (what
    its head sees) among the real and synthetic training patches. Frames: the
    test patch blue, real neighbours green, synthetic ones magenta.

    Args:
        path: the PNG to write.
        model: the augmented classifier (a "gap" layer).
        train_images: the real training patches.
        synthetic: the `SyntheticSet` it was trained with.
        test_images: the test patches.
        turned_right: bool per test patch: right now, wrong without augmentation.
        k: neighbours per patch.
        rows: test patches shown at most.

    Returns:
        JSON `{"test_patches", "synthetic_neighbours"}`, or None when no
        patch was turned right.
    """
    import keras

    chosen = np.flatnonzero(turned_right)[:rows]
    if len(chosen) == 0:
        return None
    features = keras.Model(model.inputs, model.get_layer("gap").output)
    pool = np.concatenate([train_images, synthetic.images])
    is_synthetic = np.r_[np.zeros(len(train_images), bool), np.ones(len(synthetic), bool)]
    embedded = features.predict(pool, verbose=0, batch_size=256)
    queries = features.predict(test_images[chosen], verbose=0)
    tiles, synthetic_neighbours = [], 0
    for query, index in zip(queries, chosen):
        nearest = np.argsort(np.square(embedded - query).sum(axis=1))[:k]
        synthetic_neighbours += int(is_synthetic[nearest].sum())
        tiles.append(_framed(test_images[index], (0.0, 0.3, 1.0)))
        tiles += [_framed(pool[j], (1.0, 0.0, 1.0) if is_synthetic[j] else (0.0, 0.8, 0.0)) for j in nearest]
    save_image(path, tile_images(upscale(np.asarray(tiles)), rows=len(chosen)))
    return {"test_patches": chosen.tolist(), "synthetic_neighbours": synthetic_neighbours}


def _framed(image, colour, width=2):
    framed = np.array(image, np.float32, copy=True)
    framed[:width], framed[-width:], framed[:, :width], framed[:, -width:] = (colour,) * 4
    return framed
