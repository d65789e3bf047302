"""Decoding image files inside tf.data, with errors that name the file.

TensorFlow's decoders fail with messages such as "Invalid PNG data" that do
not say which file is bad, and a failing op in a dataset function cannot be
caught with try/except. `decode_file` runs the decode in a one-element
dataset with `ignore_errors`, so it returns `(image, ok)` instead of failing;
`diagnose` then tells from the file's bytes why it failed (empty, unknown
format, truncated PNG or JPEG, corrupt data).
"""

from typing import Sequence

import tensorflow as tf

_MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff",
    "gif": b"GIF8",
    "bmp": b"BM",
}
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"


def attempt(fn, arg, fallback):
    """Returns `(fn(arg), True)`, or `(fallback, False)` if `fn` fails.

    A failing op inside a dataset function cannot be caught with try/except.
    Running it in a one-element dataset with `ignore_errors` and appending a
    fallback element does catch it, in graph, and keeps the file name in hand
    for the error message.
    """
    attempt = tf.data.Dataset.from_tensors(arg).map(lambda a: (fn(a), tf.constant(True)))
    backup = tf.data.Dataset.from_tensors((fallback, tf.constant(False)))
    return attempt.ignore_errors().concatenate(backup).take(1).get_single_element()


def decode_file(path):
    """Reads and decodes one image file: `(uint8 [H, W, C], ok)`, never fails."""

    def decode(p):
        data = tf.io.read_file(p)
        return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)

    return attempt(decode, path, tf.zeros([1, 1, 1], tf.uint8))


def diagnose(path):
    """Says, as a string tensor, why `path` could not be decoded."""
    data, readable = attempt(tf.io.read_file, path, tf.constant(b""))
    length = tf.strings.length(data)
    # Zero-pad so that slicing the header never runs past a short file.
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, 12), b"\0" * 12]), 0, 12)

    def tail(n):
        return tf.strings.substr(data, tf.maximum(length - n, 0), n)

    is_png = tf.equal(tf.strings.substr(head, 0, 8), _MAGIC["png"])
    is_jpeg = tf.equal(tf.strings.substr(head, 0, 3), _MAGIC["jpeg"])
    is_webp = tf.logical_and(
        tf.equal(tf.strings.substr(head, 0, 4), b"RIFF"),
        tf.equal(tf.strings.substr(head, 8, 4), b"WEBP"),
    )
    known = tf.reduce_any(
        tf.stack(
            [
                is_png,
                is_jpeg,
                is_webp,
                tf.equal(tf.strings.substr(head, 0, 4), _MAGIC["gif"]),
                tf.equal(tf.strings.substr(head, 0, 2), _MAGIC["bmp"]),
            ]
        )
    )
    # First matching reason wins, so list them from most to least specific.
    reasons = [
        (tf.logical_not(readable), "the file cannot be read (missing, or no permission)"),
        (tf.equal(length, 0), "the file is empty"),
        (tf.logical_not(known), "unrecognised format: not a JPEG, PNG, GIF, BMP or WebP file"),
        (
            tf.logical_and(is_png, tf.not_equal(tail(8), _PNG_END)),
            "truncated PNG: the IEND chunk that ends a PNG file is missing",
        ),
        (
            tf.logical_and(is_jpeg, tf.not_equal(tail(2), _JPEG_END)),
            "truncated JPEG: the end-of-image marker is missing",
        ),
    ]
    reason = tf.constant("corrupt image data: the decoder rejected it")
    for condition, text in reversed(reasons):
        reason = tf.where(condition, tf.constant(text), reason)
    return reason


def error_message(path, ok, advice=""):
    # Built only on failure: the diagnosis re-reads the file.
    return tf.cond(
        ok,
        lambda: tf.constant(""),
        lambda: tf.strings.join(["Cannot decode image file ", path, ": ", diagnose(path), advice]),
    )


def find_unreadable_files(paths: Sequence[str]) -> list[tuple[str, str]]:
    """Test-decodes files with TensorFlow's decoder, in parallel.

    Unlike Pillow-based `verify_images`, this checks exactly what the
    pipeline will do (e.g. TIFF opens in Pillow but not here).

    Returns:
        `(path, reason)` for each file that cannot be read or decoded.
    """
    if not paths:
        return []
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(paths), tf.string))
    dataset = dataset.map(
        lambda path: (path, decode_file(path)[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    dataset = dataset.filter(lambda path, ok: tf.logical_not(ok))
    dataset = dataset.map(lambda path, ok: (path, diagnose(path)))
    return [(path.decode(), reason.decode()) for path, reason in dataset.as_numpy_iterator()]
