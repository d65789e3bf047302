"""Loading weights into a built model from a local file or a checked URL."""

import os
import pathlib
import urllib.parse



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


def load_weights_into(model, weights, sha256=None):
    """Loads a `.weights.h5` or `.keras` file (path or URL) into `model`."""
    path = resolve_weights(weights, sha256)
    if not path.name.endswith((".weights.h5", ".keras")):
        raise ValueError(
            f"Unsupported weights file {path}: expected a .weights.h5 or .keras file."
        )
    try:
        model.load_weights(str(path))
    except ValueError as error:
        raise ValueError(
            f"The weights in {path} do not fit this {type(model).__name__} "
            f"(is it the same model and config?): {error}"
        ) from error
    return model
