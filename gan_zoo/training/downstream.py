"""Scoring a generator by the classifier it helps to train.

The protocol of Chi et al. (and of most GAN-augmentation papers): train the
same classifier on real images, on synthetic images alone ("train on
synthetic, test on real", TSTR) and on real plus synthetic images, then score
each on held-out REAL patients. The decision threshold is chosen on real
validation patients, never on the test patients, and the test patients are
scored once, after training: per-epoch scores (`validation_hook`) use the
validation patients only.
"""

import numpy as np

import gan_zoo
from gan_zoo.data.pipeline import evaluation_dataset
from gan_zoo.metrics import binary_metrics
from gan_zoo.metrics.operating_point import OperatingPoint
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

    Two uses, kept apart so that test patients are never scored during
    training (where a per-epoch hook would let them steer the choice of
    epochs or settings):

    - `validation_hook()`: the per-epoch `evaluate` callable of `train_gan`
      / `EvaluationHook`. It trains the classifier on synthetic and on real
      plus synthetic images and returns their AUROC on the VALIDATION
      patients (`synthetic_validation_auroc`, `augmented_validation_auroc`);
      it never reads the test arrays.
    - `test_metrics(gan)` and `real_baseline()`: once, after training, the
      test-patient metrics of the classifier trained on synthetic images
      (`synthetic_*`), on real plus synthetic images (`augmented_*`) and on
      real images only (`real_*`), each with the decision threshold chosen
      on the validation patients.

    Each classifier starts from the same seed and trains with
    `train_classifier` (its paper recipe) for the same number of epochs.
    The constructor checks what the evaluation needs (both classes in every
    split, at least one full classifier batch of training images), so a
    recipe that builds it before training fails before training.

    Args:
        train: (images, labels) arrays of the real training patients.
        validation: arrays of the validation patients (threshold choice,
            per-epoch scores).
        test: arrays of the test patients (the reported scores).
        classifier: zoo classifier name.
        classifier_options: overrides of the classifier's config.
        epochs: classifier training epochs.
        batch_size: classifier batch size.
        synthetic_per_class: generated images per class (default: as many
            as the real training images of that class).
        seed: seed of the classifier initialisation and of the latents.
        operating_point: how the threshold is set on the validation
            patients (an `OperatingPoint` or its text: "youden", "argmax",
            "sensitivity=X", "specificity=X").
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
        operating_point="youden",
    ):
        self.train, self.validation, self.test = train, validation, test
        self.classifier = classifier
        self.classifier_options = dict(classifier_options or {})
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.synthetic_per_class = synthetic_per_class
        self.seed = int(seed)
        self.operating_point = OperatingPoint.parse(operating_point)
        self._real = None
        self._real_model = None
        self._check()

    def _check(self):
        for name, (_, labels) in (("training", self.train), ("validation", self.validation),
                                  ("test", self.test)):
            present = set(np.unique(labels).tolist())
            missing = [c for c in (0, 1) if c not in present]
            if missing:
                raise ValueError(
                    f"The {name} patients have no images of class {missing[0]}: the downstream "
                    "evaluation needs both classes in the training, validation and test patients."
                )
        if len(self.train[1]) < self.batch_size:
            raise ValueError(
                f"The training patients have {len(self.train[1])} images, fewer than the "
                f"downstream classifier's batch size {self.batch_size}: not one full batch."
            )

    def _fit(self, images, labels):
        import keras

        keras.utils.set_random_seed(self.seed)
        model = gan_zoo.load(self.classifier, **self.classifier_options)
        train_classifier(
            model, (images, labels), epochs=self.epochs, batch_size=self.batch_size,
            size_policy="error", seed=self.seed, verbose=0,
        )
        return model

    def _fit_and_score(self, images, labels, prefix):
        return self._score(self._fit(images, labels), prefix)

    def _score(self, model, prefix):
        val_scores = predict_scores(model, self.validation[0], size_policy="error")
        test_scores = predict_scores(model, self.test[0], size_policy="error")
        result = self.operating_point.evaluate(self.test[1], test_scores, self.validation[1], val_scores)
        keys = ("auroc", "balanced_accuracy", "f1", "precision", "recall", "accuracy")
        return {f"{prefix}_{k}": result[k] for k in keys}

    def _validation_auroc(self, images, labels):
        model = self._fit(images, labels)
        scores = predict_scores(model, self.validation[0], size_policy="error")
        return float(binary_metrics(self.validation[1], scores)["auroc"])

    def synthetic(self, gan):
        """Generated (images, labels), class counts matching the real set."""
        counts = np.bincount(self.train[1], minlength=gan.num_classes)
        if self.synthetic_per_class is not None:
            counts = np.full(gan.num_classes, int(self.synthetic_per_class))
        labels = np.repeat(np.arange(gan.num_classes), counts).astype(np.int32)
        return gan.generate(labels=labels, seed=self.seed), labels

    def _check_generator(self, gan):
        if not gan.conditional:
            raise ValueError("AugmentationEvaluation needs a class-conditional generator.")

    def validation_hook(self):
        """`(gan, epoch) -> {name: AUROC on the validation patients}` for `train_gan`."""

        def evaluate_on_validation(gan, epoch=None):
            self._check_generator(gan)
            images, labels = self.synthetic(gan)
            return {
                "synthetic_validation_auroc": self._validation_auroc(images, labels),
                "augmented_validation_auroc": self._validation_auroc(
                    np.concatenate([self.train[0], images]),
                    np.concatenate([self.train[1], labels]),
                ),
            }

        return evaluate_on_validation

    def real_classifier(self):
        """The classifier trained on the real training images (trained once).

        Also the recipes' domain feature extractor for FID/KID: it has seen
        the training patients only.
        """
        if self._real_model is None:
            self._real_model = self._fit(*self.train)
        return self._real_model

    def use_real_classifier(self, model):
        """Takes `model` as the classifier trained on the real training images.

        For a resumed run: the classifier its first invocation trained and
        saved (`gan_zoo.experiments.kept_models.train_once`), so that the
        run's feature extractor and real baseline do not change.
        """
        self._real_model = model

    def real_baseline(self):
        """Test metrics of the classifier trained on real images only (once)."""
        if self._real is None:
            self._real = self._score(self.real_classifier(), "real")
        return dict(self._real)

    def test_metrics(self, gan):
        """Test metrics with synthetic and real + synthetic training images.

        Call once, after training: this scores the test patients.
        """
        self._check_generator(gan)
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
