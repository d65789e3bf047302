"""ResNet-18 transfer classifier of Chi, Fang & Wang (IDC vs non-IDC patches).

The backbone is keras-hub's `ResNetBackbone` built from the explicit
ResNet-18 configuration (He et al. 2016, table 1): a 7x7/2 convolution with
64 filters and a 3x3/2 max pool, then four stacks of two basic blocks (two
3x3 convolutions) with 64, 128, 256 and 512 filters and strides 1, 2, 2, 2,
batch norm, ReLU. With `backbone_weights="imagenet"` it loads keras-hub's
`resnet_18_imagenet` preset, which downloads; a local
`.weights.h5` file (saved from that backbone) or a preset folder works
offline; None initialises randomly and warns loudly. These are keras-hub's
port of the timm ResNet-18 ImageNet weights, not torchvision's file the
paper loaded: the same architecture and training data, other trained values.
"""

import keras

from gan_zoo.models.transfer import TransferClassifier, load_backbone
from gan_zoo.registry import register_model

CITATION = (
    "He, Zhang, Ren & Sun, 'Deep Residual Learning for Image Recognition', CVPR 2016 "
    "(arXiv 1512.03385); transfer protocol and perturbations of Chi, Fang & Wang, "
    "'Synthetic Data Augmentation using GAN for Improved Breast Cancer Classification' "
    "(UC Berkeley, 2018)."
)
IMAGENET_PRESET = "resnet_18_imagenet"
# ResNet-18 (He et al. 2016, table 1), in keras-hub's ResNetBackbone terms.
RESNET18 = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 128, 256, 512],
    "stackwise_num_blocks": [2, 2, 2, 2],
    "stackwise_num_strides": [1, 2, 2, 2],
    "block_type": "basic_block",
    "use_pre_activation": False,
}


def build_resnet18_backbone(input_size, weights=None):
    """(ResNet-18 backbone for `input_size` x `input_size` RGB, weights provenance).

    Args:
        input_size: side of the images the backbone sees.
        weights: None (random, warns), "imagenet" (downloads the keras-hub
            preset), a `.weights.h5` file or a local preset folder.
    """
    import keras_hub

    shape = (int(input_size), int(input_size), 3)

    def from_preset(handle):
        backbone = keras_hub.models.ResNetBackbone.from_preset(handle, image_shape=shape)
        found = {k: backbone.get_config().get(k) for k in RESNET18}
        if found != RESNET18:
            raise ValueError(f"preset {handle} is not a ResNet-18: {found}.")
        return backbone

    return load_backbone(
        weights,
        build_random=lambda: _random_backbone(input_size),
        build_imagenet=lambda: from_preset(IMAGENET_PRESET),
        load_preset_dir=from_preset,
        what="ResNet-18 backbone",
    )


@keras.saving.register_keras_serializable(package="gan_zoo")
class ResNet18Classifier(TransferClassifier):
    """ResNet-18 transfer classifier (Chi et al., section 4.1).

    The paper takes PyTorch's ImageNet ResNet-18, uses its convolutional
    layers as a fixed feature extractor and retrains a new final layer to
    predict IDC vs non-IDC, with rotation, horizontal and vertical flips and
    random noise as perturbations. Here: perturbations (training only) ->
    optional resize -> ImageNet mean/std normalisation -> ResNet-18 ->
    global average pooling -> new dense softmax head.

    Choices where the paper is silent (options): the input size (the paper
    does not say whether it resized its 50x50 patches; by default we do not,
    `resize_to=224` gives the ImageNet size at 20x the cost), the amount of
    each perturbation, and the optimizer: the PyTorch transfer-learning
    tutorial's SGD, learning rate 1e-3, momentum 0.9, the rate x 0.1 every
    7 epochs (its StepLR; `lr_step_epochs`, `lr_step_gamma`), 25 epochs;
    batch 64.

    Paper audit: docs/models/resnet18_classifier.md (paper item | paper | gan_zoo | option).

    Args:
        image_size: side of the input patches (50 for IDC).
        num_classes: classes of the new head (2: non-IDC / IDC).
        backbone_weights: "imagenet" (the paper; downloads), a local
            `.weights.h5` file of the backbone or a keras-hub preset folder,
            or None (random initialisation, with a `RandomWeightsWarning`).
        protocol: "frozen" (the paper: convolutional layers frozen, only
            the new head trained) or "full" (fine-tune every layer).
        resize_to: side the patches are resized to before the backbone, or
            None to keep `image_size`.
        rotation_degrees: random rotations in [-r, r] degrees (0: off).
        flips: random horizontal and vertical flips.
        noise_std: std of the Gaussian noise added to [0, 1] images (0: off).
        dropout: dropout before the head (0 in the paper's setting).
        learning_rate: SGD learning rate.
        lr_step_epochs: the rate is multiplied by `lr_step_gamma` every
            this many epochs (7, the tutorial's StepLR; None: constant).
        lr_step_gamma: the factor of each step (0.1).
        seed: seed of the perturbation layers.
        weights_used: provenance recorded by a saved model (set by
            `from_config`; leave it None).
        **kwargs: `keras.Model` arguments (`name`).

    Example:

    >>> model = ResNet18Classifier(backbone_weights="imagenet")   # online
    >>> model = ResNet18Classifier(backbone_weights="resnet18.weights.h5")  # offline
    >>> model.compile()
    >>> p_idc = model.predict(images)[:, 1]
    """

    def __init__(
        self,
        image_size=50,
        num_classes=2,
        backbone_weights="imagenet",
        protocol="frozen",
        resize_to=None,
        rotation_degrees=180.0,
        flips=True,
        noise_std=0.02,
        dropout=0.0,
        learning_rate=1e-3,
        lr_step_epochs=7,
        lr_step_gamma=0.1,
        seed=None,
        weights_used=None,
        name="resnet18_classifier",
        **kwargs,
    ):
        if lr_step_epochs is not None and int(lr_step_epochs) < 1:
            raise ValueError(f"lr_step_epochs must be a positive integer or None, got {lr_step_epochs!r}.")
        if not 0.0 < float(lr_step_gamma) <= 1.0:
            raise ValueError(f"lr_step_gamma must be in (0, 1], got {lr_step_gamma!r}.")
        input_size = int(resize_to or image_size)
        if input_size < 32:
            raise ValueError(
                f"ResNet-18 divides its input by 32: image_size (or resize_to) must be at "
                f"least 32, got {input_size}."
            )
        if weights_used is not None:
            # A saved model: the weights come from its file, never a download.
            backbone = _random_backbone(input_size)
        else:
            backbone, weights_used = build_resnet18_backbone(input_size, backbone_weights)
        super().__init__(
            backbone=backbone, image_size=image_size, num_classes=num_classes,
            protocol=protocol, weights_used=weights_used, normalization="torch",
            resize_to=resize_to, rotation_degrees=rotation_degrees, flips=flips,
            noise_std=noise_std, dropout=dropout, learning_rate=learning_rate, seed=seed,
            name=name, **kwargs,
        )
        self.lr_step_epochs = None if lr_step_epochs is None else int(lr_step_epochs)
        self.lr_step_gamma = float(lr_step_gamma)

    def default_training(self):
        """25 epochs at batch 64 (our choice; the paper gives neither)."""
        return {"epochs": 25, "batch_size": 64}

    def paper_optimizer(self, steps_per_epoch=None):
        """SGD, momentum 0.9, the rate x `lr_step_gamma` every `lr_step_epochs` epochs.

        The step follows the optimizer's own iteration count, so a restored
        optimizer continues it. Without `steps_per_epoch` (or with
        `lr_step_epochs=None`) the rate is constant.
        """
        rate = self.learning_rate
        if self.lr_step_epochs and steps_per_epoch:
            rate = keras.optimizers.schedules.ExponentialDecay(
                rate, decay_steps=self.lr_step_epochs * int(steps_per_epoch),
                decay_rate=self.lr_step_gamma, staircase=True)
        return keras.optimizers.SGD(rate, momentum=0.9)

    def get_config(self):
        config = super().get_config()
        config.update({"lr_step_epochs": self.lr_step_epochs, "lr_step_gamma": self.lr_step_gamma})
        # The weights travel in the saved file; reloading must not download.
        config.update({"backbone_weights": None})
        return config


def _random_backbone(input_size):
    import keras_hub  # imported here: only ResNet-18 users pay for it

    return keras_hub.models.ResNetBackbone(
        **RESNET18, image_shape=(input_size, input_size, 3), name="resnet18"
    )


register_model(
    "resnet18_classifier",
    ResNet18Classifier,
    config={
        "image_size": 50,
        "num_classes": 2,
        "backbone_weights": "imagenet",
        "protocol": "frozen",
        "resize_to": None,
        "rotation_degrees": 180.0,
        "flips": True,
        "noise_std": 0.02,
        "dropout": 0.0,
        "learning_rate": 1e-3,
        "lr_step_epochs": 7,
        "lr_step_gamma": 0.1,
        "seed": None,
    },
    citation=CITATION,
    description="ResNet-18 (keras-hub) ImageNet transfer classifier of Chi et al.: frozen "
    "convolutional layers + new head, rotation/flip/noise perturbations",
    task="classifier",
    modality="histology",
    capabilities=("classify",),
    inputs="RGB patches [{image_size}, {image_size}, 3] in [0, 1]",
    outputs="class probabilities [N, {num_classes}] (column 1: P(IDC))",
)
