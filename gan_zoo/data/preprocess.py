"""Bringing decoded images to one shape: channels, size policies, scaling.

Images stay uint8 here (a quarter of the memory of float32, and exactly
equal whether they come from a file, a cache or a dataset); `scaling` gives
the affine map to float32 that the pipelines apply to whole batches at the
very end.
"""

from __future__ import annotations

import dataclasses
import sys

import tensorflow as tf

from gan_zoo.data.decode import decode_file, error_message

SIZE_POLICIES = ("resize", "pad", "crop", "pad_end", "error")
"""The values of `size_policy` (see `gan_zoo.data.pipeline.training_stream`)."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How every image is brought to one shape (see `preprocessing`).

    Args:
        image_size: `(height, width)` of the output.
        channels: 1 or 3.
        size_policy: one of `SIZE_POLICIES`.
        pad_value: the uint8 constant of the pad policies.
    """

    image_size: tuple[int, int]
    channels: int
    size_policy: str
    pad_value: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (*self.image_size, self.channels)


def preprocessing(image_size, channels, size_policy, pad_value) -> Preprocessing:
    """Checks the preprocessing options and returns them as one value.

    Args:
        image_size: `(height, width)`, or one int for squares.
        channels: 1 or 3.
        size_policy: one of `SIZE_POLICIES`.
        pad_value: in [0, 255].

    Raises:
        ValueError: naming the option that is out of range.
    """
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    image_size = tuple(int(s) for s in image_size)
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}.")
    if size_policy not in SIZE_POLICIES:
        raise ValueError(f"size_policy must be one of {SIZE_POLICIES}, got {size_policy!r}.")
    if not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must be a uint8 value in [0, 255], got {pad_value}.")
    return Preprocessing(image_size, channels, size_policy, int(pad_value))


def scaling(value_range) -> tuple[float, float]:
    """`(low, step)` such that pixel p maps to `low + step * p`.

    Args:
        value_range: `(low, high)` with low < high: 0 maps to low, 255 to high.
    """
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}.")
    return low, (high - low) / 255.0


def check_positive(name, value):
    """Raises ValueError unless `value` is a positive integer."""
    if int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def naming(what):
    """` (what)` for error messages, or nothing."""
    return f" ({what})" if what else ""


def load_file(path, prep, skip=False):
    """Decodes and preprocesses one file: `(uint8 [h, w, c], ok)`.

    Args:
        path: string tensor.
        prep: a `Preprocessing`.
        skip: False: an unreadable file raises an error naming it. True: it
            gives `ok=False` (and a placeholder image) and prints a warning
            naming it.
    """
    image, ok = decode_file(path)
    if skip:

        def warn():
            message = error_message(path, ok, "; skipping it.")
            printed = tf.print("WARNING gan_zoo.data:", message, output_stream=sys.stderr)
            with tf.control_dependencies([printed]):
                return tf.constant(False)

        checks = [tf.cond(ok, lambda: tf.constant(True), warn)]
    else:
        advice = (
            ". Find all bad files with gan_zoo.data.image_folder.scan_image_folder("
            'root, verify=True), or pass on_error="skip".'
        )
        checks = [tf.debugging.Assert(ok, [error_message(path, ok, advice)], summarize=1)]
    with tf.control_dependencies(checks):
        # A skipped file's placeholder gets the target size, so that
        # size_policy="error" does not complain about it before it is dropped.
        placeholder = tf.zeros([*prep.image_size, 1], tf.uint8)
        image = tf.cond(ok, lambda: tf.identity(image), lambda: placeholder)
    return preprocess(image, prep, path), ok


def preprocess(image, prep, name):
    """Brings a uint8 image to `prep.image_size` and `prep.channels`.

    Args:
        image: uint8 `[h, w]` or `[h, w, c]` with c in 1..4.
        prep: a `Preprocessing`.
        name: string tensor naming the image in errors of the "error" policy.
    """
    if image.shape.rank == 2:
        image = image[..., tf.newaxis]
    image = _to_channels(image, prep.channels)
    image = _fit_size(image, prep, name)
    image.set_shape(prep.image_shape)
    return image


def _to_channels(image, channels):
    """Converts 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels."""
    if image.shape[-1] is not None:
        # Known channels (a dataset source's spec): one branch only, since
        # tracing rgb_to_grayscale on a 1-channel image fails.
        if channels == 3:
            return image[..., :3] if image.shape[-1] >= 3 else tf.tile(image[..., :1], [1, 1, 3])
        return tf.image.rgb_to_grayscale(image[..., :3]) if image.shape[-1] >= 3 else image[..., :1]
    has_color = tf.shape(image)[-1] >= 3
    if channels == 3:
        return tf.cond(
            has_color,
            lambda: image[..., :3],
            lambda: tf.tile(image[..., :1], [1, 1, 3]),
        )
    return tf.cond(
        has_color,
        lambda: tf.image.rgb_to_grayscale(image[..., :3]),
        lambda: image[..., :1],
    )


def _fit_size(image, prep, name):
    height, width = prep.image_size
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    if prep.size_policy == "error":
        message = tf.strings.join(
            [
                "Image ",
                name,
                " is ",
                tf.strings.as_string(shape[0]),
                "x",
                tf.strings.as_string(shape[1]),
                f' but image_size is {height}x{width} (size_policy="error"); use '
                'size_policy="resize", "pad", "pad_end" or "crop" to accept off-size images.',
            ]
        )
        with tf.control_dependencies([tf.debugging.Assert(same, [message], summarize=1)]):
            return tf.identity(image)
    if prep.size_policy == "resize":
        return tf.cond(same, lambda: image, lambda: _resize(image, height, width))
    return _crop_or_pad(image, height, width, prep.pad_value, centred=prep.size_policy != "pad_end")


def _resize(image, height, width):
    resized = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
    # Round back to uint8 so cached and uncached images are identical.
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _crop_or_pad(image, height, width, pad_value, centred):
    """Crops each axis where too long and pads it where too short.

    `centred`: at both ends equally; otherwise at the end only (bottom,
    right), so the top-left corner stays put.
    """
    shape = tf.shape(image)
    crop_h = tf.minimum(shape[0], height)
    crop_w = tf.minimum(shape[1], width)
    if centred:
        top, left = (shape[0] - crop_h) // 2, (shape[1] - crop_w) // 2
        pad_top, pad_left = (height - crop_h) // 2, (width - crop_w) // 2
    else:
        top = left = pad_top = pad_left = 0
    image = image[top : top + crop_h, left : left + crop_w]
    paddings = [
        [pad_top, height - crop_h - pad_top],
        [pad_left, width - crop_w - pad_left],
        [0, 0],
    ]
    return tf.pad(image, paddings, constant_values=tf.constant(pad_value, tf.uint8))
