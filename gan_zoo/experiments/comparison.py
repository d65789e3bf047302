"""Classifiers compared on one patient split, and across k folds.

Every recipe that compares classifiers ends the same way: each model's
scores of the validation patients set its decision threshold (the run's
`OperatingPoint`), the test patients are scored once with it, the models
are compared pairwise on the same test images (DeLong), and the split's
table, per-image scores, ROC curves and confusion matrices are written.
`Comparison` is that ending; `cross_validate` summarises k folds of it
(mean +/- std per model, and a reference model against each other fold by
fold).

    comparison = Comparison(split, operating_point)
    comparison.add("small_cnn", {"validation": p_val, "test": p_test}, epochs=10)
    comparison.add("semi_cgan", ...)
    comparison.save(run)                     # table.md, scores.npz, ROC, PR, confusions
    outcome = comparison.outcome(reference="semi_cgan")   # JSON for metrics.json
"""

import numpy as np

from gan_zoo.experiments.evaluation import score_split
from gan_zoo.metrics import crossval
from gan_zoo.metrics.classification import format_metrics_table
from gan_zoo.metrics.delong import delong_paired_test

SCORED_PARTS = ("validation", "test")


class Comparison:
    """Scores of several classifiers on one `Split`, at one operating point.

    Args:
        split: the `Split` (its `validation` and `test` records are scored).
        operating_point: an `OperatingPoint` (or its text), applied to
            every model.
        label: `record -> label in {0, 1}` (default `record.label`).
        path: `record -> file path` for scores.npz (default `record.path`).
    """

    def __init__(self, split, operating_point, *, label=None, path=None):
        self.split = split
        self.operating_point = operating_point
        self._path = path or (lambda record: record.path)
        read = label or (lambda record: record.label)
        self.labels = {part: np.array([read(r) for r in split[part]], np.int64) for part in SCORED_PARTS}
        self.results, self.scores = {}, {}

    def add(self, name, scores, **extra):
        """Scores model `name`; returns its test metrics (plus `extra`, e.g. epochs).

        Args:
            name: the model's column in the table.
            scores: `{"validation": p, "test": p}` in the split's record order.
            **extra: JSON values recorded with the model's result.
        """
        scores = {part: np.asarray(scores[part], np.float32).reshape(-1) for part in SCORED_PARTS}
        for part in SCORED_PARTS:
            if len(scores[part]) != len(self.labels[part]):
                raise ValueError(f"{name}: {len(scores[part])} {part} scores for "
                                 f"{len(self.labels[part])} {part} records.")
        self.scores[name] = scores
        self.results[name] = {**score_split(self.operating_point, self.labels, scores), **extra}
        return self.results[name]

    def paired(self, reference):
        """`{other model: DeLong test of reference vs other}` on the test images.

        Where the test images cannot give the test (fewer than two of a
        class), its `p_value` is NaN and `error` says why: the models'
        results stand without it.
        """
        if reference not in self.scores:
            return {}
        tests = {}
        for other in self.scores:
            if other == reference:
                continue
            try:
                tests[other] = delong_paired_test(self.labels["test"], self.scores[reference]["test"],
                                                  self.scores[other]["test"])
            except ValueError as error:
                tests[other] = {"p_value": float("nan"), "error": str(error)}
        return tests

    def table(self, metrics=None):
        """The paper's layout: rows are metrics, columns are models (Markdown)."""
        return format_metrics_table(self.results, **({"metrics": metrics} if metrics else {}))

    def save(self, run, *, table_metrics=None):
        """Writes table.md, scores.npz, roc_test.png, pr_test.png and confusion_<model>.png into `run`.

        A split drawn by image (patients in train and test) puts its
        warning at the head of table.md.
        """
        from gan_zoo.metrics.plots import save_confusion_matrix, save_pr_curves, save_roc_curves

        warning = f"> **WARNING: {self.split.note}.**\n\n" if getattr(self.split, "leaks_patients", False) else ""
        run.path("table.md").write_text(warning + self.table(table_metrics) + "\n")
        self.save_scores(run.path("scores.npz"))
        curves = {name: (self.labels["test"], s["test"]) for name, s in self.scores.items()}
        save_roc_curves(run.path("roc_test.png"), curves)
        save_pr_curves(run.path("pr_test.png"), curves)
        for name, result in self.results.items():
            predicted = (self.scores[name]["test"] >= result["threshold"]).astype(int)
            save_confusion_matrix(run.path(f"confusion_{name}.png"), self.labels["test"], predicted)

    def save_scores(self, path):
        """Every model's per-image scores with labels, patients and files.

        Keys `<model>.<part>`, `labels.<part>`, `patients.<part>` and
        `paths.<part>` for the validation and test parts, so that runs can
        be compared on the same images afterwards (e.g. a paired DeLong
        test of two settings: `gan_zoo.metrics.delong_paired_test`).
        """
        arrays = {}
        for part in SCORED_PARTS:
            records = self.split[part]
            arrays[f"labels.{part}"] = self.labels[part]
            arrays[f"patients.{part}"] = np.array([str(self.split.patient(r)) for r in records])
            arrays[f"paths.{part}"] = np.array([str(self._path(r)) for r in records])
            for name, by_part in self.scores.items():
                arrays[f"{name}.{part}"] = by_part[part]
        np.savez_compressed(path, **arrays)

    def outcome(self, reference=None):
        """JSON of the split: results, DeLong tests against `reference`, patients, records."""
        return {
            "results": self.results,
            "comparisons": self.paired(reference) if reference else {},
            "patients": {part: self.split.patients(part) for part in self.split.parts},
            "patches": {part: len(records) for part, records in self.split.parts.items()},
        }


def rescore(scores_path, operating_point):
    """Every model's test metrics in a saved scores.npz, at another operating point.

    The scores are those the run saved (`Comparison.save_scores`); only the
    threshold changes, chosen again on the same validation patients by
    `operating_point`. Nothing is retrained and the test scores are not
    looked at to choose it, so a run can be reported at several operating
    points (a paper's argmax beside Youden's J, say) without a second run.

    Args:
        scores_path: a scores.npz written by `Comparison.save`.
        operating_point: an `OperatingPoint` or its text.

    Returns:
        `{model: metrics}` in the order the run added the models.
    """
    with np.load(scores_path) as saved:
        arrays = {key: saved[key] for key in saved.files}
    labels = {part: arrays[f"labels.{part}"] for part in SCORED_PARTS}
    models = dict.fromkeys(key.rsplit(".", 1)[0] for key in arrays)
    for key in ("labels", "patients", "paths"):
        models.pop(key, None)
    if not models:
        raise ValueError(f"{scores_path} holds no model's scores.")
    return {name: score_split(operating_point, labels, {part: arrays[f"{name}.{part}"] for part in SCORED_PARTS},
                              one_class_validation="argmax")
            for name in models}


def cross_validate(folds, reference=None, metric="auroc"):
    """Mean +/- std over folds, and `reference` against each other model fold by fold.

    Args:
        folds: `Comparison.outcome()`s of the folds (as read back from JSON).
        reference: the model compared with every other (None: no pairs).
        metric: the paired metric.

    Returns:
        `(summary, paired)`: `summarise_folds`' dict, and
        `{"<reference> - <other>": paired_fold_comparison + per-fold DeLong p}`.
    """
    models = list(folds[0]["results"])
    per_model = {m: [fold["results"][m] for fold in folds] for m in models}
    summary = crossval.summarise_folds(per_model)
    paired = {}
    if reference in per_model:
        for other in models:
            if other != reference:
                comparison = crossval.paired_fold_comparison(per_model[reference], per_model[other], metric)
                comparison["delong_p_per_fold"] = [fold["comparisons"][other]["p_value"] for fold in folds]
                paired[f"{reference} - {other}"] = comparison
    return summary, paired


def format_paired(paired, folds):
    """One line per pair: the fold-by-fold AUROC difference and its paired t-test."""
    return "\n".join(
        f"{pair}: AUROC difference {c['mean']:+.4f} +/- {c['std']:.4f} over folds "
        f"(wins {c['a_wins']}/{folds}; paired t-test p = {c['p_value']:.3g})"
        for pair, c in paired.items()
    )


def compare_on_splits(splits, compute, *, report, reference, data, describe=""):
    """Runs a comparison on each split as a unit of work, then writes the run's report.

    One split (`name == "split"`) gives its test metrics; k folds give
    the mean +/- std over folds (table.md) and `reference` against every
    other model fold by fold. Each fold works in its own folder
    (fold0, ...); a rerun reads finished splits back and computes the
    others again (GAN and classifier training inside resume from their
    own checkpoints).

    Args:
        splits: the `Split`s.
        compute: `(split, run) -> Comparison.outcome()` plus any JSON keys.
        report: the run's `Report` (its `units` hold the finished splits).
        reference: the model compared with the others.
        data: provenance of the data for metrics.json.
        describe: how the threshold was chosen, for the printed heading.

    Returns:
        The metrics.json document written.
    """
    from gan_zoo.experiments.run_folder import Run
    from gan_zoo.metrics.crossval import format_cv_table

    run, units = report.run, report.units
    scored = "Validation patients (tuning)" if splits[0].scored == "validation" else "Test patients"
    if len(splits) == 1 and splits[0].name == "split":
        (split,) = splits
        outcome = units.get(split.name, lambda: compute(split, run))
        print(f"\n{scored} ({split.note}; {describe}):\n\n{(run.directory / 'table.md').read_text()}")
        extra = {k: v for k, v in outcome.items() if k not in ("results", "comparisons")}
        return report.write({"test_metrics": outcome["results"], "reference": reference,
                             "delong_vs_reference": outcome["comparisons"], "split": split.note},
                            data={**data, **extra, "patients": {k: len(v) for k, v in outcome["patients"].items()}})
    folds = [units.get(split.name, lambda split=split: {"fold": split.name, **compute(split, Run(
        run.path(split.name), run.options))}) for split in splits]
    summary, paired = cross_validate(folds, reference=reference)
    table = format_cv_table(summary)
    (run.directory / "table.md").write_text(table + "\n")
    print(f"\n{scored} of every fold ({splits[0].note}; {describe} in each fold):\n\n{table}\n"
          f"{format_paired(paired, len(folds))}")
    return report.write({"cross_validation": summary, "reference": reference, "paired_vs_reference": paired,
                         "folds": folds, "split": splits[0].note, "tuning": splits[0].scored == "validation",
                         "folds_run": [split.name for split in splits]}, data=data)
