"""Where a synthesizing model comes from, and its identity for the manifest.

`open_model(source)` turns what a user names into a `ModelSource`: the
loaded model with its registry name, the file it was read from with that
file's SHA-256, and the SHA-256 of its weight values. The forms accepted
are tried in the order of `SOURCE_KINDS`, each a `(recognises, load)` pair
of functions of a path: a published preset folder (`gan-zoo publish`,
its files checked against their SHA-256 first), a `.keras` file, or a run
folder holding one.

The weights hash (`gan_zoo.metrics.extractors.weights_sha256`: every
variable's shape, dtype and bytes, in the model's order) names the model
whatever file holds it: a `.keras` checkpoint and a `.weights.h5` of the
same weights give the same hash, so a resumed synthesis can check that it
continues with the very model it started with.
"""

from __future__ import annotations

import dataclasses
import pathlib

from gan_zoo.synthesis.errors import SynthesisError


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A model ready to synthesize with, and what identifies it.

    Args:
        model: the loaded zoo model.
        name: its registry name (e.g. "dcgan"), or its class name when the
            class is not registered.
        path: the file it was loaded from, or None for a model given in
            memory.
        file_sha256: SHA-256 of that file, or None.
        weights_sha256: SHA-256 of the model's weight values.
        run_config: the run folder's `config.json` when the model came from
            a run folder (what it was trained on), else None.
    """

    model: object
    name: str
    path: str | None
    file_sha256: str | None
    weights_sha256: str
    run_config: dict | None = None

    def describe(self):
        """The manifest's `model` entry: id, class, hashes, source, config (and the run's config.json)."""
        from gan_zoo.weights import model_identity

        identity = model_identity(self.model)
        described = {
            "id": self.name,
            "class": identity["class_name"],
            "weights_sha256": self.weights_sha256,
            "source": self.path,
            "source_sha256": self.file_sha256,
            "config": identity["config"],
        }
        if self.run_config is not None:
            described["run_config"] = self.run_config  # what the model was trained on, and how
        return described


def registry_name(model):
    """The name `model`'s class is registered under, else its class name.

    Args:
        model: a zoo model.
    """
    import gan_zoo

    for name in gan_zoo.list_models():
        if gan_zoo.get_spec(name).builder is type(model):
            return name
    return type(model).__name__


def _keras_file_of_run(folder):
    """The one `.keras` model at the top of a run folder."""
    found = sorted(folder.glob("*.keras"))
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) if found else "none"
        raise SynthesisError(
            f"{folder} holds {len(found)} .keras files ({listed}); name the model file itself."
        )
    return found[0]


def _is_run_folder(path):
    return path.is_dir()


def _is_keras_file(path):
    return path.is_file() and path.suffix == ".keras"


def _load_keras_file(path):
    from gan_zoo import load_model
    from gan_zoo.weights import ModelFileError

    try:
        return load_model(path, compile=False), path, None
    except (ModelFileError, ValueError, TypeError, KeyError, OSError) as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise SynthesisError(f"Cannot load {path}: {lines[0] if lines else type(error).__name__}") from None


def _load_run_folder(folder):
    import json

    model, path, _ = _load_keras_file(_keras_file_of_run(folder))
    config = None
    if (folder / "config.json").is_file():
        try:
            config = json.loads((folder / "config.json").read_text())
        except ValueError:
            config = None
    return model, path, config


def _is_preset_folder(path):
    from gan_zoo.presets.layout import METADATA_FILE

    return path.is_dir() and (path / METADATA_FILE).is_file()


def _load_preset_folder(folder):
    from gan_zoo.presets import PresetError, load_preset, read_preset
    from gan_zoo.presets.layout import WEIGHTS_FILE

    try:
        model = load_preset(folder)
        metadata = read_preset(folder, verify=False)
    except PresetError as error:
        raise SynthesisError(str(error).splitlines()[0]) from None
    return model, folder / WEIGHTS_FILE, {"preset": metadata}


# (recognises, load) in the order tried; load(path) -> (model, file, run config).
SOURCE_KINDS = (
    (_is_preset_folder, _load_preset_folder),
    (_is_keras_file, _load_keras_file),
    (_is_run_folder, _load_run_folder),
)


def open_model(source):
    """A `ModelSource` for a model object, a preset, a run folder or a `.keras` file.

    Args:
        source: a zoo model (a `keras.Model`), a `ModelSource` (returned as
            it is), or the path of a published preset folder, of a run
            folder (holding one `.keras` file) or of a `.keras` file.

    Raises:
        SynthesisError: the path does not exist, is none of the forms in
            `SOURCE_KINDS`, or cannot be loaded (one line).
    """
    from gan_zoo.metrics.extractors import file_sha256, weights_sha256

    if isinstance(source, ModelSource):
        return source
    if not isinstance(source, (str, pathlib.Path)):
        return ModelSource(source, registry_name(source), None, None, weights_sha256(source))
    path = pathlib.Path(source).expanduser()
    if not path.exists():
        raise SynthesisError(f"{path} does not exist (give a preset folder, a run folder or a .keras file).")
    for recognises, load in SOURCE_KINDS:
        if recognises(path):
            model, file, run_config = load(path)
            return ModelSource(model, registry_name(model), str(file), file_sha256(file),
                               weights_sha256(model), run_config)
    raise SynthesisError(f"{path} is neither a preset folder, a run folder nor a .keras file.")
