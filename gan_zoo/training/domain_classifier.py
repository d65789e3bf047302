"""Training of ciGAN's domain feature network (the substitute for VGG-19).

Where the ImageNet VGG-19 weights of ciGAN's feature loss cannot be had,
`gan_zoo.models.feature_networks` offers a documented substitute: a small
VGG-style classifier of lesion vs lesion-free patches
(`build_domain_classifier`) whose pool1..pool3 maps serve as the features.
`train_domain_classifier` trains it; save the result as `.keras` and pass
its path as ciGAN's `feature_weights`.
"""

import keras
import numpy as np

from gan_zoo.models.feature_networks import build_domain_classifier
from gan_zoo.training.classify import fit_classifier


def train_domain_classifier(images, labels, *, validation=None, steps=1500, batch_size=32,
                            learning_rate=1e-3, widths=(32, 64, 128), seed=0, verbose=0):
    """Trains the substitute's classifier on lesion (1) vs lesion-free (0) patches.

    Use TRAINING patients' patches only: the network becomes part of the
    GAN's loss, and the GAN is trained on the training patients.

    Args:
        images: uint8 or [0, 1] float patches [N, S, S] or [N, S, S, 1].
        labels: 1 for a patch with a lesion, 0 without.
        validation: optional (images, labels) of validation patients, for the
            reported accuracy.
        steps: Adam steps; random flips of the patches (the task has no side).
        batch_size: patches per step.
        learning_rate: Adam learning rate.
        widths: filters of the three blocks.
        seed: seed of weights and order.
        verbose: Keras verbosity.

    Returns:
        (classifier, {"train_accuracy", "validation_accuracy", "steps"}).

    Example:

    >>> classifier, report = train_domain_classifier(patches, has_lesion, steps=1500)
    >>> classifier.save("domain_features.keras")  # ciGAN's feature_weights
    """
    import tensorflow as tf

    x = _unit_patches(images)
    y = np.asarray(labels, np.int32).reshape(-1)
    if len(x) != len(y) or len(set(y.tolist())) < 2:
        raise ValueError(
            f"train_domain_classifier needs patches of both classes, got {len(x)} patches "
            f"with labels {sorted(set(y.tolist()))}."
        )
    keras.utils.set_random_seed(seed)
    classifier = build_domain_classifier(x.shape[1], widths, seed=seed)
    classifier.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                       metrics=["accuracy"])

    def flip(patch, label):
        patch = tf.image.random_flip_left_right(patch, seed=seed)
        return tf.image.random_flip_up_down(patch, seed=seed + 1), label

    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat()
        .map(flip).batch(batch_size)
    )
    fit_classifier(classifier, dataset, epochs=1, steps_per_epoch=int(steps), optimizer=None, verbose=verbose)
    report = {"steps": int(steps),
              "train_accuracy": float(classifier.evaluate(x, y, verbose=0)[1])}
    if validation is not None:
        vx, vy = _unit_patches(validation[0]), np.asarray(validation[1], np.int32)
        report["validation_accuracy"] = float(classifier.evaluate(vx, vy, verbose=0)[1])
    return classifier, report


def _unit_patches(images):
    array = np.asarray(images)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    return array[..., None] if array.ndim == 3 else array
