"""Getting a model for a command: from the registry or from a `.keras` file.

Each helper turns the errors a user can fix (an unknown name or option, an
invalid value the model's own checks reject, a missing or unreadable
checkpoint) into a `UsageError`, and lets every other exception through
with its traceback.
"""

import pathlib

import gan_zoo
from gan_zoo.errors import UsageError, message, raised_by


def get_spec(name):
    """The registry entry of `name`.

    Args:
        name: a registered model name.
    """
    try:
        return gan_zoo.get_spec(name)
    except KeyError as error:
        raise UsageError(message(error)) from None


def resolve_config(name, overrides, preset=None):
    """The model's paper defaults, then `preset`, then `overrides`, keys checked.

    Args:
        name: a registered model name.
        overrides: {option: value}.
        preset: optional name of one of the model's registered presets.
    """
    from gan_zoo.registry import resolve_config as resolve

    try:
        return resolve(name, preset=preset, **overrides)
    except (KeyError, TypeError) as error:
        raise UsageError(message(error)) from None


def build(name, config):
    """Builds a registered model from a config `resolve_config` has checked.

    The registry has already rejected unknown names and keys (as user errors).
    What is left for the builder to reject are invalid values, which the
    zoo's constructors check themselves with `raise ValueError(...)`
    (`variant must be one of ...`). Only such a ValueError, one whose
    innermost frame is in gan_zoo or in the builder's own module, becomes a
    one-line user error. A ValueError from inside Keras, TensorFlow or NumPy,
    and any other exception type, is a bug or an unchecked combination of
    options: it propagates with its traceback.

    Args:
        name: a registered model name.
        config: its full config.
    """
    spec = get_spec(name)
    try:
        return gan_zoo.load(name, **config)
    except ValueError as error:
        if not raised_by(error, ("gan_zoo", spec.builder.__module__)):
            raise
        raise UsageError(f"Cannot build {name!r} with this config: {message(error)}") from None


def load_checkpoint(path):
    """A zoo model from a `.keras` file (without its optimizers).

    Args:
        path: the `.keras` file.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise UsageError(f"Checkpoint {path} does not exist.")
    if not path.is_file() or path.suffix != ".keras":
        raise UsageError(
            f"{path} is not a .keras file (a model saved by `gan-zoo train` or model.save)."
        )
    from gan_zoo import load_model
    from gan_zoo.weights import ModelFileError, check_keras_file

    try:
        check_keras_file(path)
    except (ModelFileError, OSError) as error:
        raise UsageError(message(error)) from None
    try:
        return load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise UsageError(f"Cannot load {path}: {_first_line(message(error))}") from None


def _first_line(text):
    # Keras' deserialization errors run over many lines (configs, hints).
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else str(text)


def require_generator(model, where):
    """Refuses a model without `generate()`.

    Args:
        model: the loaded model.
        where: how to name it in the error (e.g. its path).
    """
    if not hasattr(model, "generate"):
        raise UsageError(
            f"{where} is a {type(model).__name__}, not a zoo generator (it has no generate())."
        )
