"""Units: a finished unit is read back, not recomputed; an interrupted one is recomputed."""

import json

import pytest

from gan_zoo.experiments import Run
from gan_zoo.experiments.units import Units


def test_a_finished_unit_is_read_back_and_reported_once(tmp_path):
    calls, reported = [], []
    units = Units(Run(tmp_path, {}), report=lambda name, result: reported.append(name))

    def compute():
        calls.append(1)
        return {"auroc": 0.75}

    first = units.get("source/fold0/diagram", compute)
    again = Units(Run(tmp_path, {}), report=lambda name, result: reported.append(name)).get(
        "source/fold0/diagram", compute)
    assert calls == [1] and reported == ["source/fold0/diagram"]
    assert first == again and first["auroc"] == 0.75 and first["seconds"] >= 0
    stored = json.loads((tmp_path / "units" / "source__fold0__diagram.json").read_text())
    assert stored == first
    assert units.seconds() == {"source/fold0/diagram": first["seconds"]}


def test_an_interrupted_unit_leaves_nothing_and_is_computed_again(tmp_path):
    units = Units(Run(tmp_path, {}))

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        units.get("fold1", interrupted)
    assert not units.done("fold1") and not list(tmp_path.glob("units/*"))
    assert units.get("fold1", lambda: {"auroc": 0.5})["auroc"] == 0.5
    assert units.done("fold1")


@pytest.mark.parametrize("name", ["", "/fold0", "fold0/"])
def test_unit_names_are_checked(tmp_path, name):
    with pytest.raises(ValueError, match="without leading or trailing"):
        Units(Run(tmp_path, {})).get(name, dict)


def test_a_unit_returns_a_dict(tmp_path):
    with pytest.raises(TypeError, match="must return a dict"):
        Units(Run(tmp_path, {})).get("fold0", lambda: 0.5)
