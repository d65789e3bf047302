"""Feature extractors for the generative metrics: Inception-V3 and any Keras layer.

An extractor maps float32 images in [0, 1] (`[N, H, W, C]`, C = 1 or 3) to
float32 features `[N, D]`. Each has an `id` that names the network, the
layer, the preprocessing mode, the input size and the weights' sha256;
features (and cached reference statistics) are comparable only between equal
ids (`gan_zoo.metrics.scores`).

Which Inception? FID was defined (Heusel et al. 2017) with the 2015 TensorFlow
Inception graph that TTUR and TF-GAN ship. `keras.applications.InceptionV3`
with `weights="imagenet"` is a different set of ImageNet weights (and its
pool_3 features differ), so FIDs computed here are NOT comparable with
papers' numbers unless those papers used the same Keras weights; compare
zoo models with each other, at equal sample sizes, with one extractor id.

Resizing matters as much as the weights (Parmar, Zhang & Zhu 2022, "On
aliased resizing and surprising subtleties in GAN evaluation", CVPR): two
documented modes are offered, see `inception_preprocess`.

TensorFlow and Keras are imported lazily, so importing this module is cheap.

Example:

    extractor = InceptionV3Extractor(weights="imagenet", mode="clean")
    features = extractor(images)          # [N, 2048] float32
    extractor.id                          # "inception_v3-pool3/clean/299x299/sha256-..."

    classifier = gan_zoo.load_model("runs/small_cnn/model.keras")
    domain = KerasLayerExtractor(classifier, "gap")   # [N, 256]
"""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np

__all__ = [
    "FeatureExtractor",
    "InceptionV3Extractor",
    "KerasLayerExtractor",
    "INCEPTION_MODES",
    "file_sha256",
    "inception_preprocess",
    "weights_sha256",
]

INCEPTION_MODES = ("legacy", "clean")
"""Preprocessing modes of `InceptionV3Extractor`."""

# keras.applications.InceptionV3 refuses inputs smaller than this.
_INCEPTION_MIN_SIZE = 75


def file_sha256(path, chunk_size=1 << 20):
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(model):
    """Hex sha256 over a Keras model's weight values (shape, dtype and bytes).

    Variables are taken in `model.weights` order, which is fixed by the
    architecture; names are left out since Keras makes them unique per
    session ("conv2d_3"), so one network rebuilt in another session hashes
    the same. Batch-norm statistics are included: they change the features.
    """
    import keras

    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"{value.shape}|{value.dtype.str}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _as_images(images):
    """`images` as a float32 `[N, H, W, C]` tensor with C in (1, 3)."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(
            f"images must be floats in [0, 1], got dtype {images.dtype.name} "
            "(divide uint8 images by 255)."
        )
    images = tf.cast(images, tf.float32)
    if images.shape.rank != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}.")
    if images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[-1]}.")
    return images


def to_rgb(images):
    """Replicates a grayscale channel 3 times; RGB images pass unchanged.

    ImageNet networks expect three channels; a gray image shown as R = G = B
    is what they saw for gray photographs.
    """
    import tensorflow as tf

    if images.shape[-1] == 1:
        return tf.tile(images, [1, 1, 1, 3])
    return images


def inception_preprocess(images, mode="legacy", size=299):
    """Resizes [0, 1] images to `size` and scales them to [-1, 1] for Inception.

    Modes:
    - `legacy` (TTUR / TF-GAN style): bilinear resize without antialiasing,
      with TensorFlow 1's `ResizeBilinear` sampling grid (no half-pixel
      centres, no corner alignment), which is what the graphs those tools
      used did; then `x * 2 - 1`, Keras' InceptionV3 input scaling (TF-GAN
      used `(255 x - 128) / 128`, 0.4% apart). Downsampling this way aliases.
    - `clean` (Parmar et al. 2022): quantise to uint8 first (so generated
      images are treated like stored real ones: PNG or JPEG files are
      uint8), resize with an antialiased bicubic filter in float, clip to
      [0, 255] (bicubic overshoots), then scale to [-1, 1]. clean-fid uses
      PIL's bicubic; TensorFlow's antialiased bicubic follows the same
      principle but is not bit-identical to it.

    Grayscale images are replicated to 3 channels first.

    Args:
        images: float32 `[N, H, W, C]` in [0, 1], C = 1 or 3.
        mode: "legacy" or "clean".
        size: side of the square output.

    Returns:
        float32 `[N, size, size, 3]` tensor in [-1, 1].
    """
    import tensorflow as tf

    if mode not in INCEPTION_MODES:
        raise ValueError(f"mode must be one of {INCEPTION_MODES}, got {mode!r}.")
    images = to_rgb(_as_images(images))
    if mode == "legacy":
        resized = tf.raw_ops.ResizeBilinear(
            images=images, size=[size, size], align_corners=False, half_pixel_centers=False
        )
        return resized * 2.0 - 1.0
    quantised = tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0)
    resized = tf.image.resize(quantised, (size, size), method="bicubic", antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0) / 127.5 - 1.0


def _compute_dtype(network):
    """The lowest-precision compute dtype among the network's layers."""
    dtypes = {getattr(layer, "compute_dtype", None) for layer in network.layers} - {None}
    for low in ("float16", "bfloat16"):
        if low in dtypes:
            return low
    return "float32"


class FeatureExtractor:
    """Base class: a Keras network and its preprocessing.

    Subclasses set the attributes below and implement `preprocess`; calling
    the extractor runs both in one `tf.function`.

    Args:
        network: `keras.Model` from preprocessed images to `[N, D]` features.
        name: network and layer, e.g. "inception_v3-pool3".
        mode: preprocessing mode, part of the id.
        input_size: `(height, width)` the network sees, or None when it takes
            any size.
        weights_sha256: sha256 of the weights file, or over the weight values
            of an in-memory network.
        weights_source: where the weights came from (e.g. "imagenet", a path).
        random: True for untrained (random) weights: the id then says
            "RANDOM-WEIGHTS" and scores say they are for tests only.
    """

    def __init__(
        self, network, *, name, mode, input_size, weights_sha256, weights_source, random=False
    ):
        self.network = network
        self.name = name
        self.mode = mode
        self.input_size = None if input_size is None else tuple(int(s) for s in input_size)
        self.weights_sha256 = weights_sha256
        self.weights_source = weights_source
        self.random = bool(random)
        self.feature_dim = int(network.output_shape[-1])
        # A model built under a mixed policy computes in (b)float16, which
        # changes the features: the id says so.
        self.compute_dtype = _compute_dtype(network)
        self._functions = {}

    @property
    def id(self):
        """`name/mode/HxW/weights`: equal ids give comparable features."""
        size = "any" if self.input_size is None else "x".join(map(str, self.input_size))
        weights = f"sha256-{self.weights_sha256[:16]}"
        if self.random:
            weights = f"RANDOM-WEIGHTS-{weights}"
        mode = self.mode
        if self.compute_dtype != "float32":
            mode = f"{mode}-{self.compute_dtype}"
        return f"{self.name}/{mode}/{size}/{weights}"

    def provenance(self):
        """A JSON-serialisable dict describing the extractor."""
        return {
            "id": self.id,
            "name": self.name,
            "mode": self.mode,
            "input_size": list(self.input_size) if self.input_size else None,
            "feature_dim": self.feature_dim,
            "weights": self.weights_source,
            "weights_sha256": "random" if self.random else self.weights_sha256,
            "random": self.random,
            "compute_dtype": self.compute_dtype,
        }

    def preprocess(self, images):
        raise NotImplementedError

    def __call__(self, images):
        """Features of float32 `[N, H, W, C]` images in [0, 1], as float32 numpy."""
        import tensorflow as tf

        images = _as_images(images)
        key = tuple(images.shape[1:])
        if key not in self._functions:
            # One trace per image shape, any batch size (so the smaller last
            # batch does not retrace); inference mode: batch norm uses its
            # moving statistics, dropout is off.
            self._functions[key] = tf.function(
                lambda x: self.network(self.preprocess(x), training=False),
                input_signature=[tf.TensorSpec((None, *key), tf.float32)],
            )
        features = self._functions[key](images)
        return np.asarray(features, dtype=np.float32)

    def __repr__(self):
        return f"{type(self).__name__}(id={self.id!r})"


class InceptionV3Extractor(FeatureExtractor):
    """Inception-V3 pool_3 features (2048-d), the network of FID and KID.

    Uses `keras.applications.InceptionV3(include_top=False, pooling="avg")`:
    the global average pool of the last mixed block, "pool_3" in the TTUR
    graph. Read the module docstring on weights: Keras' ImageNet weights are
    not TTUR's FID graph, so absolute values do not match papers' FIDs.

    Args:
        weights: "imagenet" (downloaded by Keras on first use; needs the
            internet once), a local weights file (`.h5` / `.weights.h5`) of the
            same architecture without top, or None for random weights, which
            needs `allow_random=True` and is for tests only.
        mode: "legacy" or "clean" (see `inception_preprocess`).
        input_size: side of the network input; 299 is the standard, smaller
            sizes (>= 75) only make tests faster.
        allow_random: permit `weights=None`.
        random_seed: seed of the random weights (`weights=None`), so that
            two runs score with the same network and the same id. Building
            them sets the global Keras / NumPy / TensorFlow seeds to it.

    Example:

    >>> extractor = InceptionV3Extractor("weights/inception_v3_notop.h5", mode="clean")
    >>> extractor(images).shape
    (16, 2048)
    """

    def __init__(self, weights="imagenet", mode="legacy", input_size=299, allow_random=False,
                 random_seed=0):
        import keras

        if mode not in INCEPTION_MODES:
            raise ValueError(f"mode must be one of {INCEPTION_MODES}, got {mode!r}.")
        if int(input_size) != input_size or input_size < _INCEPTION_MIN_SIZE:
            raise ValueError(
                f"input_size must be an integer >= {_INCEPTION_MIN_SIZE}, got {input_size!r}."
            )
        if weights is None and not allow_random:
            raise ValueError(
                "weights=None gives an untrained Inception whose scores mean nothing; "
                "pass allow_random=True (tests only), weights='imagenet' or a weights file."
            )
        file_hash = None
        if weights not in (None, "imagenet"):
            path = pathlib.Path(weights).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"weights file not found: {path}")
            file_hash = file_sha256(path)
            weights = str(path)
        # Built in float32 whatever the global policy (training may have set
        # mixed_bfloat16): bf16 features would change FIDs under one id.
        policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy("float32")
        if weights is None:
            keras.utils.set_random_seed(int(random_seed))
        try:
            network = keras.applications.InceptionV3(
                include_top=False,
                weights=weights,
                input_shape=(input_size, input_size, 3),
                pooling="avg",
            )
        finally:
            keras.config.set_dtype_policy(policy)
        super().__init__(
            network,
            name="inception_v3-pool3",
            mode=mode,
            input_size=(input_size, input_size),
            # A file is identified by its bytes; downloaded or random weights
            # by their values.
            weights_sha256=file_hash or weights_sha256(network),
            weights_source=weights or f"random (seed {int(random_seed)})",
            random=weights is None,
        )

    def preprocess(self, images):
        return inception_preprocess(images, self.mode, self.input_size[0])


class KerasLayerExtractor(FeatureExtractor):
    """Features from a layer of any Keras model: a domain extractor.

    ImageNet features know little about histopathology; a classifier trained
    on the same domain (e.g. the zoo's `small_cnn` trained on the IDC
    training patients, never the patients being scored) gives features that
    separate tissue types. The extractor builds a sub-model from the model's
    inputs to `layer_name`'s output; 4-D outputs are global-average-pooled,
    other ranks above 2 flattened.

    Images ([0, 1]) are resized to the model's input size (bilinear with
    antialiasing, when the sizes differ), replicated to 3 channels when the
    model expects 3 and they have 1, and mapped linearly to `input_range`.

    Args:
        model: a built functional or Sequential `keras.Model`.
        layer_name: the layer whose output are the features; None uses the
            model's output.
        input_range: pixel range the model expects; default: the model's
            `input_range` attribute (zoo classifiers have one) or (0, 1).
        weights_source: text recorded in provenance (e.g. the model's path).

    Example:

    >>> classifier = gan_zoo.load_model("runs/small_cnn/model.keras")
    >>> extractor = KerasLayerExtractor(classifier, "gap")
    """

    def __init__(self, model, layer_name=None, input_range=None, weights_source=None):
        import keras

        try:
            inputs = model.inputs
        except AttributeError:
            inputs = None
        if not inputs or len(inputs) != 1:
            raise ValueError(
                "model must be a built functional or Sequential keras.Model with one "
                f"image input; {type(model).__name__} has inputs {inputs}."
            )
        output = model.output if layer_name is None else model.get_layer(layer_name).output
        if len(output.shape) == 4:
            output = keras.layers.GlobalAveragePooling2D()(output)
        elif len(output.shape) > 2:
            output = keras.layers.Flatten()(output)
        network = keras.Model(inputs, output, name=f"{model.name}_features")
        input_shape = model.input_shape
        if len(input_shape) != 4:
            raise ValueError(
                f"model must take [N, H, W, C] images, got input shape {input_shape}."
            )
        height, width, self.channels = input_shape[1:]
        low, high = input_range or getattr(model, "input_range", (0.0, 1.0))
        self.input_range = (float(low), float(high))
        super().__init__(
            network,
            name=f"keras-layer:{layer_name or 'output'}",
            mode="bilinear-aa"
            if self.input_range == (0.0, 1.0)
            else f"bilinear-aa-to-{low:g},{high:g}",
            input_size=None if None in (height, width) else (height, width),
            # The sub-model's weights only: retraining the head of a
            # classifier does not change the features.
            weights_sha256=weights_sha256(network),
            weights_source=weights_source or f"in-memory model {model.name!r}",
        )
        self.model_name = model.name

    def provenance(self):
        out = super().provenance()
        out.update(model_name=self.model_name, input_range=list(self.input_range))
        return out

    def preprocess(self, images):
        import tensorflow as tf

        if images.shape[-1] != self.channels:
            if images.shape[-1] == 1 and self.channels == 3:
                images = to_rgb(images)
            else:
                raise ValueError(
                    f"The model expects {self.channels} channel(s); "
                    f"images have {images.shape[-1]}."
                )
        if self.input_size is not None and tuple(images.shape[1:3]) != self.input_size:
            images = tf.image.resize(images, self.input_size, method="bilinear", antialias=True)
        low, high = self.input_range
        return images * (high - low) + low
