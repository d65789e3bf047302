"""ResNet-50 patch classifier of ciGAN's experiments (Wu et al. 2018, section 3.2).

The paper classifies 256x256 mammogram patches as malignant or not with a
ResNet-50 (He et al. 2016) initialised with ImageNet weights, Adam 1e-5
(0.9, 0.999, 1e-8), batch 32, 10,000 iterations, the learning rate times 0.9
every 2,000 iterations; traditional augmentation is random rotation up to
30 degrees, horizontal flips and rescaling by 0.75 to 1.25; with ciGAN the
real share of each batch starts at 50% and rises by 20 points every 1,000
iterations up to 90% (`gan_zoo.training.curriculum.Curriculum`, fed to
`gan_zoo.data.streams.mixed_batches`).

ImageNet weights come from `keras.applications.ResNet50(weights="imagenet")`
(a download) or a local copy of its no-top weights file (`backbone_weights`);
`backbone_weights=None`
trains from scratch, with a loud warning: results then are NOT the paper's
setting and must say so (`weights_used` records what was loaded).
"""

import pathlib
import warnings

import keras

from gan_zoo import config_checks as check
from gan_zoo.layers.batch_normalization import fuse_batch_normalization
from gan_zoo.models.classifier import ZooClassifier
from gan_zoo.models.feature_networks import CaffeInput
from gan_zoo.registry import register_model
from gan_zoo.schedules import StepDecay

CITATION = (
    "He, Zhang, Ren & Sun, 'Deep Residual Learning for Image Recognition', CVPR 2016; "
    "training recipe of Wu, Wu, Cox & Lotter, 'Conditional Infilling GANs for Data "
    "Augmentation in Mammogram Classification', 2018 (arXiv 1807.08093), section 3.2."
)
RESNET50_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
PAPER_DECAY = StepDecay(decay=0.9, every_steps=2000)


class RandomWeightsWarning(UserWarning):
    """The classifier starts from random weights where the paper used ImageNet's."""


@keras.saving.register_keras_serializable(package="gan_zoo")
class ResNet50Classifier(ZooClassifier):
    """ResNet-50 (ImageNet init) with traditional augmentation inside the model.

    Layers: augmentation (training only: rotation uniform in +-30 degrees,
    horizontal flip, zoom to 0.75-1.25 of the size; corners filled by
    reflection) -> `CaffeInput` (grayscale repeated to RGB, ImageNet "caffe"
    normalisation) -> `keras.applications.ResNet50` without its top ->
    global average pooling -> dense softmax.

    Paper audit: docs/models/resnet50_classifier.md (paper item | paper | gan_zoo | option).

    Args:
        image_size: side of the square patches (256 in the paper; >= 32).
        channels: 1 (grayscale mammograms) or 3.
        num_classes: 2 (non-malignant, malignant).
        backbone_weights: "imagenet" (download), a path to the Keras
            no-top weights file, or None (random initialisation, with a
            warning).
        augment: the paper's traditional augmentation while training.
        rotation_degrees: the rotation range, +-degrees.
        scale_range: (smallest, largest) zoom factor.
        learning_rate: base rate of `paper_optimizer` (Adam).
        seed: seed of the augmentation layers.
        weights_used: provenance recorded by the constructor ("imagenet",
            "file:<path>" or "random"); a reloaded model keeps it.
        **kwargs: `keras.Model` arguments (`name`).

    Example:

    >>> model = ResNet50Classifier(image_size=64, backbone_weights="imagenet")
    >>> model.compile()  # Adam 1e-5, x0.9 every 2,000 steps
    >>> model.fit(stream, steps_per_epoch=1000, epochs=10)
    """

    # Where the initial weights came from, and augmentation amounts: weights
    # saved under other values still fit.
    weight_independent_options = ("backbone_weights", "weights_used", "rotation_degrees",
                                  "scale_range")

    def __init__(self, image_size=256, channels=1, num_classes=2, backbone_weights="imagenet",
                 augment=True, rotation_degrees=30.0, scale_range=(0.75, 1.25), learning_rate=1e-5,
                 seed=None, weights_used=None, name="resnet50_classifier", **kwargs):
        # ResNet-50 halves the input five times: 32 px is the least.
        image_size = check.integer_in_range("image_size", image_size, low=32)
        channels = check.one_of("channels", channels, (1, 3))
        num_classes = check.integer_in_range("num_classes", num_classes, low=2)
        augment = check.boolean("augment", augment)
        rotation_degrees = check.number_in_range("rotation_degrees", rotation_degrees, 0.0, 180.0)
        low, high = check.sequence_of(check.positive_number, "scale_range", scale_range, length=2)
        if low > high:
            raise check.ConfigError(
                f"scale_range must be (low, high) with low <= high; got {scale_range!r}.")
        learning_rate = check.positive_number("learning_rate", learning_rate)
        seed = check.optional(check.seed, "seed", seed)
        backbone, used = _backbone(backbone_weights, image_size, weights_used)
        # Fused half-precision batch norm: the same maths, bfloat16 that pays.
        fuse_batch_normalization(backbone)

        inputs = keras.Input((image_size, image_size, channels), name="images")
        x = inputs
        if augment:
            x = keras.layers.RandomRotation(float(rotation_degrees) / 360.0, fill_mode="reflect",
                                            seed=seed, name="rotation")(x)
            x = keras.layers.RandomFlip("horizontal", seed=None if seed is None else seed + 1,
                                        name="flip")(x)
            # RandomZoom samples the factor f and shows the image at 1 / (1 + f) of its size.
            x = keras.layers.RandomZoom((1.0 / high - 1.0, 1.0 / low - 1.0), fill_mode="reflect",
                                        seed=None if seed is None else seed + 2, name="scale")(x)
        x = CaffeInput(name="imagenet_input")(x)
        x = backbone(x)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        outputs = keras.layers.Dense(int(num_classes), activation="softmax", dtype="float32",
                                     name="head")(x)
        super().__init__(inputs=inputs, outputs=outputs, num_classes=int(num_classes), name=name,
                         **kwargs)
        self.image_size, self.channels = image_size, channels
        self.backbone_weights = None if backbone_weights is None else str(backbone_weights)
        self.weights_used = used
        self.augment = bool(augment)
        self.rotation_degrees = float(rotation_degrees)
        self.scale_range = (low, high)
        self.learning_rate = float(learning_rate)
        self.seed = seed

    @property
    def pretrained(self):
        return self.weights_used != "random"

    def paper_optimizer(self):
        """Adam 1e-5 (0.9, 0.999, 1e-8), the rate x 0.9 every 2,000 steps.

        The decay is `PAPER_DECAY` (a `gan_zoo.schedules.StepDecay`) as a
        Keras schedule of the optimizer's own step count, so a restored
        optimizer continues the decay where it was.
        """
        rate = keras.optimizers.schedules.ExponentialDecay(
            self.learning_rate, decay_steps=PAPER_DECAY.every_steps, decay_rate=PAPER_DECAY.decay,
            staircase=True,
        )
        return keras.optimizers.Adam(rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8)

    def default_training(self):
        """The paper: batch 32, 10,000 iterations (`steps`)."""
        return {"steps": 10000, "batch_size": 32}

    def get_config(self):
        config = super().get_config()
        config.update({
            "image_size": self.image_size,
            "channels": self.channels,
            "backbone_weights": self.backbone_weights,
            "augment": self.augment,
            "rotation_degrees": self.rotation_degrees,
            "scale_range": list(self.scale_range),
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "weights_used": self.weights_used,
        })
        return config

    @classmethod
    def from_config(cls, config):
        # A saved model brings its own weights: build it without downloading
        # (and without the random-start warning), keep the recorded options.
        model = cls(**{**config, "backbone_weights": None,
                       "weights_used": config.get("weights_used") or "random"})
        model.backbone_weights = config.get("backbone_weights")
        return model


def _backbone(backbone_weights, image_size, weights_used):
    shape = (image_size, image_size, 3)
    if backbone_weights is None:
        if weights_used is None:  # a fresh random start, not a reload
            warnings.warn(
                "ResNet-50 with RANDOM initial weights, not ImageNet's: the paper fine-tunes "
                "ImageNet weights, so results of this classifier are not comparable with it "
                "and must say so.", RandomWeightsWarning, stacklevel=3,
            )
        return keras.applications.ResNet50(include_top=False, weights=None, input_shape=shape), \
            weights_used or "random"
    if backbone_weights == "imagenet":
        try:
            backbone = keras.applications.ResNet50(include_top=False, weights="imagenet",
                                                   input_shape=shape)
        except Exception as error:  # noqa: BLE001 - keras raises a bare Exception offline
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise RuntimeError(
                f"The ResNet-50 ImageNet weights could not be downloaded ({reason}); pass "
                f"backbone_weights=<path to {RESNET50_WEIGHTS_FILE}> or backbone_weights=None "
                "(random initialisation, which results must report)."
            ) from None
        return backbone, "imagenet"
    path = pathlib.Path(str(backbone_weights)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"backbone_weights: no such ResNet-50 weights file: {path}.")
    backbone = keras.applications.ResNet50(include_top=False, weights=str(path), input_shape=shape)
    return backbone, f"file:{path}"


register_model(
    "resnet50_classifier",
    ResNet50Classifier,
    config={
        "image_size": 256,
        "channels": 1,
        "num_classes": 2,
        "backbone_weights": "imagenet",
        "augment": True,
        "rotation_degrees": 30.0,
        "scale_range": [0.75, 1.25],
        "learning_rate": 1e-5,
        "seed": None,
        "weights_used": None,
    },
    citation=CITATION,
    description="ResNet-50 patch classifier of ciGAN's experiments (ImageNet init, rotation/flip/scale "
    "augmentation, Adam 1e-5 decayed x0.9 every 2,000 steps)",
    task="classifier",
    modality="mammography",
    capabilities=("classify",),
    inputs="mammogram patches [{image_size}, {image_size}, {channels}] in [0, 1]",
    outputs="class probabilities [N, {num_classes}] (column 1: P(malignant))",
)
