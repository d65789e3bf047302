"""The preset folder's layout, its errors, and the helpers every part of `gan_zoo.presets` shares."""

import json
import math
import os
import pathlib
import urllib.parse

FORMAT = "gan_zoo.preset"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
URL_SCHEMES = ("http", "https", "file")


class PresetError(ValueError):
    """A run that cannot be published, or a preset that cannot be loaded (one line)."""


class PresetIntegrityError(PresetError):
    """A preset file whose SHA-256 differs from the one `metadata.json` records."""


def sha256_of(path):
    """Hex SHA-256 of a file (see `gan_zoo.data.download.sha256_of`)."""
    from gan_zoo.data.download import sha256_of as digest

    return digest(path)


def is_archive_name(value):
    """Whether a path or URL names a preset archive (`ARCHIVE_SUFFIXES`).

    Args:
        value: a path or an `http(s)://` / `file://` URL.
    """
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    if urllib.parse.urlparse(text).scheme in URL_SCHEMES:
        text = urllib.parse.urlparse(text).path
    return text.lower().endswith(ARCHIVE_SUFFIXES)


def model_id(registry_name, weights_sha256):
    """The id of a published model: `<registry name>-<first 12 hex digits of its weights' SHA-256>`.

    Args:
        registry_name: e.g. "dcgan".
        weights_sha256: hex SHA-256 of its `.weights.h5`.
    """
    return f"{registry_name}-{weights_sha256[:12]}"


def read_json(path, what):
    """The JSON document in `path`; a missing or unreadable file is a `PresetError`.

    Args:
        path: the file.
        what: what the file holds, for the message.
    """
    try:
        return json.loads(pathlib.Path(path).read_text())
    except FileNotFoundError:
        raise PresetError(f"{path} does not exist ({what}).") from None
    except (OSError, ValueError) as error:
        raise PresetError(f"{path} is not readable JSON ({what}): {error}.") from None


def finite_number(value):
    """Whether `value` is an int or float (not a bool) with a finite value."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
