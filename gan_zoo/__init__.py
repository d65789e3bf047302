"""gan_zoo: GANs for breast-cancer imaging, in Keras 3 / TensorFlow.

    >>> import gan_zoo
    >>> gan_zoo.list_models()
    >>> gan_zoo.list_models(modality="histology", task="generate")
    >>> gan = gan_zoo.load("dcgan", variant="v3", image_size=50)
    >>> gan_zoo.export(gan, "exported/dcgan")
    >>> gan_zoo.publish("runs/dcgan", "presets/dcgan")   # a run as a checked preset folder
    >>> gan = gan_zoo.load("presets/dcgan")
"""

import os

# Quiet TensorFlow's C++ start-up logs unless the user asked for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gan_zoo.registry import get_spec, list_models, load, register_model  # noqa: E402

from gan_zoo._version import __version__  # noqa: E402


def export(model, path, **kwargs):
    """Writes `model` as a SavedModel with named serving signatures.

    See `gan_zoo.export_lib.export` for the signatures.
    """
    from gan_zoo.export_lib import export as _export

    return _export(model, path, **kwargs)


def publish(run, out, **kwargs):
    """Writes a finished run folder as a preset folder with a model card.

    See `gan_zoo.presets.publish` for the options; `gan_zoo.load(out)`
    loads the result, checking every file's SHA-256 first.

    Args:
        run: the run folder.
        out: the preset folder to write.
        **kwargs: passed to `gan_zoo.presets.publish`.
    """
    from gan_zoo.presets import publish as _publish

    return _publish(run, out, **kwargs)


def load_model(path, *, safe_mode=True, **kwargs):
    """Loads a zoo model saved with `model.save("name.keras")`.

    `import gan_zoo` stays light (no TensorFlow until a model is needed), so
    Keras does not know the zoo's classes after it alone; this registers them
    first. `keras.saving.load_model` works too after `import gan_zoo.models`.

    The file is checked first (`gan_zoo.weights.check_keras_file`): a missing
    file is a FileNotFoundError, an empty, truncated, non-zip or corrupt one
    a `ModelFileError` (a ValueError) naming the path, instead of Keras'
    "File not found" or a `BadZipFile` without a path. It loads in Keras'
    safe mode: a file holding Python code (a `Lambda` layer's bytecode) is
    refused unless the caller passes `safe_mode=False` for a file it trusts.

    Args:
        path: the `.keras` file.
        safe_mode: Keras' safe mode (refuse code in the file); keep it on for
            files from elsewhere.
        **kwargs: passed to `keras.saving.load_model` (e.g. `compile=False`).

    Returns:
        The model, with its optimizers' states when it was saved compiled.
    """
    import keras

    import gan_zoo.models  # noqa: F401  (registers the zoo's classes with Keras)
    from gan_zoo.weights import check_keras_file

    check_keras_file(path)
    return keras.saving.load_model(path, safe_mode=safe_mode, **kwargs)


__all__ = ["__version__", "export", "get_spec", "list_models", "load", "load_model", "publish", "register_model"]
