"""A network a run trains once is reused on resume and refused when changed."""

import keras
import numpy as np
import pytest

from gan_zoo.errors import UsageError
from gan_zoo.experiments import Run, train_once


def tiny_model(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def test_the_model_is_trained_once_and_read_back(tmp_path):
    run, calls = Run(tmp_path, {}), []

    def train():
        calls.append(1)
        return tiny_model(len(calls)), {"what": "tiny"}

    model, info = train_once(run, "extractor", train)
    again, info_again = train_once(run, "extractor", train)
    assert calls == [1] and info_again == info
    assert info["what"] == "tiny" and len(info["weights_sha256"]) == 64
    assert info["file"] == "extractor.keras"
    for first, second, fresh in zip(model.get_weights(), again.get_weights(), tiny_model(1).get_weights()):
        np.testing.assert_array_equal(first, fresh)
        np.testing.assert_array_equal(second, fresh)


def test_a_changed_file_is_refused(tmp_path):
    run = Run(tmp_path, {})
    _, info = train_once(run, "extractor", lambda: (tiny_model(1), {}))
    tiny_model(2).save(tmp_path / info["file"])  # another network in its place
    with pytest.raises(UsageError, match="is not the extractor this run trained"):
        train_once(run, "extractor", lambda: (tiny_model(1), {}))


def test_an_interrupted_save_is_trained_again(tmp_path):
    # The record is written after the model: a model without one is incomplete.
    run = Run(tmp_path, {})
    tiny_model(5).save(run.path("extractor.keras"))
    calls = []
    train_once(run, "extractor", lambda: (calls.append(1) or tiny_model(1), {}))
    assert calls == [1]


def test_a_name_with_a_folder_keeps_its_record_beside_the_model(tmp_path):
    run = Run(tmp_path, {})
    _, info = train_once(run, "final/diagram", lambda: (tiny_model(1), {}))
    assert (tmp_path / "final" / "diagram.keras").is_file() and (tmp_path / "final" / "diagram.json").is_file()
    calls = []
    train_once(run, "final/diagram", lambda: (calls.append(1) or tiny_model(1), {}))
    assert calls == []  # found done
