"""Numbers quoted in the docs come from committed result files (docs/results/runs/)."""

import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "results" / "runs"


def test_the_readme_quotes_its_demo_run():
    readme = " ".join((ROOT / "README.md").read_text().split())
    run = json.loads((RUNS / "readme_demo.json").read_text())
    assert run["command"].split("recipes/", 1)[1] in readme  # the command the README gives
    found = re.search(r"AUROCs of ([\d.]+) / ([\d.]+) / ([\d.]+) and KID ([\d.]+)", readme)
    assert found, "the README no longer quotes the demo's AUROCs and KID"
    downstream = run["downstream_test"]
    quoted = [float(v) for v in found.groups()]
    assert quoted[:3] == [round(downstream[f"{k}_auroc"], 3) for k in ("real", "synthetic", "augmented")]
    assert quoted[3] == round(run["generative_validation"]["kid"], 4)
    assert run["generative_validation"]["kid_std"] is None  # printed "n/a", as the README says
    seconds = re.search(r"Measured on 2 CPU cores: (\d+) s for the recipe", readme)
    assert seconds and int(seconds.group(1)) == round(run["wall_seconds"])


def test_every_result_file_is_small_json():
    for path in RUNS.glob("*"):
        assert path.suffix == ".json" and path.stat().st_size < 64_000, path
        json.loads(path.read_text())


def test_the_cell_detector_table_quotes_its_benchmark_run():
    doc = (ROOT / "docs" / "models" / "pathology_gan.md").read_text()
    results = json.loads((RUNS / "cell_detector_brecahad.json").read_text())["results"]
    for scale, result in results.items():
        row = next(line for line in doc.splitlines() if line.startswith(f"| {scale} "))
        cells = [cell.strip().replace(",", "") for cell in row.strip("|").split("|")]
        assert cells[1:7] == [str(result["images"]), str(result["annotated"]), str(result["detected"]),
                              f"{result['precision']:.3f}", f"{result['recall']:.3f}", f"{result['f1']:.3f}"], scale
