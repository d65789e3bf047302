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


TABLES = {
    "cell_detector": cell_detector,
}
