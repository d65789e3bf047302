"""The code's own checks: the layer contract (import-linter), ruff, module size.

They run on the source tree; they are part of the suite so that CI, which
runs the README's test command, enforces them.
"""

import configparser
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tool(name):
    return str(pathlib.Path(sys.executable).with_name(name))


def test_each_layer_imports_only_those_below_it():
    result = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_every_subpackage_has_a_place_in_the_layers():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    layered = {
        name.strip()
        for line in config["importlinter:contract:layers"]["layers"].splitlines()
        for name in line.replace("|", ":").split(":") if name.strip()
    }
    packages = {f"gan_zoo.{p.parent.name}" for p in (ROOT / "gan_zoo").glob("*/__init__.py")}
    assert packages - layered == set(), "add these packages to the [importlinter] layers in setup.cfg"


def test_ruff_finds_nothing():
    result = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


MAX_MODULE_LINES = 500
# Modules allowed past MAX_MODULE_LINES, each with the reason splitting it would be wrong:
# {"gan_zoo/path/module.py": "reason"}.
LONG_MODULES = {}


def test_every_module_is_at_most_500_lines():
    long = {}
    for path in sorted((ROOT / "gan_zoo").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES and name not in LONG_MODULES:
            long[name] = lines
    assert long == {}, (
        f"modules past {MAX_MODULE_LINES} lines: move a coherent part into a module of its own "
        "(named for what it holds; keep the old import path by re-export), or list it in "
        "LONG_MODULES with the reason"
    )


def test_long_module_exceptions_are_still_needed():
    for name, reason in LONG_MODULES.items():
        path = ROOT / name
        assert reason and path.is_file(), f"{name}: no such module, or no reason given"
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines > MAX_MODULE_LINES, f"{name} has {lines} lines: remove it from LONG_MODULES"


_TENSORFLOW_PROBE = '''
import sys

def pytest_sessionfinish(session):
    print("tensorflow imported:", "tensorflow" in sys.modules)
'''


def test_tests_that_need_no_tensorflow_run_without_it(tmp_path):
    (tmp_path / "tensorflow_probe.py").write_text(_TENSORFLOW_PROBE)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-n", "0", "-p", "no:cacheprovider", "-p", "tensorflow_probe",
         "tests/test_experiment_splits.py", "tests/test_delong.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "tensorflow imported: False" in done.stdout
