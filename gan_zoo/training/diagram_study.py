"""DiaGRAM's study (Shams et al. 2018): its three models' training and the paper's Table 1.

`recipes/diagram_ddsm_to_inbreast.py` trains three models with one budget on
a source dataset and fine-tunes their classification paths on a target:

- `diagram`: the multi-task GAN (G, F, D with the real/fake unit, E);
- `no_gan`: the paper's ablation (Fig. 3): F, D without the real/fake unit, E;
- `plain_cnn`: F + E alone, trained on whole images only.

This module holds what is particular to that study:

- `Trainers`: the three trainings and the fine-tuning, each model traced once;
- `TransferStudy`: the images, and the work of each unit (a fold's training,
  a final source model, a fine-tuning, the scores of a test folder);
- `model_config`: the registered config at the recipe's sizes and widths;
- `scan_folder`: a dataset folder read and checked before any training;
- `unit_result`: a finished unit's scores, checked;
- `threshold_rule`: argmax where a split's validation patients hold one class;
- `add_patch_auroc`: D's patch AUROC summarised over folds;
- `write_table_1`, `save_auc_bars`, `save_pooled_roc`: the paper's Table 1
  layout, its Fig. 3 bars and Fig. 2 ROC curves.

The protocol around it (patient splits, scoring at an operating point, units
of work, metrics.json) is `gan_zoo.experiments`'.
"""

import dataclasses

import keras
import numpy as np

from gan_zoo.data.mammography import label_counts, patients, scan_mammograms
from gan_zoo.data.mammography.arrays import prepare_mammograms
from gan_zoo.data.mammography.pixels import check_decodable
from gan_zoo.data.mammography.streams import diagram_streams, float_streams
from gan_zoo.errors import UsageError
from gan_zoo.metrics import binary_metrics
from gan_zoo.metrics.crossval import summarise_folds
from gan_zoo.metrics.operating_point import OperatingPoint
from gan_zoo.models.diagram import DiaGRAM
from gan_zoo.registry import get_spec
from gan_zoo.training.classify import fit_classifier

MODELS = ("diagram", "no_gan", "plain_cnn")
PAPER_ROWS = (  # Table 1 of Shams et al. 2018 (accuracy, AUC in %)
    ("DiaGRAM (paper)", "DDSM", "89 +/- 3.4", "88.4 +/- 2.9"),
    ("DiaGRAM (paper)", "INbreast", "93.5 +/- 2.9", "92.5 +/- 2.4"),
    ("DiaGRAM without GAN (paper, Fig. 3)", "DDSM", "n/a", "85.5"),
)
ONE_CLASS_FALLBACK = "argmax (validation has one class)"


class DataError(UsageError, ValueError):
    """A dataset folder, or its split, cannot be used as asked: one line, exit status 2."""


def as_data_error(make, *args, **options):
    """`make(*args, **options)`, its ValueErrors (unreadable data, a split that cannot be made) as `DataError`s."""
    try:
        return make(*args, **options)
    except ValueError as error:
        raise DataError(str(error)) from None


@dataclasses.dataclass
class Folder:
    """A dataset folder as the study reads it.

    Attributes:
        path: the folder.
        format: the format found ("cbis_ddsm", "inbreast", "mias").
        records: its `MammogramRecord`s.
        name: its name in tables (default: the format).
        options: reader options recorded with it (mini-MIAS' label task).
    """

    path: str
    format: str
    records: list
    name: str
    options: dict

    def summary(self):
        """JSON for metrics.json: folder, format, images, patients, labels, reader options."""
        return {"folder": self.path, "format": self.format, "images": len(self.records),
                "patients": len(patients(self.records)),
                "labels": {str(k): v for k, v in label_counts(self.records).items()}, **self.options}


def scan_folder(folder, data_format, *, name=None, **options):
    """`scan_mammograms` with one file of each kind decoded before any training; prints a summary.

    Args:
        folder: the dataset folder.
        data_format: its format, or "auto".
        name: its name in tables (default: the format found).
        **options: reader options (`mias_task`), recorded when they apply.

    Raises:
        DataError: the folder cannot be read, or a file kind cannot be decoded.
    """
    found_format, records = as_data_error(scan_mammograms, folder, data_format, **options)
    as_data_error(check_decodable, [r.path for r in records])
    print(f"{folder} ({found_format}): {len(records)} images, {len(patients(records))} patients, "
          f"labels {label_counts(records)}")
    recorded = options if found_format == "mias" else {}
    return Folder(str(folder), found_format, records, name or found_format, recorded)


def model_config(*, width, **settings):
    """DiaGRAM's registered config with every network width scaled.

    Args:
        width: multiplier of the feature, extended and generator widths.
        **settings: config values set as given (image_size, patch_size, k,
            learning_rate, fine_tune_epochs, seed, ...).
    """
    config = dict(get_spec("diagram").config)

    def scale(widths):
        return [max(1, int(round(w * width))) for w in widths]

    config.update(settings, feature_filters=scale(config["feature_filters"]),
                  extended_filters=scale(config["extended_filters"]),
                  generator_filters=scale(config["generator_filters"]))
    return config


def _state(variables):
    return [np.array(v.numpy()) for v in variables]


def _restore(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)


class Trainers:
    """Each model is built and traced once; every training restores its start.

    Rebuilding a model per fold would retrace its train step each time (most
    of a small run's time); restoring the initial weights and zeroed
    optimizer states gives the same training at a fraction of the cost.

    Args:
        config: DiaGRAM's config (`model_config`).
        batch_size: images per stream and step.
        seed: seed of every model's initial weights.
        callbacks: Keras callbacks of every `fit` (e.g. to stop a run).
    """

    def __init__(self, config, batch_size, seed, callbacks=()):
        self.config, self.batch_size, self.seed = config, batch_size, seed
        self.callbacks = list(callbacks)
        self._models, self._paths = {}, {}

    def _adversarial(self, kind):
        if kind not in self._models:
            keras.utils.set_random_seed(self.seed)
            model = DiaGRAM(**{**self.config, "use_gan": kind == "diagram"})
            model.compile()
            variables = list(model.variables) + [
                v for o in model.optimizers_by_group().values() for v in o.variables]
            self._models[kind] = (model, variables, _state(variables))
        return self._models[kind]

    def _path(self, kind):
        """A compiled F + E path (plain_cnn's network, a fine-tuning copy, or the scorer)."""
        if kind not in self._paths:
            keras.utils.set_random_seed(self.seed)
            template = DiaGRAM(**{**self.config, "use_gan": False})
            path = template.classification_path()
            optimizer = template.fine_tune_optimizer()
            path.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            optimizer.build(path.trainable_variables)
            self._paths[kind] = (path, _state(path.variables), list(optimizer.variables),
                                 _state(optimizer.variables))
        return self._paths[kind]

    def train(self, kind, whole, patches, epochs, seed):
        """Trains `kind` from its start; returns its F + E path's weights.

        Args:
            kind: one of `MODELS`.
            whole: the training patients' whole images (`MammogramArrays`).
            patches: their ROI patches (unused by plain_cnn).
            epochs: epochs of whole images.
            seed: seed of the data order and flips.
        """
        if kind == "plain_cnn":
            return self.fit_path("plain_cnn", None, whole, epochs, seed)
        model, variables, start = self._adversarial(kind)
        _restore(variables, start)
        stream = diagram_streams(whole, patches, batch_size=self.batch_size, seed=seed, epochs=epochs)
        model.fit(stream.dataset, steps_per_epoch=stream.steps_per_epoch, epochs=epochs,
                  shuffle=False, verbose=0, callbacks=self.callbacks)
        return model.classification_path().get_weights()

    def fit_path(self, kind, weights, whole, epochs, seed):
        """Trains an F + E path on whole images (from `weights`, or from its start)."""
        path, start, optimizer_variables, optimizer_start = self._path(kind)
        _restore(path.variables, start)
        if weights is not None:
            path.set_weights(weights)
        _restore(optimizer_variables, optimizer_start)
        stream = float_streams({"images": whole}, batch_size=min(self.batch_size, len(whole)),
                               seed=seed, epochs=epochs)
        dataset = stream.dataset.map(lambda b: ((b["images"][0] + 1.0) / 2.0, b["images"][1]))
        fit_classifier(path, dataset, epochs=epochs, steps_per_epoch=stream.steps_per_epoch, optimizer=None,
                       verbose=0, callbacks=self.callbacks)
        return path.get_weights()

    def patch_result(self, kind, patches):
        """`{"patch_auroc": AUROC of D's class units on ROI patches}` of the model `kind` just trained.

        Empty for plain_cnn (it has no D); None where the patches hold one class.
        """
        if kind == "plain_cnn":
            return {}
        if len(set(patches.labels.tolist())) < 2:
            return {"patch_auroc": None}
        model = self._adversarial(kind)[0]
        scores = model.patch_classifier().predict(patches.images, batch_size=256, verbose=0)[:, 1]
        return {"patch_auroc": binary_metrics(patches.labels, scores)["auroc"]}

    def scores(self, weights, images):
        """P(class 1) of [0, 1] whole images under path `weights`."""
        path = self._path("scoring")[0]
        path.set_weights(weights)
        return path.predict(images, batch_size=64, verbose=0)[:, 1]

    def path_model(self, weights):
        """An uncompiled F + E path holding `weights`, to be saved as a .keras file."""
        model = keras.models.clone_model(self._path("scoring")[0])
        model.set_weights(weights)
        return model


class TransferStudy:
    """The study's images and trainers: the work of each unit the recipe runs.

    The source's whole images and ROI patches are prepared once; each unit
    selects its patients' rows. Arrays keep their records' order, as a
    split's parts do, so a part's scores line up with its records.

    Args:
        config: DiaGRAM's config (`model_config`: image_size, patch_size).
        source: the source's `MammogramRecord`s.
        batch_size: images per stream and step.
        epochs: epochs of whole images of every source training.
        fine_tune_epochs: epochs of every fine-tuning on the target.
        patch_copies: patches per ROI (the crop and random rotations/mirrorings).
        seed: seed of initial weights and patch augmentation; training on fold
            i is seeded `seed + i`.
        callbacks: Keras callbacks of every `fit`.
    """

    def __init__(self, config, source, *, batch_size, epochs, fine_tune_epochs, patch_copies, seed, callbacks=()):
        self.image_size, self.epochs, self.fine_tune_epochs, self.seed = (
            config["image_size"], epochs, fine_tune_epochs, seed)
        self.trainers = Trainers(config, batch_size, seed, callbacks)
        print(f"Preparing whole images ({config['image_size']} px) and ROI patches ({config['patch_size']} px, "
              f"{patch_copies} per ROI)...", flush=True)
        self.whole, self.rois = prepare_mammograms(source, image_size=config["image_size"],
                                                   patch_size=config["patch_size"], patch_copies=patch_copies,
                                                   seed=seed)
        skipped = self.rois.skipped_rois
        print(f"  {len(self.whole)} whole images, {len(self.rois)} ROI patches" + (
            f"; {len(skipped)} ROIs outside their image skipped (e.g. {skipped[0]})" if skipped else ""), flush=True)
        self.final, self.target = {}, None  # final source models' path weights; target whole images

    def whole_images(self, records):
        """Whole images of other records (a target or a test folder), without patches."""
        return prepare_mammograms(records, image_size=self.image_size, with_patches=False)[0]

    def scores(self, weights, arrays, split, parts=("validation", "test")):
        """`{part: P(class 1) of the split part's images}` under path `weights` (JSON lists)."""
        return {p: self.trainers.scores(weights, arrays.select(patients(split[p])).images).tolist() for p in parts}

    def source_unit(self, kind, split, index):
        """`kind` trained on fold `index`'s training patients: its scores, and D's patch AUROC on test patients."""
        train = patients(split["train"])
        weights = self.trainers.train(kind, self.whole.select(train), self.rois.select(train), self.epochs,
                                      self.seed + index)
        return {"scores": self.scores(weights, self.whole, split),
                **self.trainers.patch_result(kind, self.rois.select(patients(split["test"])))}

    def final_model(self, kind, records):
        """`kind` trained on the patients of `records`: its F + E path as a Keras model."""
        train = patients(records)
        print(f"Final source model {kind} on {len(train)} patients...", flush=True)
        return self.trainers.path_model(self.trainers.train(
            kind, self.whole.select(train), self.rois.select(train), self.epochs, self.seed))

    def target_unit(self, kind, split, index):
        """The final `kind`'s path fine-tuned on target fold `index`'s training patients: its scores."""
        tuned = self.trainers.fit_path("fine_tune", self.final[kind], self.target.select(patients(split["train"])),
                                       self.fine_tune_epochs, self.seed + index)
        return {"scores": self.scores(tuned, self.target, split)}

    def held_out_scores(self, kind, split, test_whole):
        """The final `kind`'s scores of the source's validation patients and of a test folder."""
        return {**self.scores(self.final[kind], self.whole, split, ("validation",)),
                "test": self.trainers.scores(self.final[kind], test_whole.images).tolist()}


def unit_result(name, unit):
    """`(scores, other results)` of a finished unit of work (`TransferStudy.*_unit`).

    Raises:
        UsageError: the unit holds no validation and test scores (a run folder
            of an earlier version of the recipe, whose units held test metrics).
    """
    if not isinstance(unit.get("scores"), dict):
        raise UsageError(f"The unit {name} of this run folder holds no validation and test scores (an earlier "
                         "version of the recipe wrote it): use another --out.")
    return unit["scores"], {key: value for key, value in unit.items() if key not in ("scores", "seconds")}


def threshold_rule(point, validation_labels):
    """The operating point a split's models are scored at, and what records a fallback.

    Small folds can leave validation patients of one class, on which no
    threshold can be chosen: their models are scored at argmax (P >= 0.5)
    and their results say so.

    Args:
        point: the run's `OperatingPoint`.
        validation_labels: labels of the split's validation images.

    Returns:
        `(operating point, fields)`: `point` and `{}`, or argmax and the
        fields (`operating_point`, `threshold_source`) that record the
        requested rule and the fallback.
    """
    if not point.uses_validation or len(set(validation_labels)) == 2:
        return point, {}
    return OperatingPoint("argmax"), {"operating_point": str(point), "threshold_source": ONE_CLASS_FALLBACK}


def add_patch_auroc(summary, folds):
    """Adds D's patch AUROC over folds to `summary` for the models that have one.

    Args:
        summary: `cross_validate`'s `{model: {metric: stats}}`, changed in place.
        folds: the folds' `Comparison.outcome()`s; a model's results hold
            `patch_auroc` (None where a fold's test patches hold one class).
    """
    for model in summary:
        results = [fold["results"][model] for fold in folds]
        if all("patch_auroc" in result for result in results):
            summary[model].update(summarise_folds({model: results}, ("patch_auroc",))[model])


def mean_and_spread(stats):
    """'mean +/- std' in % ('n/a (one fold)' for a single fold's spread)."""
    std = stats["std"]
    spread = "n/a (one fold)" if np.isnan(std) else f"{100 * std:.1f}"
    return f"{100 * stats['mean']:.1f} +/- {spread}"


def table_1(summaries, datasets):
    """The paper's Table 1 layout (source rows, fine-tuned target rows), then the paper's own rows.

    Args:
        summaries: `{"source": summary, "target": summary}` (target optional),
            each `{model: {"accuracy", "auroc": {"mean", "std"}}}`.
        datasets: `{"source": name, "target": name}` for the Dataset column.
    """
    lines = ["| Model | End-to-end | Dataset | Accuracy (%) | AUC (%) |", "|---|---|---|---|---|"]
    for part, summary in summaries.items():
        for model, stats in summary.items():
            name = model if part == "source" else f"{model} (fine-tuned)"
            lines.append(f"| {name} | yes | {datasets[part]} | {mean_and_spread(stats['accuracy'])} | "
                         f"{mean_and_spread(stats['auroc'])} |")
    for name, dataset, accuracy, auc in PAPER_ROWS:
        lines.append(f"| {name} | yes | {dataset} | {accuracy} | {auc} |")
    return "\n".join(lines)


def write_table_1(directory, summaries, datasets, bar_title):
    """Writes and prints Table 1 (table.md), and saves the source AUCs as bars (auc_configurations.png).

    Args:
        directory: the run folder (a `pathlib.Path`).
        summaries: `{"source": summary, "target": summary}` (target optional).
        datasets: `{"source": name, "target": name}`.
        bar_title: the bar chart's title.
    """
    table = table_1(summaries, datasets)
    (directory / "table.md").write_text(table + "\n")
    print(f"\n{table}")
    save_auc_bars(directory / "auc_configurations.png", summaries["source"], bar_title)


def save_pooled_roc(path, comparisons, title):
    """ROC curves of each model's test scores pooled over splits (`Comparison`s on disjoint test patients)."""
    from gan_zoo.metrics.plots import save_roc_curves

    labels = np.concatenate([c.labels["test"] for c in comparisons])
    save_roc_curves(path, {model: (labels, np.concatenate([c.scores[model]["test"] for c in comparisons]))
                           for model in comparisons[0].scores}, title=title)


def save_auc_bars(path, summary, title):
    """Fig. 3: mean cross-validated AUC (+/- std) of each configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    figure, axes = plt.subplots(figsize=(4.5, 3.2))
    means = [100 * summary[n]["auroc"]["mean"] for n in names]
    stds = [100 * np.nan_to_num(summary[n]["auroc"]["std"]) for n in names]  # no bar for one fold
    axes.bar(names, means, yerr=stds, capsize=4, color=["#4c72b0", "#dd8452", "#8c8c8c"][: len(names)])
    axes.set_ylabel("AUC (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title, fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
