"""The measured tables of the docs, rendered from committed result files.

Every table of measured numbers in docs/RESULTS.md, docs/results/*.md and
docs/models/*.md sits between two markers and is what `TABLES[NAME]` makes
of one or more files of docs/results/runs/:

    <!-- table NAME from runs/FILE.json [runs/OTHER.json ...] -->
    | ... |
    <!-- end table -->

so a number in the docs is a number in a committed file, and a rerun
changes both together. Commands:

    python docs/results/render.py keep RUN_DIR NAME   # RUN_DIR/metrics.json -> runs/NAME.json
    python docs/results/render.py                     # rewrite every table block from its file
    python docs/results/render.py --check             # exit 1 naming each stale block

`keep` copies a recipe's metrics.json without its bulky per-item arrays
(per-image scores stay in the run folder's scores.npz) and adds the command
line, options and software versions of the run's config.json, and the
tables `gan-zoo rethreshold --write` left at the top of the run; paths are
written as `RUN/...` (the run folder) and `../shared/...` (the data).
"""

import argparse
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNS = HERE / "runs"
DOCS = ("docs/RESULTS.md", "docs/results/*.md", "docs/models/*.md")
BLOCK = re.compile(r"<!-- table (?P<name>\w+) from (?P<files>runs/[\w.-]+\.json(?: runs/[\w.-]+\.json)*) -->\n"
                   r"(?P<body>.*?)<!-- end table -->", re.S)
# metrics.json keys whose values are per-item arrays: kept in the run folder only.
BULKY_KEYS = ("history", "per_image", "scores", "epochs_log")
MAX_LIST = 200  # longer lists of numbers or names (scores, training patients) are per-item data

sys.path.insert(0, str(HERE))
from tables import TABLES  # noqa: E402  (the table makers, one per doc table)


def _lean(value):
    """`value` without per-item arrays: long lists of numbers or names become their length."""
    if isinstance(value, dict):
        return {k: _lean(v) for k, v in value.items() if k not in BULKY_KEYS}
    if isinstance(value, list):
        if len(value) > MAX_LIST and all(isinstance(v, (int, float, str)) for v in value):
            return {"items": len(value), "dropped": "per-item values, kept in the run folder"}
        return [_lean(v) for v in value]
    return value


def keep(run_dir, name):
    """Writes runs/NAME.json: the run's metrics.json, lean, with its command line and versions.

    Args:
        run_dir: a finished recipe run folder (metrics.json, config.json).
        name: the result file's name, without .json.
    """
    run_dir = pathlib.Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    command = config.get("command") or []
    if command and command[0].endswith("python"):
        command = ["python", *command[1:]]
    document = {"command": " ".join(command), "options": config.get("options"),
                "versions": config.get("versions") or metrics.get("versions"), **_lean(metrics)}
    # `gan-zoo rethreshold RUN --operating-point P --write`: the same scores at other operating points.
    others = {path.stem.removeprefix("metrics-"): json.loads(path.read_text())
              for path in sorted(run_dir.glob("metrics-*.json"))}
    if others:
        document["at_other_operating_points"] = others
    text = json.dumps(document, indent=1, default=str)  # in the run's order: tables follow it
    # Machine paths as a reader's: the run folder, and the shared data beside the checkout.
    text = text.replace(str(run_dir.resolve()), "RUN").replace(str((ROOT.parent / "shared").resolve()), "../shared")
    path = RUNS / f"{name}.json"
    path.write_text(text + "\n")
    return path


def blocks(text):
    """`(name, files, body, span)` of every table block of a document."""
    return [(m["name"], m["files"], m["body"], m.span("body")) for m in BLOCK.finditer(text)]


def render(name, files):
    """The body of block NAME, made from its files ("runs/A.json runs/B.json")."""
    if name not in TABLES:
        raise KeyError(f"no table maker named {name!r} in docs/results/tables.py")
    runs = [json.loads((HERE / file).read_text()) for file in files.split()]
    return TABLES[name](*runs).rstrip("\n") + "\n"


def documents():
    return [path for pattern in DOCS for path in sorted(ROOT.glob(pattern))]


def stale_blocks():
    """`"doc: table NAME"` for every block whose text is not what its file gives."""
    stale = []
    for path in documents():
        for name, files, body, _ in blocks(path.read_text()):
            if body != render(name, files):
                stale.append(f"{path.relative_to(ROOT)}: table {name} (from {files})")
    return stale


def rewrite():
    """Rewrites every block from its file; returns the documents changed."""
    changed = []
    for path in documents():
        text = path.read_text()
        new, last = [], 0
        for name, files, _, (start, end) in blocks(text):
            new += [text[last:start], render(name, files)]
            last = end
        new.append(text[last:])
        if "".join(new) != text:
            path.write_text("".join(new))
            changed.append(path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a block differs from its file")
    sub = parser.add_subparsers(dest="command")
    kept = sub.add_parser("keep", help="a run's metrics.json as runs/NAME.json")
    kept.add_argument("run_dir")
    kept.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "keep":
        print(f"Wrote {keep(args.run_dir, args.name)}")
        return 0
    if args.check:
        stale = stale_blocks()
        print("\n".join(stale) if stale else "Every table matches its result file.")
        return 1 if stale else 0
    for path in rewrite():
        print(f"Rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
