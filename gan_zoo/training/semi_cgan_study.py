"""Johnson 2020's study: the semi-supervised cGAN at several widths, its Table 1 beside the paper's.

Johnson, "Detecting Invasive Ductal Carcinoma with Semi-Supervised
Conditional GANs" (FTC 2020), Table 1 reports the cGAN at width
multipliers omega = 1, 2 and 4 and the Cruz-Roa et al. 2014 CNN on IDC
patches. `recipes/semi_cgan_idc.py --table-1` trains the same models on one
split; `beside_paper` prints the measured values with the paper's beside
them. The paper held out 20% of the PATCHES (one patient's patches on both
sides); the recipe's default splits are by patient, so the two columns are
comparable only with `--split johnson`, and even then on a different draw.

- `JOHNSON_TABLE_1`: the paper's values ("NA" cells are None);
- `paper_column`: the paper's column of a measured model, if any;
- `beside_paper`: the Markdown table, measured and paper columns side by side;
- `cgan_name`: a cGAN's column name (its width and preset);
- `train_cgan`: one cGAN trained (resumable) and scored on a split.
"""

import math
import re

import gan_zoo
from gan_zoo.metrics import binary_metrics
from gan_zoo.metrics.plots import save_loss_curves
from gan_zoo.training.classify import predict_scores
from gan_zoo.training.distribute import get_strategy
from gan_zoo.training.loop import train_gan

__all__ = ["JOHNSON_TABLE_1", "PAPER_METRICS", "beside_paper", "cgan_name", "paper_column", "train_cgan"]

# The paper's six rows, in its order.
PAPER_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "specificity", "f1")

# Johnson 2020, Table 1, as fractions; its "CNN ([2])" is Cruz-Roa et al. 2014.
JOHNSON_TABLE_1 = {
    "CNN (Cruz-Roa 2014)": {"accuracy": None, "balanced_accuracy": 0.8423, "precision": 0.6540,
                            "recall": 0.7960, "specificity": None, "f1": 0.7180},
    "cGAN 1": {"accuracy": 0.8668, "balanced_accuracy": 0.8115, "precision": 0.8194,
               "recall": 0.6829, "specificity": 0.9400, "f1": 0.7450},
    "cGAN 2": {"accuracy": 0.8745, "balanced_accuracy": 0.8319, "precision": 0.8085,
               "recall": 0.7329, "specificity": 0.9309, "f1": 0.7688},
    "cGAN 4": {"accuracy": 0.8833, "balanced_accuracy": 0.8354, "precision": 0.8439,
               "recall": 0.7241, "specificity": 0.9466, "f1": 0.7794},
}

_CGAN = re.compile(r"semi_cgan_w(?P<width>[\d.]+)(_.+)?$")


def cgan_name(width, preset=None):
    """The table column of the cGAN at `width` (and `preset`), e.g. `semi_cgan_w2`."""
    return f"semi_cgan_w{width:g}" + (f"_{preset}" if preset else "")


def paper_column(name):
    """The `JOHNSON_TABLE_1` column of a measured model, or None.

    Args:
        name: a column of the recipe's table: `cruz_roa_cnn`, or a cGAN's
            `cgan_name` (its width picks the paper's cGAN column).
    """
    if name == "cruz_roa_cnn":
        return "CNN (Cruz-Roa 2014)"
    found = _CGAN.match(name)
    if found:
        width = float(found["width"])
        column = f"cGAN {width:g}"
        return column if column in JOHNSON_TABLE_1 else None
    return None


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}"


def beside_paper(results, note=""):
    """Measured metrics with Johnson 2020's Table 1 values beside them (Markdown).

    Args:
        results: `{model: {metric: value}}` (a single split's test metrics),
            or `{model: {metric: {"mean": ...}}}` (a cross-validation
            summary: the means are shown).
        note: the split the measured values come from, printed under the table.

    Returns:
        The table, in percent, one measured column and its paper column
        per model the paper reports; None when no model has a paper column.
    """
    pairs = [(name, paper_column(name)) for name in results]
    pairs = [(name, column) for name, column in pairs if column]
    if not pairs:
        return None
    header = ["metric"] + [part for name, column in pairs for part in (name, f"paper: {column}")]
    rows = []
    for metric in PAPER_METRICS:
        row = [metric]
        for name, column in pairs:
            value = results[name].get(metric)
            row += [_cell(value["mean"] if isinstance(value, dict) else value), _cell(JOHNSON_TABLE_1[column][metric])]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in [header, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    paper = ("Paper: Johnson 2020, Table 1 (20% of the IDC patches held out, patients on both sides; "
             "n/a: not reported).")
    return "\n".join(lines) + f"\n\n{paper}" + (f"\nMeasured: {note}." if note else "")


def train_cgan(config, records, split, run, comparison, *, preset, strategy, jit, epochs, batch_size, seed,
               eval_every, size_policy):
    """Trains the cGAN of `config` in `run`; adds its discriminator's scores to `comparison`.

    Args:
        config: the semi_cgan config (width, class weights and the options).
        records: the training records (unlabelled ones included).
        split: the split; its validation and test parts are scored.
        run: the `gan_zoo.experiments.Run` of this cGAN (backups, grids,
            `semi_cgan.keras`, `losses.png`); a rerun resumes from it.
        comparison: the split's `gan_zoo.experiments.Comparison`.
        preset: the preset's name, for the column (`cgan_name`).
        strategy: `tf.distribute` strategy name.
        jit: XLA-compile the train step.
        epochs: training epochs.
        batch_size: global batch size.
        seed: seed of data order, init and noise.
        eval_every: epochs between validation AUROCs (0: never).
        size_policy: how off-size patches are fitted.
    """
    with get_strategy(strategy).scope():
        gan = gan_zoo.load("semi_cgan", **config)
        gan.compile(jit_compile=jit)

    # `classifier()` is taken at each use: with an EMA of D it holds the average as of the call.
    def validation_auroc(model, epoch):
        found = predict_scores(gan.classifier(), split["validation"], size_policy=size_policy)
        return {"validation_auroc": binary_metrics(comparison.labels["validation"], found)["auroc"]}

    # The model's plan (`gan-zoo train semi_cgan` uses it too); grids one row per class, 3x upscaled.
    logs = train_gan(gan, records, run, epochs=epochs, batch_size=batch_size, seed=seed,
                     size_policy=size_policy, sample_upscale=3, evaluate_every=eval_every or 1,
                     evaluate=validation_auroc if eval_every else None)
    run.save_model(gan, "semi_cgan.keras")  # before scoring: nothing trained is lost
    comparison.add(cgan_name(config["width"], preset),
                   {part: predict_scores(gan.classifier(), split[part], size_policy=size_policy)
                    for part in ("validation", "test")}, epochs=len(logs))
    save_loss_curves(run.path("losses.png"), {k: [e[k] for e in logs] for k in ("d_loss", "g_loss", "class_loss")})
