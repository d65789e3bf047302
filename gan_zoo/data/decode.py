"""Decoding image files with TensorFlow, and the one image checker.

TensorFlow's decoders fail with messages such as "Invalid PNG data" that do
not say which file is bad, and a failing op in a dataset function cannot be
caught with try/except. `decode_file` runs the decode in a one-element
dataset with `ignore_errors`, so it returns `(image, ok)` instead of failing;
`diagnose` then tells from the file's bytes why it failed (empty, unknown
format, truncated PNG or JPEG, corrupt data).

`check_images` is the only readability check in `gan_zoo.data`: scanning
(`scan_image_folder(verify=True)`, `scan_idc`), `verify_images` and the
pipeline's `on_error="skip"` all use it. It decodes with the same decoder as
training, so a file passes the check exactly when training can read it
(Pillow, for one, opens TIFF files and pads truncated ones on request, which
TensorFlow does not).
"""

import dataclasses
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


def _decode(path):
    """The decoder of every image file in `gan_zoo.data` (may fail)."""
    data = tf.io.read_file(path)
    return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)


def decode_file(path):
    """Reads and decodes one image file: `(uint8 [H, W, C], ok)`, never fails."""
    return attempt(_decode, path, tf.zeros([1, 1, 1], tf.uint8))


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


@dataclasses.dataclass(frozen=True)
class ImageCheck:
    """What the decoder made of one file (see `check_images`).

    Args:
        path: the file.
        size: `(height, width)` of the decoded image; None when unreadable.
        channels: channels of the decoded image; None when unreadable.
        problem: why the file cannot be decoded; None when it can.
    """

    path: str
    size: tuple[int, int] | None = None
    channels: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_images(paths: Sequence[str]) -> list[ImageCheck]:
    """Decodes every file with the pipeline's decoder, in parallel.

    Each file is read and fully decoded once (about 12,000 IDC patches a
    second on two cores), which also gives its size and channels. Files that
    fail are diagnosed from their bytes (`diagnose`).

    Args:
        paths: image file paths.

    Returns:
        One `ImageCheck` per path, in input order.
    """
    paths = [str(p) for p in paths]
    if not paths:
        return []
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(paths), dtype=tf.int64), tf.constant(paths, tf.string))
    )
    # A failing decode becomes a missing element (ignore_errors), which is
    # cheaper than catching each failure in its own dataset as decode_file does.
    dataset = dataset.map(
        lambda index, path: (index, tf.shape(_decode(path))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    ).ignore_errors()
    shapes = {}
    for indices, batch in dataset.batch(4096).as_numpy_iterator():
        shapes.update(zip(indices.tolist(), batch.tolist()))
    failed = [path for index, path in enumerate(paths) if index not in shapes]
    reasons = dict(_diagnose_all(failed))
    checks = []
    for index, path in enumerate(paths):
        if index in shapes:
            height, width, channels = shapes[index]
            checks.append(ImageCheck(path, (height, width), channels))
        else:
            checks.append(ImageCheck(path, problem=reasons[path]))
    return checks


def find_unreadable_files(paths: Sequence[str]) -> list[tuple[str, str]]:
    """`(path, reason)` for each file `check_images` cannot decode, in input order."""
    return [(check.path, check.problem) for check in check_images(paths) if not check.ok]


def _diagnose_all(paths):
    """`(path, reason)` for files known to fail decoding."""
    if not paths:
        return []
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(paths), tf.string))
    dataset = dataset.map(lambda path: (path, diagnose(path)))
    return [(path.decode(), reason.decode()) for path, reason in dataset.as_numpy_iterator()]
