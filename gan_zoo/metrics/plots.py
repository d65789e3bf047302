"""Figures for classifier evaluation and GAN training: PNG files, no display.

Figures are drawn on matplotlib's Agg canvas through the object-oriented API
(`matplotlib.figure.Figure`), never through `pyplot`: nothing is registered in
pyplot's global figure list, the user's backend is left alone, and each figure
is released once saved. Matplotlib is imported on first use, so importing
`gan_zoo.metrics` stays cheap.
"""

import pathlib

import numpy as np

from gan_zoo.metrics import classification, delong

__all__ = ["save_confusion_matrix", "save_loss_curves", "save_pr_curves", "save_roc_curves"]

_DPI = 150


def _new_figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        figure.savefig(path, dpi=_DPI)
    finally:
        figure.clear()
    return path


def _curves_figure(curves, caller):
    """(figure, axes) for the curves of several models, one per dict entry."""
    if not curves:
        raise ValueError(f"{caller} needs at least one curve.")
    figure = _new_figure((4.8, 4.5))
    return figure, figure.add_subplot()


def _save_curves(figure, axes, path, *, xlabel, ylabel, legend, title):
    """Axes 0..1 (a little headroom above 1), labels, legend and title; then saves."""
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend(loc=legend, fontsize="small")
    if title:
        axes.set_title(title)
    return _save(figure, path)


def save_confusion_matrix(
    path, y_true, y_pred, class_names=("healthy", "IDC"), *, title=None
):
    """Writes the 2x2 confusion matrix as an image.

    Rows are true classes, columns predicted classes; each cell shows the
    count and its share of the true class (row-normalised, so the diagonal
    reads as specificity and sensitivity).

    Args:
        path: output file; the format follows the suffix (`.png`, `.pdf`...).
            Parent folders are created.
        y_true: true labels in {0, 1}.
        y_pred: predicted labels in {0, 1} (threshold the scores first).
        class_names: names of class 0 and class 1.
        title: figure title; none when None.

    Returns:
        The path written, as a `pathlib.Path`.
    """
    if len(class_names) != 2:
        raise ValueError(f"class_names must name 2 classes, got {class_names!r}.")
    tn, fp, fn, tp = classification.confusion_counts(y_true, y_pred)
    counts = np.array([[tn, fp], [fn, tp]])
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros((2, 2)), where=row_totals > 0)

    figure = _new_figure((4.2, 3.6))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of true class")
    for row in range(2):
        for column in range(2):
            axes.text(
                column,
                row,
                f"{counts[row, column]}\n{100.0 * shares[row, column]:.1f}%",
                ha="center",
                va="center",
                color="white" if shares[row, column] > 0.5 else "black",
            )
    axes.set_xticks([0, 1], labels=list(class_names))
    axes.set_yticks([0, 1], labels=list(class_names))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if title:
        axes.set_title(title)
    return _save(figure, path)


def save_roc_curves(path, curves, *, title=None):
    """Writes the ROC curves of several models in one figure.

    Args:
        path: output file; parent folders are created.
        curves: `{model name: (y_true, y_score)}`; each model is drawn with
            its AUROC in the legend, in the dict's order.
        title: figure title; none when None.

    Returns:
        The path written, as a `pathlib.Path`.
    """
    figure, axes = _curves_figure(curves, "save_roc_curves")
    for name, (y_true, y_score) in curves.items():
        fpr, tpr, _ = classification.roc_curve_points(y_true, y_score)
        auroc = delong.auroc(y_true, y_score)
        axes.plot(fpr, tpr, linewidth=1.5, label=f"{name} (AUROC {auroc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    axes.set_aspect("equal")
    return _save_curves(figure, axes, path, xlabel="false positive rate (1 - specificity)",
                        ylabel="true positive rate (sensitivity)", legend="lower right", title=title)


def save_pr_curves(path, curves, *, title=None):
    """Writes the precision-recall curves of several models in one figure.

    With rare positives (IDC patches, malignant masses) a precision-recall
    curve shows what a ROC curve hides: how many flagged images are wrong
    (Chi et al.'s Fig. 7). The legend gives each model's average precision;
    the dashed line is the prevalence, a classifier without skill.

    Args:
        path: output file; parent folders are created.
        curves: `{model name: (y_true, y_score)}`, in the dict's order.
        title: figure title; none when None.

    Returns:
        The path written, as a `pathlib.Path`.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure, axes = _curves_figure(curves, "save_pr_curves")
    prevalence = None
    for name, (y_true, y_score) in curves.items():
        labels = np.asarray(y_true).reshape(-1)
        if len(np.unique(labels)) < 2:
            raise ValueError("The precision-recall curve needs both classes in y_true.")
        precision, recall, _ = precision_recall_curve(labels, np.asarray(y_score).reshape(-1))
        average = average_precision_score(labels, np.asarray(y_score).reshape(-1))
        axes.plot(recall, precision, linewidth=1.5, label=f"{name} (AP {average:.3f})")
        prevalence = float(labels.mean())
    axes.axhline(prevalence, linestyle="--", color="grey", linewidth=1, label=f"prevalence {prevalence:.2f}")
    return _save_curves(figure, axes, path, xlabel="recall (sensitivity)", ylabel="precision",
                        legend="lower left", title=title)


def save_loss_curves(path, history, *, title=None, xlabel="epoch"):
    """Writes training curves, one line per series, in one figure.

    Args:
        path: output file; parent folders are created.
        history: `{series name: values}`, e.g. `{"d_loss": [...],
            "g_loss": [...]}`, or a `keras.callbacks.History` (its
            `.history` dict is used). Series may differ in length; each is
            drawn against 1..len(values). NaN values leave gaps.
        title: figure title; none when None.
        xlabel: label of the x axis.

    Returns:
        The path written, as a `pathlib.Path`.
    """
    history = getattr(history, "history", history)
    if not history:
        raise ValueError("save_loss_curves needs at least one series.")
    figure = _new_figure((6.0, 3.8))
    axes = figure.add_subplot()
    for name, values in history.items():
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError(f"Series {name!r} is empty.")
        axes.plot(np.arange(1, values.size + 1), values, label=str(name))
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(xlabel)
    axes.set_ylabel("value")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    if title:
        axes.set_title(title)
    return _save(figure, path)
