"""gan_zoo: GANs for breast-cancer imaging, in Keras 3 / TensorFlow.

    >>> import gan_zoo
    >>> gan_zoo.list_models()
    >>> gan = gan_zoo.load("dcgan", variant="v3", image_size=50)
    >>> gan_zoo.export(gan, "exported/dcgan")
"""

import os

# Quiet TensorFlow's C++ start-up logs unless the user asked for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gan_zoo.registry import get_spec, list_models, load, register_model  # noqa: E402

# Registers every model by name and with Keras' serialization, so that
# `keras.saving.load_model("x.keras")` works after a plain `import gan_zoo`.
import gan_zoo.models  # noqa: E402, F401

__version__ = "0.1.0"


def export(model, path, **kwargs):
    """Writes `model` as a SavedModel with named serving signatures.

    See `gan_zoo.export_lib.export` for the signatures.
    """
    from gan_zoo.export_lib import export as _export

    return _export(model, path, **kwargs)


__all__ = ["export", "get_spec", "list_models", "load", "register_model"]
