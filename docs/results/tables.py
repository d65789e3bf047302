"""Table makers of docs/results/render.py: `TABLES[name](result file as JSON) -> Markdown`.

One function per measured table of the docs. A maker formats numbers of its
file; the only other numbers it writes are a paper's published values, each
named as such in its row.
"""


def _row(*cells):
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _count(value):
    return f"{int(value):,}"


def cell_detector(run):
    """docs/models/pathology_gan.md: nucleus detection on BreCaHAD at each scale."""
    scales = {"tile": "tile (1360x1024)", "crop224": "crop224 (224x224 crops)",
              "down2": "down2 (tiles at 1/2)", "down4": "down4 (tiles at 1/4)"}
    lines = [_row("scale", "images", "annotated", "detected", "precision", "recall", "F1", "s / image"),
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for scale, result in run["results"].items():
        lines.append(_row(scales.get(scale, scale), _count(result["images"]), _count(result["annotated"]),
                          _count(result["detected"]), f"{result['precision']:.3f}", f"{result['recall']:.3f}",
                          f"{result['f1']:.3f}", f"{result['seconds_per_image']:.3f}"))
    return "\n".join(lines)


def _kid(scores):
    spread = scores.get("kid_std")
    return f"{scores['kid']:.3f}" + ("" if spread is None else f" +/- {spread:.3f}")


def pathology_gan_runs(*runs):
    """docs/results/pathology_gan.md: KID / FID (domain extractor) and the cell-count FID per run."""
    lines = [_row("run", "KID validation", "FID validation", "KID test", "FID test", "cell-count FID test",
                  "training images/s"),
             "|---|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        validation = run["kid_fid_validation"][-1]
        test = run["kid_fid_test"]
        augment = run["options"].get("augment")
        lines.append(_row(f"DiffAugment ({augment})" if augment else "no augmentation",
                          _kid(validation), f"{validation['fid']:.1f}", _kid(test), f"{test['fid']:.1f}",
                          f"{run['cell_fid_test']['fid']:.2f}", f"{run['train_images_per_second']:.1f}"))
    return "\n".join(lines)


def cell_counts(*runs):
    """docs/results/pathology_gan.md: mean counts per tile, generated vs test tiles."""
    keys = ("cancer_cells", "other_cells", "cancer_cell_density")
    first = runs[0]["cell_fid_test"]
    lines = [_row("tiles", "n", "cancer cells", "other cells", "cancer cells / 10,000 tissue px"),
             "|---|---:|---:|---:|---:|",
             _row("test (real)", first["real"], *(f"{first['real_mean'][k]:.2f}" for k in keys))]
    for run in runs:
        counts = run["cell_fid_test"]
        augment = run["options"].get("augment")
        lines.append(_row("generated, " + ("DiffAugment" if augment else "no augmentation"), counts["generated"],
                          *(f"{counts['generated_mean'][k]:.2f}" for k in keys)))
    return "\n".join(lines)


def _mean_std(summary, scale=100.0, digits=1):
    """`"49.5 +/- 2.5"` of a fold summary (`summarise_folds`), in percent by default."""
    std = summary.get("std")
    text = f"{scale * summary['mean']:.{digits}f}"
    return text if std is None or std != std else f"{text} +/- {scale * std:.{digits}f}"


# Shams et al. 2018, Table 1 and Fig. 3: the published values beside ours.
DIAGRAM_PAPER_ROWS = (
    ("DiaGRAM (paper)", "yes", "DDSM", "89 +/- 3.4", "88.4 +/- 2.9"),
    ("DiaGRAM (paper)", "yes", "INbreast", "93.5 +/- 2.9", "92.5 +/- 2.4"),
    ("DiaGRAM without GAN (paper, Fig. 3)", "yes", "DDSM", "n/a", "85.5"),
)


def diagram_cross_validation(run):
    """docs/results/diagram.md: accuracy and AUROC over folds, source and target, with the paper's rows."""
    names = {"source": run["data"]["source"]["format"], "target": run["data"]["target"]["format"]}
    lines = [_row("Model", "End-to-end", "Dataset", "Accuracy (%)", "AUC (%)"), "|---|---|---|---|---|"]
    for part, models in run["cross_validation"].items():
        for model, metrics in models.items():
            label = model if part == "source" else f"{model} (fine-tuned)"
            lines.append(_row(label, "yes", names[part], _mean_std(metrics["accuracy"]),
                              _mean_std(metrics["auroc"])))
    lines += [_row(*row) for row in DIAGRAM_PAPER_ROWS]
    return "\n".join(lines)


def diagram_folds(run):
    """docs/results/diagram.md: test AUROC of every fold, and D's ROI-patch AUROC."""
    lines = [_row("part", "model", "test AUROC per fold", "patch AUROC of D per fold"), "|---|---|---|---|"]
    for part, models in run["cross_validation"].items():
        for model, metrics in models.items():
            patch = metrics.get("patch_auroc")
            lines.append(_row(part, model, ", ".join(f"{v:.2f}" for v in metrics["auroc"]["folds"]),
                              ", ".join(f"{v:.2f}" for v in patch["folds"]) if patch else "n/a"))
    return "\n".join(lines)


def diagram_paired(run):
    """docs/results/diagram.md: DiaGRAM against each other model, fold by fold (AUROC points)."""
    lines = [_row("part", "pair", "AUROC difference (points)", "DiaGRAM higher in", "paired t-test p",
                  "DeLong p per fold"), "|---|---|---:|---:|---:|---|"]
    for part, pairs in run["paired_vs_reference"].items():
        for pair, result in pairs.items():
            folds = len(result["differences"])
            lines.append(_row(part, pair, f"{100 * result['mean']:+.1f} +/- {100 * result['std']:.1f}",
                              f"{result['a_wins']}/{folds}", f"{result['p_value']:.2g}",
                              ", ".join(f"{p:.2g}" for p in result["delong_p_per_fold"])))
    return "\n".join(lines)


def _percent(value, digits=2):
    return "n/a" if value is None or value != value else f"{100 * value:.{digits}f}"


def augmentation_test(run):
    """docs/results/cyclegan.md: every classifier row on the test patients (Table 1's layout)."""
    first = (run["reference"], run["delong_vs_real_same_steps"]["baseline"])  # metrics.json sorts its keys
    results = {name: run["test_metrics"][name] for name in [*first, *sorted(set(run["test_metrics"]) - set(first))]}
    rows = (("Precision (%)", "precision"), ("Recall / sensitivity (%)", "recall"),
            ("Specificity (%)", "specificity"), ("Accuracy (%)", "accuracy"),
            ("Balanced accuracy (%)", "balanced_accuracy"), ("F1 (%)", "f1"))
    lines = [_row("Metric", *results), "|---|" + "---:|" * len(results)]
    for label, key in rows:
        lines.append(_row(label, *(_percent(r[key]) for r in results.values())))
    lines.append(_row("AUROC (%) [95% CI]", *(f"{_percent(r['auroc'])} ({_percent(r['auroc_ci_low'])}-"
                                             f"{_percent(r['auroc_ci_high'])})" for r in results.values())))
    lines.append(_row("Threshold", *(f"{r['threshold']:.3f}" for r in results.values())))
    return "\n".join(lines)


def augmentation_delong(run):
    """docs/results/cyclegan.md: paired DeLong tests, as gains of each row over its baseline."""
    lines = [_row("comparison", "AUROC gain (points)", "DeLong p"), "|---|---:|---:|"]
    control = run["delong_vs_real_same_steps"]
    for baseline, tests in ((run["reference"], run["delong_vs_reference"]),
                            (control["baseline"], {k: v for k, v in control.items() if k != "baseline"})):
        for row, test in tests.items():
            lines.append(_row(f"{row} vs {baseline}", f"{-100 * test['difference']:+.1f}", f"{test['p_value']:.2g}"))
    return "\n".join(lines)


def augmentation_generators(run):
    """docs/results/cyclegan.md: KID / FID of each synthetic set per class (domain extractor)."""
    lines = [_row("synthetic set, class", "KID", "FID", "real", "generated"), "|---|---:|---:|---:|---:|"]
    for name, scores in run["generator_scores"].items():
        lines.append(_row(name, f"{scores['kid']:.3f}", f"{scores['fid']:.2f}", _count(scores["n_real"]),
                          _count(scores["n_fake"])))
    return "\n".join(lines)


def _beside_johnson(results):
    from gan_zoo.training.semi_cgan_study import beside_paper  # the recipe's own table, paper values included

    return beside_paper(results).split("\n\n")[0]


def semi_cgan_table_1(run):
    """docs/RESULTS.md: Johnson's Table 1 at the run's operating point, the paper's values beside."""
    return _beside_johnson(run["test_metrics"])


def semi_cgan_table_1_youden(run):
    """docs/RESULTS.md: the same scores at Youden's J (`gan-zoo rethreshold --operating-point youden`)."""
    return _beside_johnson(run["at_other_operating_points"]["youden"])


def semi_cgan_models(run):
    """docs/RESULTS.md: every model of the Table 1 run, AUROC and both operating points."""
    argmax, youden = run["test_metrics"], run["at_other_operating_points"]["youden"]
    lines = [_row("model", "AUROC (%) [95% CI]", "BAC argmax", "BAC Youden", "F1 argmax", "F1 Youden",
                  "Youden threshold", "epochs"), "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, result in argmax.items():
        lines.append(_row(name, f"{_percent(result['auroc'])} ({_percent(result['auroc_ci_low'])}-"
                                f"{_percent(result['auroc_ci_high'])})",
                          _percent(result["balanced_accuracy"]), _percent(youden[name]["balanced_accuracy"]),
                          _percent(result["f1"]), _percent(youden[name]["f1"]), f"{youden[name]['threshold']:.3f}",
                          result.get("epochs", "n/a")))
    return "\n".join(lines)


# Wu et al. 2018, Table 1 (ImageNet ResNet-50, 10,000 steps, full resolution).
CIGAN_PAPER_AUROCS = "0.882 / 0.887 / 0.896"


def cigan_table_1(run):
    """docs/results/cigan.md: test AUROC of the three ResNet-50s, DeLong p between them, the paper's row."""
    names = ("Baseline (no augmentation)", "Traditional augmentation", "ciGAN + Traditional aug")
    lines = [_row("Data augmentation scheme", "AUROC (95% CI)", f"p vs {names[0]}", f"p vs {names[1]}",
                  "accuracy", "balanced accuracy"), "|---|---|---:|---:|---:|---:|"]
    for index, name in enumerate(names):
        result = run["test_metrics"][name]
        p_values = [f"{run['delong'][f'{other} vs {name}']['p_value']:.2f}" if other_index < index else ""
                    for other_index, other in enumerate(names[:2])]
        lines.append(_row(name, f"{result['auroc']:.3f} ({result['auroc_ci_low']:.3f}-{result['auroc_ci_high']:.3f})",
                          *p_values, f"{result['accuracy']:.3f}", f"{result['balanced_accuracy']:.3f}"))
    lines.append(_row("*paper (ImageNet ResNet-50, 10,000 steps, full resolution)*", f"*{CIGAN_PAPER_AUROCS}*",
                      "", "", "", ""))
    return "\n".join(lines)


def _flag(command, name, default=None):
    words = command.split()
    return words[words.index(name) + 1] if name in words else default


def dcgan_demo(*runs):
    """docs/RESULTS.md: the README's DCGAN demo against the same recipe without EMA, same seed."""
    lines = [_row("run (same seed)", "recipe time", "KID", "downstream test AUROC real / generated / both"),
             "|---|--:|--:|---|"]
    for run in runs:
        half_life = _flag(run["command"], "--ema-half-life")
        label = f"{_flag(run['command'], '--epochs')} epochs, " + (
            f"EMA half-life {half_life} steps" if half_life else "no EMA")
        test = run["downstream_test"]
        lines.append(_row(label, f"{run['wall_seconds']:.0f} s", f"{run['generative_validation']['kid']:.4f}",
                          f"{test['real_auroc']:.3f} / {test['synthetic_auroc']:.3f} / {test['augmented_auroc']:.3f}"))
    return "\n".join(lines)


def dcgan_kid_fid(*runs):
    """docs/RESULTS.md: KID / FID of each DCGAN variant against the validation patients, and the downstream AUROCs."""
    lines = [_row("variant", "KID (+/- std over subsets)", "FID", "small CNN trained on samples only: test AUROC",
                  "real only", "real + samples", "training images/s", "recipe wall (min)"),
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        test = run["downstream_test"]
        lines.append(_row(run["variant"], _kid(run["generative_validation"]),
                          f"{run['generative_validation']['fid']:.2f}", f"{test['synthetic_auroc']:.3f}",
                          f"{test['real_auroc']:.3f}", f"{test['augmented_auroc']:.3f}",
                          f"{run['train_images_per_second']:.0f}", f"{run['wall_seconds'] / 60:.1f}"))
    return "\n".join(lines)


def throughput(*files):
    """docs/results/cigan.md, diagram.md: rows of benchmarks/throughput.py JSON files, each with its peak."""
    lines = [_row("model", "settings", "precision", "batch", "images/s", "ms/step", "GFLOP/step",
                  "% of peak (matmul peak of that run, GFLOP/s)"),
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for file in files:
        for run in file["runs"]:
            for result in run["results"]:
                settings = ", ".join(f"{key}={value}" for key, value in result["overrides"].items()
                                     if key not in ("backbone_weights", "feature_weights")) or "paper defaults"
                compute = "bfloat16" if "bfloat16" in result["precision"] else result["precision"]
                peak = run["peak"][compute]["best_gflops"]
                lines.append(_row(result["model"], settings, result["precision"], result["batch_size"],
                                  f"{result['images_per_s']:.1f}", f"{result['ms_per_step']:.0f}",
                                  f"{result['flops_per_step'] / 1e9:.1f}",
                                  f"{result['percent_of_peak']:.1f} ({peak:.0f})"))
    return "\n".join(lines)


TABLES = {
    "cell_detector": cell_detector,
    "pathology_gan_runs": pathology_gan_runs,
    "cell_counts": cell_counts,
    "diagram_cross_validation": diagram_cross_validation,
    "diagram_folds": diagram_folds,
    "diagram_paired": diagram_paired,
    "augmentation_test": augmentation_test,
    "augmentation_delong": augmentation_delong,
    "augmentation_generators": augmentation_generators,
    "semi_cgan_table_1": semi_cgan_table_1,
    "semi_cgan_table_1_youden": semi_cgan_table_1_youden,
    "semi_cgan_models": semi_cgan_models,
    "cigan_table_1": cigan_table_1,
    "dcgan_demo": dcgan_demo,
    "dcgan_kid_fid": dcgan_kid_fid,
    "throughput": throughput,
}
