"""SavedModel export with named, float32 serving signatures.

- generators (zoo GANs): `generate(z[, labels]) -> {"images"}`, images in
  [0, 1], float32 [N, H, W, C];
- image translators: `translate(images, ...)` or one `translate_<direction>`
  per direction -> {"images"}, images in [0, 1];
- classifiers: `classify(images) -> {"probabilities"}`, images float32 in
  [0, 1], probabilities [N, num_classes]; images outside [0, 1] (by more
  than `UNIT_RANGE_TOLERANCE`, e.g. 0-255 pixels) or NaN fail the call with
  an `InvalidArgumentError` saying so;
- a model may offer both (e.g. `semi_cgan`, whose discriminator classifies).

Signatures are float32 whatever the training precision policy, so a
deployment never sees bfloat16.
"""

import keras
import tensorflow as tf


def serving_endpoints(model):
    """{name: (fn, input_signature)} for `model`.

    Zoo models define `serving_endpoints()`; any other Keras model with one
    image input is exported as a classifier.
    """
    if hasattr(model, "serving_endpoints"):
        return model.serving_endpoints()
    return {"classify": classify_endpoint(model)}


# How far outside [0, 1] an input may lie (resampling and float rounding).
UNIT_RANGE_TOLERANCE = 1e-3


def assert_unit_range(images, where):
    """In-graph check that `images` lie in [0, 1]; returns them.

    Fails with an InvalidArgumentError whose message says what was expected
    (NaN fails too). Under XLA the assertion compiles to nothing.

    Args:
        images: a float tensor.
        where: the entry point, for the message (e.g. "classify").
    """
    images = tf.convert_to_tensor(images)
    values = tf.cast(images, tf.float32)
    low = tf.reduce_min(values) if values.shape.rank else values
    high = tf.reduce_max(values) if values.shape.rank else values
    text = (
        f"{where} expects float32 images in [0, 1] (divide 8-bit pixels by 255); "
        "got values in [min, max] ="
    )
    in_range = tf.logical_and(
        low >= -UNIT_RANGE_TOLERANCE, high <= 1.0 + UNIT_RANGE_TOLERANCE
    )
    check = tf.debugging.Assert(in_range, [text, low, high], name="unit_range")
    with tf.control_dependencies([check]):
        return tf.identity(images)


def assert_class_labels(labels, num_classes, where):
    """In-graph check that integer `labels` lie in [0, num_classes); returns them.

    Args:
        labels: an integer tensor.
        num_classes: the model's class count.
        where: the entry point and argument, for the message.
    """
    labels = tf.convert_to_tensor(labels)
    text = f"{where} expects class labels in [0, {num_classes}); got values in [min, max] ="
    low, high = tf.reduce_min(labels), tf.reduce_max(labels)
    valid = tf.logical_or(tf.equal(tf.size(labels), 0),
                          tf.logical_and(low >= 0, high < num_classes))
    check = tf.debugging.Assert(valid, [text, low, high], name="class_labels")
    with tf.control_dependencies([check]):
        return tf.identity(labels)


def classify_endpoint(classifier):
    """(fn, signature) mapping float32 images in [0, 1] to float32 probabilities."""
    shape = tuple(classifier.input_shape[1:])
    spec = tf.TensorSpec((None, *shape), tf.float32, name="images")

    def classify(images):
        images = assert_unit_range(images, "classify")
        probabilities = classifier(images, training=False)
        return {"probabilities": tf.cast(probabilities, tf.float32)}

    return classify, [spec]


def export(model, path, verbose=False):
    """Writes `model` to `path` as a SavedModel with its serving signatures.

    Args:
        model: a zoo model or a Keras classifier.
        path: output folder.
        verbose: print the signatures.

    Returns:
        The list of signature names written.

    Example:

    >>> gan_zoo.export(gan, "exported/dcgan")
    >>> loaded = tf.saved_model.load("exported/dcgan")
    >>> images = loaded.generate(z=tf.zeros([4, 100]))["images"]
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    # Networks the signatures use that the model does not track (e.g. the
    # EMA copy of a generator, which holds the averaged weights).
    for network in getattr(model, "export_networks", lambda: [])():
        archive.track(network)
    endpoints = serving_endpoints(model)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(str(path), verbose=verbose)
    return list(endpoints)
