"""The code's own checks: the layer contract (import-linter) and ruff.

Both run on the source tree; they are part of the suite so that CI, which
runs the README's test command, enforces them.
"""

import configparser
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
