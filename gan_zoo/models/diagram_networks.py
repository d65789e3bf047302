"""DiaGRAM's networks (Shams et al., "Deep Generative Breast Cancer
Screening and Diagnosis", MICCAI 2018).

The four networks of Fig. 1a and their pieces: G, the generator (one dense
and four transposed convolutions, z -> patch); F, the fully convolutional
feature extractor shared by patches and whole images; D, the discriminator
(one dense layer on F's patch features: class logits and the real/fake
logit); and E, the extended classifier (six residual blocks, global
pooling, dense logits) on F's whole-image maps, with F + E as one model of
[0, 1] images. The model that trains them is
`gan_zoo.models.diagram.DiaGRAM`.
"""

import keras

from gan_zoo.layers.batch_normalization import BatchNormalization

# F has four stride-2 layers and G four stride-2 transposed convolutions.
DOWNSAMPLING = 16
POOLINGS = ("average", "max")


def _leaky(name):
    return keras.layers.LeakyReLU(0.2, name=name)


def build_generator(patch_size, latent_dim, filters, kernel_size, momentum=0.99):
    """z in [-1, 1]^n -> patch in [-1, 1]: one dense, four transposed convs.

    dense -> (s/16)^2 x filters[0] -> BN -> ReLU, then transposed convs
    (stride 2) to filters[1], filters[2], filters[3] (each BN + ReLU) and
    finally to 1 channel with tanh: s/16 -> s/8 -> s/4 -> s/2 -> s.

    Args:
        patch_size: s, the side of the generated patches (a multiple of 16).
        latent_dim: size of z.
        filters: widths of the dense map and the first three transposed
            convolutions (four numbers).
        kernel_size: kernel of the transposed convolutions.
        momentum: momentum of the batch norms' moving statistics.

    Returns:
        The Keras model "generator", [B, latent_dim] -> [B, s, s, 1].
    """
    start = patch_size // DOWNSAMPLING
    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(start * start * filters[0], name="dense")(z)
    x = keras.layers.Reshape((start, start, filters[0]), name="to_map")(x)
    x = BatchNormalization(synchronized=True, momentum=momentum, name="dense_bn")(x)
    x = keras.layers.ReLU(name="dense_relu")(x)
    for index, width in enumerate([*filters[1:], 1], start=1):
        x = keras.layers.Conv2DTranspose(width, kernel_size, strides=2, padding="same",
                                         name=f"deconv{index}")(x)
        if index < 4:
            x = BatchNormalization(synchronized=True, momentum=momentum,
                                                name=f"deconv{index}_bn")(x)
            x = keras.layers.ReLU(name=f"deconv{index}_relu")(x)
    patches = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(z, patches, name="generator")


def build_features(filters, kernel_size):
    """F: four stride-2 convolutions + leaky ReLU, fully convolutional.

    No normalisation: F sees real patches, generated patches and whole
    images in separate calls, and batch statistics would differ between
    them (and between training and inference).

    Args:
        filters: widths of the four convolutions.
        kernel_size: kernel of the convolutions.

    Returns:
        The Keras model "features", [B, H, W, 1] images in [-1, 1] ->
        [B, H/16, W/16, filters[-1]] maps (any H, W).
    """
    images = keras.Input((None, None, 1), name="images")
    x = images
    for index, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(width, kernel_size, strides=2, padding="same", name=f"conv{index}")(x)
        x = _leaky(f"conv{index}_lrelu")(x)
    return keras.Model(images, x, name="features")


def build_discriminator(feature_shape, num_classes, use_gan):
    """D: ONE dense layer on F's patch features, m (+1) logits.

    Columns 0..m-1 are the class logits (softmax), column m (with the GAN)
    the real/fake logit (sigmoid).

    Args:
        feature_shape: (s/16, s/16, channels), the shape of F's features
            of one patch.
        num_classes: m, the number of classes.
        use_gan: whether to add the real/fake logit.

    Returns:
        The Keras model "discriminator", features -> [B, m (+1)] logits.
    """
    features = keras.Input(feature_shape, name="patch_features")
    x = keras.layers.Flatten(name="flatten")(features)
    logits = keras.layers.Dense(num_classes + int(use_gan), dtype="float32", name="dense")(x)
    return keras.Model(features, logits, name="discriminator")


def _residual_block(x, width, stride, name, momentum=0.99):
    """He et al. 2016 basic block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""
    def batch_norm(layer_name):
        return BatchNormalization(synchronized=True, momentum=momentum, name=layer_name)

    shortcut = x
    y = keras.layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = batch_norm(f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = batch_norm(f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != width:
        shortcut = keras.layers.Conv2D(width, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = batch_norm(f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu2")(y)


def build_extended(feature_channels, num_classes, filters, strides, pooling="average", momentum=0.99):
    """E: six residual blocks on F's whole-image maps, global pooling, dense logits.

    `pooling="max"` keeps the strongest local evidence (a small lesion in a
    large image), "average" (He et al.'s ResNet) the mean over the image.

    Args:
        feature_channels: channels of F's maps (F's last width).
        num_classes: m, the number of classes.
        filters: widths of the residual blocks.
        strides: strides (1 or 2) of the residual blocks.
        pooling: "average" or "max" (one of `POOLINGS`).
        momentum: momentum of the batch norms' moving statistics.

    Returns:
        The Keras model "extended", [B, h, w, feature_channels] maps ->
        [B, m] logits.
    """
    features = keras.Input((None, None, feature_channels), name="image_features")
    x = features
    for index, (width, stride) in enumerate(zip(filters, strides), start=1):
        x = _residual_block(x, width, stride, f"block{index}", momentum)
    pool = keras.layers.GlobalMaxPooling2D if pooling == "max" else keras.layers.GlobalAveragePooling2D
    x = pool(name="pool")(x)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(features, logits, name="extended")


def _path_model(features, extended, image_size, name):
    """[0, 1] whole images -> class probabilities through F and E."""
    images = keras.Input((image_size, image_size, 1), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_model_range")(images)
    logits = extended(features(x))
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
    return keras.Model(images, probabilities, name=name)
