"""A small modern CNN baseline for IDC patches (not from a paper).

Layer list for the default 50x50 input and `width=1`:

    input              50x50x3    float32 in [0, 1]
    flip               50x50x3    random horizontal mirror, training only
    rot90              50x50x3    random k*90-degree rotation, training only
    stage1 (2 blocks)  50x50x32   each block: conv 3x3 (no bias) -> BN -> ReLU
    pool1              25x25x32   max pool 2x2, stride 2, "same" (ceil)
    stage2             25x25x64
    pool2              13x13x64
    stage3             13x13x128
    pool3                7x7x128
    stage4               7x7x256
    gap                      256  global average pooling
    dropout                  256
    classifier                 2  dense, softmax

Design notes:

- Augmentation: `RandomFlip("horizontal")` then `RandomRot90` covers all 8
  symmetries of the square. Keras' `RandomFlip("horizontal_and_vertical")`
  flips both axes with ONE coin (image or its 180-degree rotation), so with
  the rotations it would never show a mirror image.
- Optimiser: AdamW, lr 1e-3, weight decay 1e-4. `compile()` without an
  optimizer uses a constant learning rate (the number of steps is not known
  then); `paper_optimizer(decay_steps=epochs * steps_per_epoch)` returns the
  same optimizer with cosine decay to 0, which
  `gan_zoo.training.classify.train_classifier` uses.
- Training defaults (`default_training()`): 4 epochs at batch 64 with cosine
  decay over them, short enough to train in a few minutes on a 2-core CPU
  (their cost and validation scores on IDC: docs/models/small_cnn.md).
"""

import keras

from gan_zoo import config_checks as check
from gan_zoo.layers.augmentation import RandomRot90
from gan_zoo.layers.batch_normalization import BatchNormalization
from gan_zoo.models.classifier import (
    SparseCategoricalCrossentropyWithSmoothing,
    ZooClassifier,
)
from gan_zoo.registry import register_model

BASE_WIDTHS = (32, 64, 128, 256)

CITATION = (
    "No paper: a conventional conv-BN-ReLU baseline (VGG-style stages, "
    "Simonyan & Zisserman 2015; batch normalisation, Ioffe & Szegedy 2015; "
    "AdamW, Loshchilov & Hutter 2019) for the IDC patches of Janowczyk, A. & "
    "Madabhushi, A. (2016). Deep learning for digital pathology image "
    "analysis. Journal of Pathology Informatics, 7, 29."
)


@keras.saving.register_keras_serializable(package="gan_zoo")
class SmallCNN(ZooClassifier):
    """A small conv-BN-ReLU CNN baseline for histopathology patches.

    Four stages of two 3x3 conv -> batch norm -> ReLU blocks, widths
    `width * (32, 64, 128, 256)`, with 2x2 max pooling between stages, then
    global average pooling, dropout and a dense softmax. Random mirroring and
    90-degree rotations run inside the model while training.

    Args:
        image_size: side of the square input patches (50 for IDC).
        num_classes: number of classes (2: no IDC / IDC).
        width: multiplier of the stage widths (32, 64, 128, 256); each width
            is rounded to an integer, at least 1.
        dropout: dropout rate before the classifier.
        augment: whether to mirror and rotate while training.
        label_smoothing: label smoothing of the default loss.
        seed: optional integer seed of the augmentation layers.
        **kwargs: `keras.Model` keyword arguments (`name`, ...).

    Example:

    >>> model = SmallCNN(width=1)
    >>> recipe = model.default_training()
    >>> steps = recipe["epochs"] * (len(train_images) // recipe["batch_size"])
    >>> model.compile(optimizer=model.paper_optimizer(decay_steps=steps))
    >>> model.fit(train_images, train_labels, **recipe)
    >>> p_idc = model.predict(test_images)[:, 1]

    A baseline without a paper of its own; it follows standard practice
    (Simonyan & Zisserman 2015, ICLR; Ioffe & Szegedy 2015, ICML; Loshchilov &
    Hutter 2019, ICLR).
    """

    # Options that change training, not the weights: weights load across them.
    weight_independent_options = ("dropout", "label_smoothing")

    def __init__(
        self,
        image_size=50,
        num_classes=2,
        width=1,
        dropout=0.3,
        augment=True,
        label_smoothing=0.0,
        seed=None,
        name="small_cnn",
        **kwargs,
    ):
        image_size = check.positive_int("image_size", image_size)
        num_classes = check.integer_in_range("num_classes", num_classes, low=2)
        # The first stage keeps at least one filter: round(32 * width) >= 1.
        width = check.number_in_range("width", width, low=1 / 64)
        dropout = check.number_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        augment = check.boolean("augment", augment)
        label_smoothing = check.number_in_range(
            "label_smoothing", label_smoothing, 0.0, 1.0, high_inclusive=False
        )
        seed = check.optional(check.seed, "seed", seed)
        widths = [max(1, int(round(w * width))) for w in BASE_WIDTHS]

        # === Functional model ===
        inputs = keras.Input((image_size, image_size, 3), name="images")
        x = inputs
        if augment:
            x = keras.layers.RandomFlip("horizontal", seed=seed, name="flip")(x)
            x = RandomRot90(seed=None if seed is None else seed + 1, name="rot90")(x)
        for stage, filters in enumerate(widths, start=1):
            if stage > 1:
                x = keras.layers.MaxPooling2D(
                    2, padding="same", name=f"pool{stage - 1}"
                )(x)
            for block in (1, 2):
                prefix = f"stage{stage}_block{block}"
                x = keras.layers.Conv2D(
                    filters, 3, padding="same", use_bias=False, name=f"{prefix}_conv"
                )(x)
                x = BatchNormalization(
                    momentum=0.9, name=f"{prefix}_bn"
                )(x)
                x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
        outputs = keras.layers.Dense(
            num_classes, activation="softmax", name="classifier"
        )(x)
        super().__init__(
            inputs=inputs, outputs=outputs, num_classes=num_classes, name=name, **kwargs
        )

        # === Config ===
        self.image_size = image_size
        self.width = width
        self.dropout = dropout
        self.augment = augment
        self.label_smoothing = label_smoothing
        self.seed = seed

    def paper_optimizer(self, decay_steps=None):
        """AdamW lr 1e-3, weight decay 1e-4; cosine decay if `decay_steps`."""
        learning_rate = 1e-3
        if decay_steps:
            learning_rate = keras.optimizers.schedules.CosineDecay(
                learning_rate, decay_steps
            )
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=1e-4)

    def paper_loss(self):
        """Sparse cross-entropy, with `label_smoothing` if it is set."""
        if self.label_smoothing:
            return SparseCategoricalCrossentropyWithSmoothing(self.label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy()

    def default_training(self):
        """Chosen defaults (no paper): see the module docstring."""
        return {"epochs": 4, "batch_size": 64}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "width": self.width,
                "dropout": self.dropout,
                "augment": self.augment,
                "label_smoothing": self.label_smoothing,
                "seed": self.seed,
            }
        )
        return config


register_model(
    "small_cnn",
    SmallCNN,
    config={
        "image_size": 50,
        "num_classes": 2,
        "width": 1,
        "dropout": 0.3,
        "augment": True,
        "label_smoothing": 0.0,
        "seed": None,
    },
    citation=CITATION,
    description="Small conv-BN-ReLU CNN baseline for IDC patches "
    "(4 stages, global average pooling, flip + 90-degree rotation augmentation).",
    task="classifier",
    modality="histology",
    capabilities=("classify",),
    inputs="RGB patches [{image_size}, {image_size}, 3] in [0, 1]",
    outputs="class probabilities [N, {num_classes}] (column 1: P(IDC))",
)
