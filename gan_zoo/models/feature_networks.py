"""Feature networks for ciGAN's feature (perceptual) loss.

ciGAN (Wu et al. 2018) compares real and generated patches through VGG-19
(Simonyan & Zisserman 2015), pre-trained on ImageNet, at the `pool1`,
`pool2` and `pool3` layers. Every network here maps grayscale patches in
[0, 1] (`[B, H, W, 1]`) to that list of three pooled feature maps, so the
loss does not care which one it gets:

- `vgg19_features(weights)`: the paper's network. `weights="imagenet"`
  downloads the Keras ImageNet weights (the real loading path); a path to
  a local copy of `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`
  works offline; `weights=None` gives random weights (tests, benchmarks).
- A documented domain substitute for machines that cannot get the ImageNet
  weights (`build_domain_classifier`, trained by
  `gan_zoo.training.domain_classifier.train_domain_classifier`): a small
  VGG-style classifier of lesion vs lesion-free patches, trained on the
  TRAINING patients only, whose three pooled feature maps serve instead. It
  is a different feature space from the paper's; a run that uses it says so
  in its results (`describe_feature_network`).

`load_feature_network(spec)` resolves what a ciGAN config names
(`"imagenet"`, `"random"`, a `.h5` VGG-19 weights file or a `.keras` domain
classifier) and returns the network with a description for the results. It
never falls back to random weights on its own.
"""

import hashlib
import pathlib
import warnings

import keras

# The paper's layers (Keras names) and their equivalents in the substitute.
VGG19_LAYERS = ("block1_pool", "block2_pool", "block3_pool")
DOMAIN_LAYERS = ("pool1", "pool2", "pool3")
# Keras ImageNet "caffe" preprocessing: BGR means of the training images.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
FEATURE_SPECS = ("imagenet", "random")
VGG19_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


@keras.saving.register_keras_serializable(package="gan_zoo")
class CaffeInput(keras.layers.Layer):
    """Images in [0, 1] -> the input Keras' ImageNet VGG and ResNet-50 expect.

    Grayscale images are repeated to three channels; RGB images are
    reordered to BGR. Pixels are scaled to [0, 255] and the ImageNet channel
    means are subtracted (`keras.applications.vgg19.preprocess_input`,
    "caffe" mode), as a layer so it lives inside saved models.

    Args:
        **kwargs: base layer arguments.
    """

    def call(self, images):
        channels = images.shape[-1]
        if channels == 1:
            images = keras.ops.concatenate([images] * 3, axis=-1)
        else:
            images = images[..., ::-1]  # RGB -> BGR
        mean = keras.ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=images.dtype)
        return images * 255.0 - mean

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


def vgg19_features(weights="imagenet", channels=1, image_size=None):
    """VGG-19 (ImageNet) feature maps at pool1, pool2 and pool3.

    Args:
        weights: "imagenet" (download through `keras.applications`), a path
            to the Keras no-top weights file, or None (random weights).
        channels: channels of the input images (1 grayscale, 3 RGB).
        image_size: side of the square inputs, or None for any size (Keras'
            VGG-19 takes fixed sizes from 32 up; smaller ones stay dynamic).

    Returns:
        A frozen `keras.Model`: images [B, H, W, channels] in [0, 1] ->
        [pool1, pool2, pool3]. Only the layers up to pool3 run.
    """
    side = image_size if image_size is not None and image_size >= 32 else None
    images = keras.Input((side, side, channels), name="images")
    vgg = keras.applications.VGG19(include_top=False, weights=weights, input_shape=(side, side, 3))
    pools = [vgg.get_layer(n).output for n in VGG19_LAYERS]
    truncated = keras.Model(vgg.input, pools, name="vgg19_to_pool3")
    outputs = truncated(CaffeInput(name="caffe_input")(images))
    network = keras.Model(images, outputs, name="vgg19_features")
    network.trainable = False
    return network


def build_domain_classifier(patch_size, widths=(32, 64, 128), seed=0):
    """The substitute's classifier: VGG-style blocks on grayscale patches.

    Three blocks of two 3x3 conv + ReLU and a 2x2 max pool (`pool1`,
    `pool2`, `pool3`, VGG-19's first three pools at reduced widths), then
    global average pooling and a dense softmax over lesion-free (0) /
    lesion (1). Inputs are grayscale patches in [0, 1].

    Args:
        patch_size: side of the square patches.
        widths: filters of the three blocks.
        seed: seed of the initial weights.
    """
    if len(widths) != 3 or min(int(w) for w in widths) < 1:
        raise ValueError(f"widths must be three positive integers, got {widths!r}.")
    init = keras.initializers.GlorotUniform(seed=seed)
    images = keras.Input((patch_size, patch_size, 1), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_signed")(images)
    for block, filters in enumerate(widths, start=1):
        for conv in (1, 2):
            x = keras.layers.Conv2D(
                int(filters), 3, padding="same", activation="relu", kernel_initializer=init,
                name=f"block{block}_conv{conv}",
            )(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{block}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(2, activation="softmax", dtype="float32", kernel_initializer=init,
                                 name="lesion")(x)
    return keras.Model(images, outputs, name="domain_classifier")


def domain_features(classifier):
    """The pool1..pool3 maps of a domain classifier, as a frozen network."""
    missing = [n for n in DOMAIN_LAYERS if n not in [layer.name for layer in classifier.layers]]
    if missing:
        raise ValueError(
            f"{classifier.name} has no layers {missing}; a domain feature network must be "
            "built by build_domain_classifier."
        )
    network = keras.Model(
        classifier.input, [classifier.get_layer(n).output for n in DOMAIN_LAYERS],
        name="domain_features",
    )
    network.trainable = False
    return network


def load_feature_network(spec, image_size=None):
    """The feature network a ciGAN config names, and what it is.

    Args:
        spec: "imagenet" (VGG-19, Keras' ImageNet weights: downloads once),
            "random" (VGG-19 with random weights: tests and benchmarks only,
            with a warning), a path to VGG-19 no-top weights (`.h5`), or a
            path to a domain classifier saved as `.keras`.
        image_size: the patch side VGG-19 is built for (None: any).

    Returns:
        (network, description): the frozen network (grayscale [0, 1] ->
        three feature maps) and a dict for the results: `kind`
        ("vgg19_imagenet", "vgg19_random" or "domain_classifier"),
        `source`, `layers`, and `sha256` of a file.

    Raises:
        RuntimeError: the ImageNet weights cannot be downloaded (one line
            saying what to pass instead).
        FileNotFoundError / ValueError: a path that is missing or of an
            unknown kind.
    """
    if spec == "imagenet":
        try:
            network = vgg19_features("imagenet", image_size=image_size)
        except Exception as error:  # noqa: BLE001 - keras raises a bare Exception offline
            raise RuntimeError(
                f"The VGG-19 ImageNet weights could not be downloaded ({_first_line(error)}); "
                f"pass feature_weights=<path to {VGG19_WEIGHTS_FILE}> or a domain feature "
                "network (.keras from gan_zoo.training.domain_classifier.train_domain_classifier)."
            ) from None
        return network, _description("vgg19_imagenet", "keras.applications ImageNet", VGG19_LAYERS)
    if spec == "random":
        warnings.warn(
            "ciGAN feature loss with RANDOM VGG-19 weights: for tests and benchmarks only, "
            "never for a reported result.", stacklevel=2,
        )
        network = vgg19_features(None, image_size=image_size)
        return network, _description("vgg19_random", "random init", VGG19_LAYERS)
    path = pathlib.Path(str(spec)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"feature_weights: {spec!r} is neither 'imagenet', 'random' nor an existing file."
        )
    digest = _sha256(path)
    if path.name.endswith(".keras"):
        classifier = keras.saving.load_model(path, compile=False)
        return domain_features(classifier), _description(
            "domain_classifier", str(path), DOMAIN_LAYERS, digest)
    if path.suffix == ".h5":
        network = vgg19_features(str(path), image_size=image_size)
        return network, _description("vgg19_imagenet", str(path), VGG19_LAYERS, digest)
    raise ValueError(
        f"feature_weights: {path} must be VGG-19 no-top weights (.h5) or a domain classifier (.keras)."
    )


def describe_feature_network(description):
    """One line for results: which network the feature loss used."""
    kind = description["kind"]
    text = {
        "vgg19_imagenet": "VGG-19 ImageNet weights (the paper's)",
        "vgg19_random": "VGG-19 with RANDOM weights (not a valid feature loss)",
        "domain_classifier": "domain substitute: VGG-style lesion-vs-normal classifier trained "
                             "on the training patients (ImageNet VGG-19 weights unavailable)",
    }[kind]
    return f"{text}; layers {', '.join(description['layers'])}; from {description['source']}"


def _description(kind, source, layers, sha256=None):
    out = {"kind": kind, "source": source, "layers": list(layers)}
    if sha256:
        out["sha256"] = sha256
    return out


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
