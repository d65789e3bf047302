"""Shared pieces of the zoo's ImageNet-pretrained transfer classifiers.

A transfer classifier is a `ZooClassifier` (images in [0, 1] in,
probabilities out) built as

    images -> perturbations (training only) -> optional resize
           -> ImageNet normalisation -> backbone -> global average pooling
           -> dropout -> new dense softmax head

This module holds what every such model needs, whatever its backbone
(ResNet-18 from keras-hub for Chi et al., ResNet-50 from keras.applications
for ciGAN):

- `load_backbone`: weights from ImageNet (the real download path: a
  keras-hub preset or `keras.applications(weights="imagenet")`), from a local
  file, or random initialisation with a loud `RandomWeightsWarning`; it
  returns the backbone and a provenance string (`weights_used`) that results
  must report.
- `set_protocol`: the classic transfer protocol (convolutional layers frozen,
  only the new head trained; frozen batch norm keeps its ImageNet
  statistics) or full fine-tuning.
- `ImageNetNormalization`: the input transform the pretrained weights expect
  ("torch": mean/std, "caffe": BGR mean subtraction, "tf": [-1, 1]).
- `perturbation_layers`: Chi et al.'s perturbations (rotation, horizontal and
  vertical flips, random noise) as Keras preprocessing layers inside the
  model, so they run in `fit` and never in `predict` or exported signatures.
- `TransferClassifier`: the base class assembling the graph above and
  carrying these options in its config.

Offline machines: `"imagenet"` fails with a one-line error saying how to pass
a local file instead. A `.keras` file reloads without any download (its
config records `weights_used` and the weights come from the file).
"""

import logging
import os
import pathlib
import warnings

import keras
from keras import ops

from gan_zoo.layers.batch_normalization import fuse_batch_normalization
from gan_zoo.models.classifier import ZooClassifier
from gan_zoo.weights import load_weights_quietly

logger = logging.getLogger(__name__)

PROTOCOLS = ("frozen", "full")
NORMALIZATIONS = ("torch", "caffe", "tf")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# keras.applications' "caffe" mode: BGR, 0-255, ImageNet mean subtracted.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class RandomWeightsWarning(UserWarning):
    """A backbone that the paper used pretrained was randomly initialised."""


def warn_random_weights(what):
    """Says loudly that `what` has random weights where ImageNet weights were meant."""
    message = (
        f"{what}: RANDOM INITIALISATION, not ImageNet weights. The paper fine-tunes "
        "ImageNet-pretrained weights; results of this model are NOT comparable with it. "
        "Pass the ImageNet weights (online: 'imagenet'; offline: a local .weights.h5 file) "
        "to reproduce it."
    )
    logger.warning(message)
    warnings.warn(message, RandomWeightsWarning, stacklevel=3)
    return message


def weights_kind(weights, option="backbone_weights"):
    """'imagenet', 'file', 'preset_dir' or 'random' for a weights option; checks paths.

    Args:
        weights: None (random), "imagenet", a `.weights.h5` / `.h5` file or
            (for keras-hub backbones) a local preset directory.
        option: the option's name, for errors.
    """
    if weights is None:
        return "random"
    if isinstance(weights, str) and weights == "imagenet":
        return "imagenet"
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{option} must be None, 'imagenet' or a path, got {weights!r}.")
    path = pathlib.Path(weights).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{option}: {path} is a folder but not a keras-hub preset (no config.json).")
        return "preset_dir"
    if not path.is_file():
        raise FileNotFoundError(f"{option}: no such weights file: {path}.")
    if not path.name.endswith(".h5"):
        raise ValueError(f"{option}: {path} is not a Keras weights file (.weights.h5 or .h5).")
    return "file"


def load_backbone(weights, *, build_random, build_imagenet, what, load_file=None,
                  load_preset_dir=None, option="backbone_weights"):
    """Builds a backbone with the requested weights.

    Args:
        weights: None, "imagenet", a weights file or a preset folder
            (see `weights_kind`).
        build_random: `() -> backbone` with random initialisation (must make
            no network access).
        build_imagenet: `() -> backbone` with ImageNet weights (the real
            download path, e.g. a keras-hub preset).
        what: the backbone's name in messages (e.g. "ResNet-18").
        load_file: `(path) -> backbone` for a weights file (default: build
            randomly, then `load_weights(path)`).
        load_preset_dir: `(path) -> backbone` for a local preset folder.
        option: the option's name, for errors.

    Returns:
        `(backbone, weights_used)`, `weights_used` being "imagenet:<source>",
        "file:<path>" or "random".
    """
    kind = weights_kind(weights, option)
    if kind == "random":
        warn_random_weights(what)
        return build_random(), "random"
    if kind == "imagenet":
        try:
            backbone = build_imagenet()
        except Exception as error:  # noqa: BLE001 - any download failure, one line
            raise RuntimeError(
                f"{option}='imagenet': could not load the ImageNet weights of {what} "
                f"({type(error).__name__}: {str(error).splitlines()[0][:200]}). Offline? Save "
                f"them on a connected machine (backbone.save_weights('x.weights.h5')) and pass "
                f"{option}='x.weights.h5', or {option}=None for random initialisation."
            ) from None
        return backbone, "imagenet"
    path = pathlib.Path(weights).expanduser()
    if kind == "preset_dir":
        if load_preset_dir is None:
            raise ValueError(f"{option}: {what} cannot load a preset folder; pass a weights file.")
        return load_preset_dir(str(path)), f"preset:{path}"
    if load_file is not None:
        return load_file(str(path)), f"file:{path}"
    backbone = build_random()
    try:
        load_weights_quietly(backbone, path)
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"{option}: {path} does not fit the {what} backbone ({str(error).splitlines()[0][:200]})."
        ) from None
    return backbone, f"file:{path}"


def set_protocol(backbone, protocol, option="protocol"):
    """Freezes the backbone ("frozen") or leaves every layer trainable ("full").

    Frozen: no weight of the backbone is trained and its batch-norm layers
    run in inference mode with their stored (ImageNet) statistics, the Keras
    convention for transfer learning. (The PyTorch tutorial the paper
    follows keeps batch norm in training mode; with frozen weights that only
    moves the running statistics.)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"{option} must be one of {PROTOCOLS}, got {protocol!r}.")
    backbone.trainable = protocol == "full"
    return backbone


@keras.saving.register_keras_serializable(package="gan_zoo")
class ImageNetNormalization(keras.layers.Layer):
    """Maps images in [0, 1] to the input range of ImageNet-pretrained weights.

    Args:
        mode: "torch" ((x - mean) / std with the ImageNet mean and std; the
            torchvision and timm weights, keras-hub's ResNet presets),
            "caffe" (RGB -> BGR, x 255, ImageNet mean subtracted;
            keras.applications ResNet50 / VGG) or "tf" (2x - 1; Inception).
        **kwargs: base layer arguments.
    """

    def __init__(self, mode="torch", **kwargs):
        super().__init__(**kwargs)
        if mode not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {mode!r}.")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "torch":
            mean = ops.convert_to_tensor(IMAGENET_MEAN, self.compute_dtype)
            std = ops.convert_to_tensor(IMAGENET_STD, self.compute_dtype)
            return (x - mean) / std
        if self.mode == "caffe":
            mean = ops.convert_to_tensor(CAFFE_MEAN_BGR, self.compute_dtype)
            return ops.flip(x, axis=-1) * 255.0 - mean
        return x * 2.0 - 1.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config


def perturbation_layers(rotation_degrees=180.0, flips=True, noise_std=0.02, seed=None):
    """Chi et al.'s perturbations as Keras layers (active while training only).

    The paper names rotation, horizontal and vertical flips and random noise
    without their amounts; the defaults are our choices.

    Args:
        rotation_degrees: rotations uniform in [-r, r] degrees, the corners
            filled by reflection (0: none).
        flips: independent horizontal and vertical flips (two coins; Keras'
            "horizontal_and_vertical" mode draws one coin for both).
        noise_std: std of additive Gaussian noise on the [0, 1] image
            (0: none).
        seed: seed of the layers (None: unseeded).

    Returns:
        A list of layers to apply in order.
    """
    if rotation_degrees < 0 or rotation_degrees > 180:
        raise ValueError(f"rotation_degrees must be in [0, 180], got {rotation_degrees}.")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}.")
    offset = lambda k: None if seed is None else int(seed) + k  # noqa: E731
    layers = []
    if flips:
        layers.append(keras.layers.RandomFlip("horizontal", seed=offset(0), name="flip_horizontal"))
        layers.append(keras.layers.RandomFlip("vertical", seed=offset(1), name="flip_vertical"))
    if rotation_degrees:
        layers.append(keras.layers.RandomRotation(
            rotation_degrees / 360.0, fill_mode="reflect", seed=offset(2), name="rotation"
        ))
    if noise_std:
        layers.append(keras.layers.GaussianNoise(noise_std, seed=offset(3), name="noise"))
    return layers


@keras.saving.register_keras_serializable(package="gan_zoo")
class TransferClassifier(ZooClassifier):
    """Base of the ImageNet-transfer classifiers: perturb, normalise, backbone, new head.

    Subclasses build their backbone (usually with `load_backbone`), then call
    `super().__init__(backbone=..., ...)`, which assembles the functional
    graph, applies the protocol, and records every option for `get_config`.
    Subclasses add their own options to `get_config`, and name the
    backbone's constructor arguments their way.

    Args:
        backbone: a built `keras.Model` mapping normalised images to 4-D
            feature maps.
        image_size: side of the square input images (before `resize_to`).
        num_classes: classes of the new head.
        protocol: "frozen" (only the head trains) or "full" (fine-tune all).
        weights_used: provenance of the backbone weights ("imagenet",
            "file:...", "random").
        normalization: `ImageNetNormalization` mode of the weights.
        resize_to: side the images are resized to (bilinear) before the
            backbone, or None.
        rotation_degrees, flips, noise_std: see `perturbation_layers`.
        dropout: dropout before the head (0: none).
        learning_rate: learning rate of `paper_optimizer`.
        seed: seed of the perturbation and dropout layers.
        **kwargs: `keras.Model` arguments (`name`).
    """

    def __init__(
        self,
        *,
        backbone,
        image_size,
        num_classes=2,
        protocol="frozen",
        weights_used="random",
        normalization="torch",
        resize_to=None,
        rotation_degrees=180.0,
        flips=True,
        noise_std=0.02,
        dropout=0.0,
        learning_rate=1e-3,
        seed=None,
        **kwargs,
    ):
        if int(image_size) < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}.")
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        if resize_to is not None and int(resize_to) < 8:
            raise ValueError(f"resize_to must be None or at least 8, got {resize_to}.")
        if not 0 <= float(dropout) < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        if float(learning_rate) <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
        # Fused half-precision batch norm: the same maths, bfloat16 that pays.
        fuse_batch_normalization(backbone)
        set_protocol(backbone, protocol)
        inputs = keras.Input((int(image_size), int(image_size), 3), name="images")
        x = inputs
        for layer in perturbation_layers(rotation_degrees, flips, noise_std, seed):
            x = layer(x)
        if resize_to is not None:
            x = keras.layers.Resizing(int(resize_to), int(resize_to), name="resize")(x)
        x = ImageNetNormalization(normalization, name="imagenet_normalization")(x)
        # training=False keeps a frozen backbone's batch norm in inference
        # mode even in fit (the Keras transfer-learning convention).
        features = backbone(x, training=False) if protocol == "frozen" else backbone(x)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(features)
        if dropout:
            x = keras.layers.Dropout(float(dropout), seed=seed, name="dropout")(x)
        outputs = keras.layers.Dense(
            int(num_classes), activation="softmax", dtype="float32", name="head"
        )(x)
        super().__init__(inputs=inputs, outputs=outputs, num_classes=int(num_classes), **kwargs)
        self.backbone = backbone
        self.image_size = int(image_size)
        self.protocol = protocol
        self.weights_used = weights_used
        self.normalization = normalization
        self.resize_to = None if resize_to is None else int(resize_to)
        self.rotation_degrees = float(rotation_degrees)
        self.flips = bool(flips)
        self.noise_std = float(noise_std)
        self.dropout = float(dropout)
        self.learning_rate = float(learning_rate)
        self.seed = seed

    @property
    def pretrained(self):
        """Whether the backbone holds pretrained (non-random) weights."""
        return self.weights_used != "random"

    def paper_optimizer(self):
        """SGD with momentum 0.9 (the PyTorch transfer-learning tutorial's)."""
        return keras.optimizers.SGD(self.learning_rate, momentum=0.9)

    def train_step_flops(self, network_flops):
        """Conv/dense FLOPs per example of one train step (`benchmarks/throughput.py`).

        `network_flops(net) -> (forward, first layer)`. Full fine-tuning:
        forward, weight gradients and input gradients of every layer but the
        first. Frozen: forward, then only the head's weight gradients.
        """
        forward, first = network_flops(self)
        if self.protocol == "full":
            return forward + forward + (forward - first)
        head = self.get_layer("head")
        return forward + 2 * int(head.kernel.shape[0]) * int(head.kernel.shape[1])

    def get_config(self):
        config = super().get_config()
        config.update({
            "image_size": self.image_size,
            "protocol": self.protocol,
            "weights_used": self.weights_used,
            "resize_to": self.resize_to,
            "rotation_degrees": self.rotation_degrees,
            "flips": self.flips,
            "noise_std": self.noise_std,
            "dropout": self.dropout,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
        })
        return config
