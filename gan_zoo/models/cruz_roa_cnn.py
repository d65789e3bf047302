"""The 3-layer IDC patch CNN of Cruz-Roa et al. (2014), Janowczyk's version.

Layer list (Caffe layer names; feature map sizes for the default 50x50 input):

    input            50x50x3   float32 in [0, 1]
    crop             32x32x3   centre crop (Caffe data layer `crop_size: 32`)
    mean             32x32x3   mean-image subtraction (Caffe `mean_file`)
    mirror           32x32x3   random horizontal flip, training only
    rot90            32x32x3   random k*90-degree rotation, training only
    conv1            32x32x32  conv 5x5, stride 1, pad 2 ("same")
    pool1            16x16x32  max pool 3x3, stride 2
    relu1            16x16x32
    conv2            16x16x32  conv 5x5, pad 2
    relu2            16x16x32
    pool2              8x8x32  average pool 3x3, stride 2
    conv3              8x8x64  conv 5x5, pad 2
    relu3              8x8x64
    pool3              4x4x64  average pool 3x3, stride 2
    flatten              1024
    ip1                    64  dense, no activation
    ip2                     2  dense, softmax

Design notes (the papers leave these to the Caffe defaults or say nothing):

- Pooling rounding. Caffe pools with ceil rounding, out = ceil((in - 3) / 2)
  + 1, giving 32 -> 16 -> 8 -> 4; Keras "valid" floors (32 -> 15 -> 7 -> 3).
  Keras "same" pooling gives ceil(in / 2) = 16, 8, 4 and pads nothing before
  and one row / column after, which is exactly Caffe's window placement (the
  last window hangs one pixel over the bottom / right edge). The values agree
  too: max pooling ignores the padding, and Keras "same" average pooling
  divides by the number of in-image pixels, as Caffe does for the part of a
  window beyond the image when `pad` is 0. So the pools use `padding="same"`.
- Convolution padding. The papers' summary states "pad same" for conv1
  only; this layer list is Caffe's `cifar10_quick` network with 2 outputs,
  which pads all three 5x5 convs by 2, so all three use `padding="same"`
  (with valid conv2 / conv3 the maps would shrink to 1x1 before ip1).
- Weight decay. Caffe adds `weight_decay * w` to the gradient of every
  parameter (weights and biases; `decay_mult` defaults to 1) before the
  AdaGrad update. A Keras `L2(l)` regulariser adds `l * sum(w^2)` to the loss,
  i.e. `2 * l * w` to the gradient, so each kernel and bias carries
  `L2(weight_decay / 2)` = L2(0.002). The optimizers' `weight_decay`
  argument would be decoupled decay (applied outside AdaGrad's per-parameter
  scaling), which is not Caffe's semantics.
- AdaGrad. Caffe's accumulator starts at 0 and its update is
  lr * g / (sqrt(acc) + 1e-8); Keras' Adagrad defaults start the accumulator
  at 0.1 (which shrinks the first steps by sqrt(0.1) / |g|, about 300-fold
  for |g| = 1e-3) and add epsilon inside the square root, so
  `paper_optimizer` uses
  `initial_accumulator_value=0.0, epsilon=1e-16`.
- Epochs. Neither paper states them; `default_training()` gives 30 epochs at
  batch 128 (the validation curve on IDC behind the choice:
  docs/models/cruz_roa_cnn.md).
- Pixel scale and initialisation. The zoo feeds [0, 1] images (Caffe saw
  0-255 minus the mean); weights use Keras' Glorot-uniform default since the
  papers give no filler.
- Crop. Caffe's `crop_size` crops at a random position while training and at
  the centre when testing; following the papers' description this model
  always takes the centre crop, and relies on mirroring and rotations for
  augmentation.
- Rotations. Janowczyk enlarged the training set with 90-degree rotations
  offline; here `RandomRot90` draws one per image and step (`rotate=False`
  turns it off; `augment=False` turns off mirroring and rotations).
"""

import warnings

import keras

from gan_zoo import config_checks as check
from gan_zoo.layers.augmentation import MeanImageSubtraction, RandomRot90
from gan_zoo.models.classifier import ZooClassifier
from gan_zoo.registry import register_model

CITATION = (
    "Cruz-Roa, A., Basavanhally, A., Gonzalez, F., Gilmore, H., Feldman, M., "
    "Ganesan, S., Shih, N., Tomaszewski, J. & Madabhushi, A. (2014). Automatic "
    "detection of invasive ductal carcinoma in whole slide images with "
    "convolutional neural networks. SPIE Medical Imaging 9041, 904103. "
    "Network as distributed by Janowczyk, A. & Madabhushi, A. (2016). Deep "
    "learning for digital pathology image analysis: A comprehensive tutorial "
    "with selected use cases. Journal of Pathology Informatics, 7, 29."
)


@keras.saving.register_keras_serializable(package="gan_zoo")
class CruzRoaCNN(ZooClassifier):
    """The 3-layer CNN baseline for IDC patches (Cruz-Roa et al. 2014).

    Centre-crops the input to `crop_size`, subtracts a mean image (adapt it
    with `adapt_mean` on the training images before training), mirrors and
    rotates at random while training, then conv 5x5 32 -> max pool -> ReLU ->
    conv 5x5 32 -> ReLU -> avg pool -> conv 5x5 64 -> ReLU -> avg pool ->
    dense 64 -> dense `num_classes` softmax. See the module docstring for the
    layer sizes and how Caffe's pooling, weight decay and AdaGrad are matched.

    Args:
        image_size: side of the square input patches (50 for IDC).
        crop_size: side of the centre crop fed to the network (32).
        num_classes: number of classes (2: no IDC / IDC).
        augment: whether to mirror and rotate while training.
        rotate: with `augment`, whether to add random 90-degree rotations (the
            papers' training-set augmentation) to the mirroring.
        weight_decay: Caffe weight decay; each kernel and bias carries
            `L2(weight_decay / 2)`, which adds `weight_decay * w` to its
            gradient.
        seed: optional integer seed of the augmentation layers.
        **kwargs: `keras.Model` keyword arguments (`name`, ...).

    Example:

    >>> model = CruzRoaCNN()
    >>> model.adapt_mean(train_images)  # (N, 50, 50, 3) in [0, 1]
    >>> model.compile()  # AdaGrad lr 1e-3, sparse cross-entropy
    >>> model.fit(train_images, train_labels, **model.default_training())
    >>> p_idc = model.predict(test_images)[:, 1]

    Cruz-Roa, A. et al. (2014). Automatic detection of invasive ductal
    carcinoma in whole slide images with convolutional neural networks. SPIE
    Medical Imaging 9041, 904103; Janowczyk, A. & Madabhushi, A. (2016). Deep
    learning for digital pathology image analysis: A comprehensive tutorial
    with selected use cases. Journal of Pathology Informatics, 7, 29.
    """

    # Options that change training, not the weights: weights load across them.
    weight_independent_options = ("weight_decay",)

    def __init__(
        self,
        image_size=50,
        crop_size=32,
        num_classes=2,
        augment=True,
        rotate=True,
        weight_decay=0.004,
        seed=None,
        name="cruz_roa_cnn",
        **kwargs,
    ):
        image_size = check.positive_int("image_size", image_size)
        crop_size = check.integer_in_range("crop_size", crop_size, 1, image_size)
        num_classes = check.integer_in_range("num_classes", num_classes, low=2)
        augment = check.boolean("augment", augment)
        rotate = check.boolean("rotate", rotate)
        weight_decay = check.non_negative_number("weight_decay", weight_decay)
        seed = check.optional(check.seed, "seed", seed)
        # Caffe decays weights and biases alike: gradient += weight_decay * w.
        def l2():
            return keras.regularizers.L2(weight_decay / 2) if weight_decay else None

        def conv(filters, layer_name):
            return keras.layers.Conv2D(
                filters,
                5,
                padding="same",
                kernel_regularizer=l2(),
                bias_regularizer=l2(),
                name=layer_name,
            )

        def dense(units, activation, layer_name):
            return keras.layers.Dense(
                units,
                activation=activation,
                kernel_regularizer=l2(),
                bias_regularizer=l2(),
                name=layer_name,
            )

        # === Functional model ===
        inputs = keras.Input((image_size, image_size, 3), name="images")
        x = keras.layers.CenterCrop(crop_size, crop_size, name="crop")(inputs)
        x = MeanImageSubtraction(name="mean")(x)
        if augment:
            x = keras.layers.RandomFlip("horizontal", seed=seed, name="mirror")(x)
            if rotate:
                x = RandomRot90(
                    seed=None if seed is None else seed + 1, name="rot90"
                )(x)
        x = conv(32, "conv1")(x)
        x = keras.layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
        x = keras.layers.ReLU(name="relu1")(x)
        x = conv(32, "conv2")(x)
        x = keras.layers.ReLU(name="relu2")(x)
        x = keras.layers.AveragePooling2D(3, 2, padding="same", name="pool2")(x)
        x = conv(64, "conv3")(x)
        x = keras.layers.ReLU(name="relu3")(x)
        x = keras.layers.AveragePooling2D(3, 2, padding="same", name="pool3")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = dense(64, None, "ip1")(x)
        outputs = dense(num_classes, "softmax", "ip2")(x)
        super().__init__(
            inputs=inputs, outputs=outputs, num_classes=num_classes, name=name, **kwargs
        )

        # === Config ===
        self.image_size = image_size
        self.crop_size = crop_size
        self.augment = augment
        self.rotate = rotate
        self.weight_decay = weight_decay
        self.seed = seed

    def adapt_mean(self, data, batch_size=256, steps=None):
        """Sets the mean image from training images (before training).

        Args:
            data: training images `(N, image_size, image_size, 3)` in [0, 1]:
                an array, a `tf.data.Dataset` (batched or not, `(images,
                labels)` elements allowed) or an iterable of batches. They are
                centre-cropped like the model's input, then averaged.
            batch_size: slice size for arrays / unbatched datasets.
            steps: optional maximum number of batches to read.
        """
        from gan_zoo.layers.augmentation import iterate_image_batches

        crop = self.get_layer("crop")
        cropped = (
            keras.ops.convert_to_numpy(crop(batch.astype("float32")))
            for batch in iterate_image_batches(data, batch_size, steps)
        )
        self.get_layer("mean").adapt(cropped)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; warns if the mean image was never adapted."""
        mean = keras.ops.convert_to_numpy(self.get_layer("mean").mean)
        if not mean.any():
            warnings.warn(
                "CruzRoaCNN: the mean image is all zeros; call "
                "`model.adapt_mean(train_images)` before training.",
                stacklevel=2,
            )
        return super().fit(*args, **kwargs)

    def paper_optimizer(self):
        """AdaGrad, lr 1e-3, with Caffe's accumulator start (0) and epsilon."""
        return keras.optimizers.Adagrad(
            learning_rate=1e-3, initial_accumulator_value=0.0, epsilon=1e-16
        )

    def default_training(self):
        """Batch 128 (the papers); 30 epochs (chosen: the papers give none)."""
        return {"epochs": 30, "batch_size": 128}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "crop_size": self.crop_size,
                "augment": self.augment,
                "rotate": self.rotate,
                "weight_decay": self.weight_decay,
                "seed": self.seed,
            }
        )
        return config


register_model(
    "cruz_roa_cnn",
    CruzRoaCNN,
    config={
        "image_size": 50,
        "crop_size": 32,
        "num_classes": 2,
        "augment": True,
        "rotate": True,
        "weight_decay": 0.004,
        "seed": None,
    },
    citation=CITATION,
    description="3-layer CNN IDC patch classifier of Cruz-Roa et al. 2014 "
    "(Janowczyk & Madabhushi 2016 version), 32x32 centre crop.",
    task="classifier",
    modality="histology",
    capabilities=("classify",),
    inputs="RGB IDC patches [{image_size}, {image_size}, 3] in [0, 1] (a "
        "{crop_size}x{crop_size} centre crop is classified)",
    outputs="class probabilities [N, {num_classes}] (column 1: P(IDC))",
)
