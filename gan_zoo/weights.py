"""Loading weights into a built model from a local file or a checked URL.

Weights keep the config of the model that wrote them, and a model refuses
weights written by a model of another config, naming the differing options
(Keras would load DCGAN v1 weights into a v3 model, or 50 px weights into a
64 px model, silently: their kernels have the same shapes).

- `.keras` files carry their model's class and config (`config.json` in the
  archive) already.
- `.weights.h5` files written by zoo models (`model.save_weights`, through
  `ConfigInWeights`) or by `save_weights(model, path)` hold the config as
  the HDF5 root attribute `gan_zoo_config` (JSON `{"class_name", "config"}`)
  in the same file, so it cannot be lost or paired with the wrong file as a
  side file could. Keras ignores the attribute. A `.weights.h5` without it
  (written by plain Keras) loads with a warning that it cannot be checked.

Options that do not change the weights (seeds, optimizer settings, loss
weights, a model's `weight_independent_options`) may differ.
"""

import json
import os
import pathlib
import urllib.parse
import warnings
import zipfile
import zlib

CONFIG_ATTRIBUTE = "gan_zoo_config"
# Config keys of every model that never change its weights.
_WEIGHT_INDEPENDENT = frozenset({"name", "trainable", "dtype", "seed", "learning_rate", "beta_1", "beta_2"})


class WeightsMismatchError(ValueError):
    """Weights written by a model of another class or config."""


class ModelFileError(ValueError):
    """A `.keras` file that is not a complete Keras archive (names the path)."""


# What `model.save("x.keras")` writes; a file without them cannot load.
_KERAS_MEMBERS = ("config.json", "metadata.json")


def check_keras_file(path):
    """Raises one clear error unless `path` is a complete `.keras` archive.

    Keras says "File not found" for an existing file that is empty,
    truncated or not a zip, and a bit-flipped archive fails with a
    `BadZipFile` that names no file. This checks existence, the zip
    structure and every member's CRC (one read of the file) first.

    Args:
        path: the `.keras` file.

    Raises:
        FileNotFoundError: the file does not exist.
        ModelFileError: anything else, naming the path and the problem.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Model file {path} does not exist.")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a file (a .keras model file was expected).")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes): not a .keras model file.")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a .keras model file: not a zip archive "
            f"({size} bytes; truncated by an interrupted copy or save?)."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [m for m in _KERAS_MEMBERS if m not in names]
            if missing:
                raise ModelFileError(
                    f"{path} is a zip archive but not a .keras model file: it lacks "
                    f"{', '.join(missing)}."
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError) as error:
        if isinstance(error, ModelFileError):
            raise
        raise ModelFileError(f"{path} is a corrupt .keras model file: {error}.") from None
    if bad is not None:
        raise ModelFileError(
            f"{path} is a corrupt .keras model file: its member {bad} fails its CRC check."
        )


def _cache_dir():
    return pathlib.Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "gan_zoo" / "weights"


def resolve_weights(weights, sha256=None, cache_dir=None):
    """Local path of `weights`: a file path, or an http(s)/file URL downloaded
    once into the cache and checked against `sha256` (required for URLs)."""
    scheme = urllib.parse.urlparse(str(weights)).scheme
    if scheme in ("http", "https", "file"):
        if not sha256:
            raise ValueError(
                f"Refusing to load weights from {weights} without a sha256: "
                "pass weights_sha256=<hex digest> so the download is verified."
            )
        from gan_zoo.data.download import download_file

        name = pathlib.PurePosixPath(urllib.parse.urlparse(str(weights)).path).name
        dest = pathlib.Path(cache_dir or _cache_dir()) / f"{sha256[:12]}-{name}"
        return download_file(str(weights), dest, sha256=sha256)
    path = pathlib.Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Weights file not found: {path}")
    return path


def _jsonable(value):
    # A JSON round trip, so tuples compare equal to the lists a file holds.
    return json.loads(json.dumps(value, default=str))


def model_identity(model):
    """{"class_name", "config"} of `model`, as stored with its weights."""
    return {"class_name": type(model).__name__, "config": _jsonable(model.get_config())}


def embed_config(model, path):
    """Writes `model`'s class and config into the `.weights.h5` file `path`."""
    import h5py

    with h5py.File(path, "a") as file:
        file.attrs[CONFIG_ATTRIBUTE] = json.dumps(model_identity(model))


def save_weights(model, path):
    """`model.save_weights(path)` with the model's config kept in the file."""
    model.save_weights(str(path))
    if not isinstance(model, ConfigInWeights):  # which embeds it itself
        embed_config(model, path)
    return pathlib.Path(path)


class ConfigInWeights:
    """Mix-in for Keras models: `save_weights` keeps the config in the file."""

    def save_weights(self, filepath, *args, **kwargs):
        result = super().save_weights(filepath, *args, **kwargs)
        if str(filepath).endswith(".weights.h5"):
            embed_config(self, filepath)
        return result


def stored_identity(path):
    """{"class_name", "config"} kept with the weights in `path`, or None.

    Args:
        path: a `.keras` or `.weights.h5` file.

    Raises:
        ValueError: the file is not the archive or HDF5 file its name says,
            naming the path.
    """
    path = pathlib.Path(path)
    if path.name.endswith(".keras"):
        check_keras_file(path)
        with zipfile.ZipFile(path) as archive:
            saved = json.loads(archive.read("config.json"))
        return {"class_name": saved.get("class_name"), "config": saved.get("config") or {}}
    import h5py

    try:
        with h5py.File(path, "r") as file:
            text = file.attrs.get(CONFIG_ATTRIBUTE)
    except OSError as error:
        raise ValueError(f"{path} is not a readable .weights.h5 (HDF5) file: {error}") from None
    if text is None:
        return None
    return json.loads(text)


def config_differences(model, stored):
    """{option: (in the file, in the model)} of options that shape the weights."""
    ignored = _WEIGHT_INDEPENDENT | set(getattr(model, "weight_independent_options", ()))
    mine = model_identity(model)["config"]
    theirs = stored.get("config") or {}
    return {
        key: (theirs.get(key, "<absent>"), mine.get(key, "<absent>"))
        for key in sorted(set(mine) | set(theirs))
        if key not in ignored and theirs.get(key, "<absent>") != mine.get(key, "<absent>")
    }


def check_weights_fit(model, path):
    """Refuses weights in `path` written by a model of another class or config.

    Raises:
        WeightsMismatchError: naming the differing class or options.
    """
    stored = stored_identity(path)
    if stored is None:
        warnings.warn(
            f"{path} holds no model config (written by plain Keras save_weights): "
            f"cannot check that it fits this {type(model).__name__}'s options.",
            stacklevel=3,
        )
        return
    mine = type(model).__name__
    if stored.get("class_name") not in (None, mine):
        raise WeightsMismatchError(
            f"{path} holds weights of a {stored['class_name']}, not of a {mine}."
        )
    differences = config_differences(model, stored)
    if differences:
        listed = ", ".join(f"{k}={old!r} (this model: {new!r})" for k, (old, new) in differences.items())
        raise WeightsMismatchError(
            f"{path} was saved by a {mine} with other options: {listed}; "
            "build the model with the file's options."
        )


def load_weights_into(model, weights, sha256=None):
    """Loads a `.weights.h5` or `.keras` file (path or URL) into `model`.

    The file's model config must match `model`'s (see the module docstring).
    """
    path = resolve_weights(weights, sha256)
    if not path.name.endswith((".weights.h5", ".keras")):
        raise ValueError(
            f"Unsupported weights file {path}: expected a .weights.h5 or .keras file."
        )
    check_weights_fit(model, path)
    try:
        load_weights_quietly(model, path)
    except ValueError as error:
        raise ValueError(
            f"The weights in {path} do not fit this {type(model).__name__} "
            f"(is it the same model and config?): {error}"
        ) from error
    return model


# Keras 3.15 warns "Skipping nested container at '_operations_by_depth/..."
# once per depth of a functional network (keras-hub's ResNet-18, the zoo's
# generators) loaded from a `.weights.h5` that Keras itself saved. That
# container is the functional model's index of the layers its `layers`
# collection has already loaded, so nothing is skipped (tests compare every
# array). Warnings about any other container still reach the user.
_LAYER_INDEX_CONTAINER = "_operations_by_depth/"


def load_weights_quietly(model, path):
    """`model.load_weights(path)` without Keras' warnings about a functional model's layer index."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(str(path))
    for warning in caught:
        text = str(warning.message)
        if not (text.startswith("Skipping nested container at '") and _LAYER_INDEX_CONTAINER in text):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
