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
        assert path.suffix == ".json" and path.stat().st_size < 128_000, path
        json.loads(path.read_text())


def _render_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "results" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_table_block_of_the_docs_is_what_its_result_file_gives():
    render = _render_module()
    assert render.stale_blocks() == []
    found = [name for path in render.documents() for name, *_ in render.blocks(path.read_text())]
    assert "cell_detector" in found


def test_a_number_changed_by_hand_in_a_table_block_is_caught(tmp_path, monkeypatch):
    render = _render_module()
    doc = ROOT / "docs" / "models" / "pathology_gan.md"
    text = doc.read_text()
    assert "| 0.914 |" in text
    edited = tmp_path / "docs" / "models" / "pathology_gan.md"
    edited.parent.mkdir(parents=True)
    edited.write_text(text.replace("| 0.914 |", "| 0.941 |", 1))
    monkeypatch.setattr(render, "ROOT", tmp_path)
    assert render.stale_blocks() == ["docs/models/pathology_gan.md: table cell_detector "
                                     "(from runs/cell_detector_brecahad.json)"]
    render.rewrite()
    assert edited.read_text() == text


def _named_test_exists(marker):
    """`<!-- checked by tests/FILE.py::test_name -->` names a test that exists."""
    found = re.search(r"checked by (tests/[\w/]+\.py)::(\w+)", marker)
    return bool(found) and f"def {found[2]}(" in (ROOT / found[1]).read_text()


def test_every_table_of_the_results_docs_is_rendered_from_a_file_or_says_why_not():
    """A measured table is a block; any other is a paper's, a test's, an index without values, or says why it has no file."""
    unmarked = []
    for path in [ROOT / "docs" / "RESULTS.md", *sorted((ROOT / "docs" / "results").glob("*.md"))]:
        inside, index, previous = False, False, ""
        for number, line in enumerate(path.read_text().splitlines(), 1):
            index = (index and line.startswith("|")) or (previous.startswith("<!-- index:") and line.startswith("|"))
            if line.startswith("<!-- table "):
                inside = True
            elif line.startswith("<!-- end table"):
                inside = False
            elif line.startswith("|") and index and re.search(r"\d\.\d", line):
                unmarked.append(f"{path.relative_to(ROOT)}:{number} (a measured value in an index table)")
            elif line.startswith("|") and not previous.startswith("|") and not inside:
                if not (previous.startswith(("<!-- paper values", "<!-- unbacked:", "<!-- index:"))
                        or previous.startswith("<!-- checked by") and _named_test_exists(previous)):
                    unmarked.append(f"{path.relative_to(ROOT)}:{number}")
            previous = line
    assert unmarked == [], "\n".join(unmarked)
