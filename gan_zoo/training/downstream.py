"""Scoring a generator by the classifier it helps to train.

The protocol of Chi et al. (and of most GAN-augmentation papers): train the
same classifier on real images, on synthetic images alone ("train on
synthetic, test on real", TSTR) and on real plus synthetic images, then score
each on held-out REAL patients. The decision threshold is chosen on real
validation patients, never on the test patients.
"""

import numpy as np

import gan_zoo
from gan_zoo.data.pipeline import evaluation_dataset
from gan_zoo.metrics import evaluate_classifier
from gan_zoo.training.classify import predict_scores, train_classifier


def load_arrays(source, image_size, *, size_policy, channels=3, batch_size=256):
    """(images float32 in [0, 1], labels int32) of labelled image records.

    Args:
        source: labelled `ImageRecord`s.
        image_size: (height, width) of the arrays.
        size_policy: how off-size images are fitted (`evaluation_dataset`).
        channels: image channels.
        batch_size: images decoded per batch.
    """
    images, labels = [], []
    dataset = evaluation_dataset(
        source, batch_size=batch_size, image_size=image_size, channels=channels,
        value_range=(0.0, 1.0), size_policy=size_policy,
    )
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
    if not images:
        raise ValueError("No images to load: the split is empty.")
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


class AugmentationEvaluation:
    """Trains a zoo classifier with and without a generator's images.

    Call it with a class-conditional zoo GAN: it returns the test metrics of
    a classifier trained on synthetic images only (`synthetic_*`) and on real
    plus synthetic images (`augmented_*`); `real_baseline()` gives the same
    classifier trained on real images only (`real_*`). Each classifier starts
    from the same seed and trains with `train_classifier` (its paper recipe)
    for the same number of epochs.
    Usable as the `evaluate` callable of `train_gan` / `EvaluationHook`.

    Args:
        train: (images, labels) arrays of the real training patients.
        validation: arrays of the validation patients (threshold choice).
        test: arrays of the test patients (the reported scores).
        classifier: zoo classifier name.
        classifier_options: overrides of the classifier's config.
        epochs: classifier training epochs.
        batch_size: classifier batch size.
        synthetic_per_class: generated images per class (default: as many
            as the real training images of that class).
        seed: seed of the classifier initialisation and of the latents.
        criterion: threshold criterion on validation data.
    """

    def __init__(
        self,
        train,
        validation,
        test,
        *,
        classifier="small_cnn",
        classifier_options=None,
        epochs=5,
        batch_size=64,
        synthetic_per_class=None,
        seed=0,
        criterion="youden",
    ):
        self.train, self.validation, self.test = train, validation, test
        self.classifier = classifier
        self.classifier_options = dict(classifier_options or {})
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.synthetic_per_class = synthetic_per_class
        self.seed = int(seed)
        self.criterion = criterion
        self._real = None

    def _fit_and_score(self, images, labels, prefix):
        import keras

        keras.utils.set_random_seed(self.seed)
        model = gan_zoo.load(self.classifier, **self.classifier_options)
        train_classifier(
            model, (images, labels), epochs=self.epochs, batch_size=self.batch_size,
            size_policy="error", seed=self.seed, verbose=0,
        )
        val_scores = predict_scores(model, self.validation[0], size_policy="error")
        test_scores = predict_scores(model, self.test[0], size_policy="error")
        result = evaluate_classifier(
            self.test[1], test_scores,
            y_true_val=self.validation[1], y_score_val=val_scores, criterion=self.criterion,
        )
        keys = ("auroc", "balanced_accuracy", "f1", "precision", "recall", "accuracy")
        return {f"{prefix}_{k}": result[k] for k in keys}

    def synthetic(self, gan):
        """Generated (images, labels), class counts matching the real set."""
        counts = np.bincount(self.train[1], minlength=gan.num_classes)
        if self.synthetic_per_class is not None:
            counts = np.full(gan.num_classes, int(self.synthetic_per_class))
        labels = np.repeat(np.arange(gan.num_classes), counts).astype(np.int32)
        return gan.generate(labels=labels, seed=self.seed), labels

    def real_baseline(self):
        if self._real is None:
            self._real = self._fit_and_score(*self.train, "real")
        return dict(self._real)

    def __call__(self, gan, epoch=None):
        if not gan.conditional:
            raise ValueError("AugmentationEvaluation needs a class-conditional generator.")
        images, labels = self.synthetic(gan)
        result = self._fit_and_score(images, labels, "synthetic")
        result.update(
            self._fit_and_score(
                np.concatenate([self.train[0], images]),
                np.concatenate([self.train[1], labels]),
                "augmented",
            )
        )
        return result
