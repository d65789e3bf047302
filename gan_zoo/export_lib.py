"""SavedModel export with named, float32 serving signatures.

- generators (zoo GANs): `generate(z[, labels]) -> {"images"}`, images in
  [0, 1], float32 [N, H, W, C];
- classifiers: `classify(images) -> {"probabilities"}`, images float32 in
  [0, 1], probabilities [N, num_classes];
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


def classify_endpoint(classifier):
    """(fn, signature) mapping float32 images to float32 probabilities."""
    shape = tuple(classifier.input_shape[1:])
    spec = tf.TensorSpec((None, *shape), tf.float32, name="images")

    def classify(images):
        probabilities = classifier(images, training=False)
        return {"probabilities": tf.cast(probabilities, tf.float32)}

    return classify, [spec]


def generate_endpoint(gan):
    """(fn, signature) mapping z (and int labels) to images in [0, 1]."""
    z_spec = tf.TensorSpec((None, gan.latent_dim), tf.float32, name="z")
    if gan.conditional:
        label_spec = tf.TensorSpec((None,), tf.int32, name="labels")

        def generate(z, labels):
            images = gan.generator([z, labels], training=False)
            return {"images": gan.to_unit_range(images)}

        return generate, [z_spec, label_spec]

    def generate(z):
        return {"images": gan.to_unit_range(gan.generator(z, training=False))}

    return generate, [z_spec]


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
    endpoints = serving_endpoints(model)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(str(path), verbose=verbose)
    return list(endpoints)
