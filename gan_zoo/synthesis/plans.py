"""What each synthetic image is made from, one image at a time.

A plan knows how many images a synthesis makes and, for image `i`, its
entry (seed, label and whatever else makes it: a latent seed, a context
patch and a lesion mask, a source patch) and how to produce the pixels of
a batch of entries. Every entry is a pure function of the synthesis
arguments and `i`, so a resumed synthesis continues exactly, and any one
image can be produced again alone (`produce_alone`).

- `LatentPlan` (DCGAN, the semi-supervised cGAN, PathologyGAN): image i is
  `model.generate(1, labels=[label_i], seed=image_seed(seed, i))`; batches
  stack the same latent vectors, so a batch gives the images one at a
  time would.
- `InfillPlan` (ciGAN): image i paints a lesion of class label_i into a
  lesion-free patch of the `--masks` folder, inside the mask of one of its
  lesions of that class; context and mask are drawn with image i's seed,
  which also seeds the noise ciGAN fills the region with.
- `TranslatePlan` (CycleGAN): image i translates the i-th chosen patch of
  the `--translate` folder (IDC layout) to the other class.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gan_zoo.synthesis.errors import SynthesisError

DIRECTIONS = ("a_to_b", "b_to_a")
# CycleGAN's domains in this project: a = class 0 (no IDC), b = class 1 (IDC).
SOURCE_CLASS = {"a_to_b": 0, "b_to_a": 1}
PATHOLOGY = {0: "BENIGN", 1: "MALIGNANT"}


def image_seed(seed, index):
    """The seed of image `index` of a synthesis run with `seed`.

    A 32-bit integer drawn by NumPy's `SeedSequence([seed, index])`: a
    function of the two numbers only, and unrelated for neighbouring
    indices.

    Args:
        seed: the synthesis seed.
        index: the image's position, from 0.
    """
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def parse_label_counts(labels):
    """`[(label, count), ...]` from "0:500,1:500", a dict or such pairs.

    Args:
        labels: the text of `--labels`, `{label: count}`, or a sequence of
            `(label, count)` pairs; None gives None.

    Raises:
        SynthesisError: not LABEL:COUNT pairs, a count below 1 or a label
            given twice.
    """
    if labels is None:
        return None
    if isinstance(labels, str):
        pairs = []
        for part in (p.strip() for p in labels.split(",")):
            label, sep, count = part.partition(":")
            try:
                pairs.append((int(label), int(count)))
            except ValueError:
                raise SynthesisError(
                    f"--labels {labels!r} is not LABEL:COUNT pairs (e.g. 0:500,1:500)."
                ) from None
            if not sep:
                raise SynthesisError(f"--labels {labels!r} is not LABEL:COUNT pairs (e.g. 0:500,1:500).")
    else:
        items = labels.items() if isinstance(labels, dict) else labels
        pairs = [(int(label), int(count)) for label, count in items]
    if not pairs:
        raise SynthesisError("labels is empty; give LABEL:COUNT pairs (e.g. 0:500,1:500).")
    seen = [label for label, _ in pairs]
    if len(set(seen)) != len(seen):
        raise SynthesisError(f"labels gives a class twice: {seen}.")
    bad = [f"{label}:{count}" for label, count in pairs if count < 1]
    if bad:
        raise SynthesisError(f"labels counts must be at least 1; got {', '.join(bad)}.")
    return pairs


def resolve_counts(n, pairs, classes, what):
    """The label counts of `n` images: `pairs` checked, or equal shares of `classes`.

    Args:
        n: the number of images, or None when `pairs` gives it.
        pairs: parsed `(label, count)` pairs, or None.
        classes: the valid labels, in order.
        what: how to name the model in errors.

    Returns:
        `(n, pairs)`.
    """
    if pairs is None:
        if n is None:
            raise SynthesisError("Give the number of images (--n) or labels with counts (--labels).")
        shares = np.diff(np.arange(len(classes) + 1) * n // len(classes))
        return n, [(label, int(c)) for label, c in zip(classes, shares) if c]
    bad = [label for label, _ in pairs if label not in classes]
    if bad:
        raise SynthesisError(f"labels {bad} are not classes of {what} (its classes: {list(classes)}).")
    total = sum(count for _, count in pairs)
    if n is not None and total != n:
        raise SynthesisError(f"labels count {total} images but --n is {n}; make them agree.")
    return total, pairs


def label_blocks(pairs):
    """`label_of(i)`: the labels in consecutive blocks, in the order of `pairs`."""
    ends = np.cumsum([count for _, count in pairs])
    labels = [label for label, _ in pairs]
    return lambda index: labels[int(np.searchsorted(ends, index, side="right"))]


def _noise_at_inference(network):
    """Whether a layer of `network` draws noise when sampling (then images go one by one)."""
    stack = [network]
    while stack:
        layer = stack.pop()
        if getattr(layer, "noise_at_inference", False):
            return True
        stack.extend(getattr(layer, "layers", ()))
    return False


@dataclasses.dataclass
class LatentPlan:
    """Images of a latent generator (see the module docstring).

    Args:
        model: a `LatentGenerator`.
        n: number of images, or None when `labels` counts them.
        labels: parsed `(label, count)` pairs, or None.
        seed: the synthesis seed.
        default_label: the label of an unconditional generator's images
            (None: no label).
    """

    model: object
    n: int | None
    labels: list | None
    seed: int
    default_label: int | None = None

    def __post_init__(self):
        model = self.model
        if model.conditional:
            self.n, self.labels = resolve_counts(
                self.n, self.labels, list(range(model.num_classes)), "this conditional generator")
            self._label_of = label_blocks(self.labels)
        else:
            if self.labels is not None and len(self.labels) > 1:
                raise SynthesisError(
                    "This generator is unconditional: --labels may name one class (the class of "
                    f"all its images, e.g. 1:{self.n or 1000}), not {len(self.labels)}."
                )
            if self.labels is not None:
                self.n, _ = resolve_counts(self.n, self.labels, [self.labels[0][0]], "it")
                self.default_label = self.labels[0][0]
            elif self.n is None:
                raise SynthesisError("Give the number of images with --n.")
            self._label_of = lambda index: self.default_label
        self.one_by_one = _noise_at_inference(model.sampling_network(model.generator_name))

    @property
    def count(self):
        return self.n

    @property
    def image_shape(self):
        return tuple(int(d) for d in self.model.image_shape)

    def entry(self, index):
        """{"index", "seed", "label"} of image `index`."""
        return {"index": index, "seed": image_seed(self.seed, index), "label": self._label_of(index)}

    def _labels(self, entries):
        if not self.model.conditional:
            return None
        return np.asarray([e["label"] for e in entries], np.int32)

    def produce(self, entries):
        """float32 images in [0, 1] of `entries`, in their order."""
        if self.one_by_one:
            return np.concatenate([self.produce_alone(e)[None] for e in entries])
        z = np.concatenate([np.asarray(self.model.latent(1, e["seed"])) for e in entries])
        return self.model.generate(z=z, labels=self._labels(entries), seed=entries[0]["seed"],
                                   batch_size=len(entries))

    def produce_alone(self, entry):
        """The image of one entry, generated on its own: float32 [H, W, C]."""
        labels = self._labels([entry])
        return self.model.generate(1, labels=labels, seed=entry["seed"])[0]


@dataclasses.dataclass
class InfillPlan:
    """ciGAN's painted lesions in lesion-free context of a CBIS-DDSM folder.

    Patches of `model.patch_size` are cut from `masks_dir` as ciGAN's study
    cuts them (`gan_zoo.data.mammography.lesion_patches.sample_patches`,
    one lesion-free patch per image, seeded by `seed`): the lesion-free
    ones are the contexts, the lesion patches lend their masks, a mask of
    class c for a lesion of class c.

    Args:
        model: a ciGAN.
        masks_dir: a CBIS-DDSM folder (PNG layout with masks, or TCIA).
        n: number of images, or None when `labels` counts them.
        labels: parsed `(label, count)` pairs (0 non-malignant, 1
            malignant), or None for equal shares.
        seed: the synthesis seed.
    """

    model: object
    masks_dir: str
    n: int | None
    labels: list | None
    seed: int

    def __post_init__(self):
        from gan_zoo.data.mammography import scan_cbis_ddsm
        from gan_zoo.data.mammography.lesion_patches import sample_patches

        self.n, self.labels = resolve_counts(self.n, self.labels, [0, 1], "ciGAN (0 non-malignant, 1 malignant)")
        self._label_of = label_blocks(self.labels)
        try:
            records = scan_cbis_ddsm(self.masks_dir)
            self.patches = sample_patches(records, patch_size=self.model.patch_size, normal_per_image=1,
                                          seed=self.seed)
        except (ValueError, OSError) as error:
            first = (str(error).splitlines() or [type(error).__name__])[0]
            raise SynthesisError(f"--masks {self.masks_dir}: {first}") from None
        self.records = {record.path: record for record in records}
        self.contexts = np.flatnonzero(~self.patches.has_lesion)
        if not self.contexts.size:
            raise SynthesisError(
                f"--masks {self.masks_dir} has no lesion-free patch of {self.model.patch_size} px "
                "(with more than 75% breast tissue) to paint into."
            )
        self.donors = {c: np.flatnonzero(self.patches.has_lesion & (self.patches.labels == c)) for c in (0, 1)}
        for label, _ in self.labels:
            if not self.donors[label].size:
                raise SynthesisError(
                    f"--masks {self.masks_dir} has no {PATHOLOGY[label].lower()} lesion whose mask "
                    f"could hold a painted lesion of class {label}."
                )

    @property
    def count(self):
        return self.n

    @property
    def image_shape(self):
        return (self.model.patch_size, self.model.patch_size, 1)

    def entry(self, index):
        """Image `index`: seed, label, and the context patch and mask it uses."""
        seed = image_seed(self.seed, index)
        label = self._label_of(index)
        rng = np.random.default_rng(seed)
        context = int(self.contexts[rng.integers(self.contexts.size)])
        donor = int(self.donors[label][rng.integers(self.donors[label].size)])
        p = self.patches
        record = self.records.get(str(p.sources[context]))
        return {
            "index": index, "seed": seed, "label": label,
            "side": getattr(record, "side", None), "view": getattr(record, "view", None),
            "context_source": str(p.sources[context]), "context_patient": str(p.patients[context]),
            "context_corner": [int(v) for v in p.corners[context]],
            "mask_source": str(p.sources[donor]), "mask_patient": str(p.patients[donor]),
            "mask_corner": [int(v) for v in p.corners[donor]],
            "_context": context, "_donor": donor,
        }

    def mask_of(self, entry):
        """The binary mask (uint8 [S, S], 0/1) image `entry` was painted in."""
        return self.patches.masks[entry["_donor"]]

    def produce(self, entries):
        return np.concatenate([self.produce_alone(e)[None] for e in entries])

    def produce_alone(self, entry):
        """The painted patch of one entry: float32 [S, S, 1] in [0, 1]."""
        context = self.patches.images[entry["_context"]].astype(np.float32) / 255.0
        mask = self.mask_of(entry).astype(np.float32)
        return self.model.infill(context, mask, entry["label"], seed=entry["seed"])[0]


@dataclasses.dataclass
class TranslatePlan:
    """CycleGAN translations of the patches of one class of an IDC folder.

    `a_to_b` translates the class-0 (no IDC) patches into class 1, `b_to_a`
    the reverse. With `n`, a seeded random choice of n patches (kept in
    scan order), else all of them. A patch cut at the slide's border
    (smaller than the model's input) is zero-padded at its bottom and right,
    as the training pipeline pads IDC patches, and its translation cropped
    back to its size.

    Args:
        model: an `ImageTranslator` with the direction.
        from_dir: an IDC-layout folder.
        direction: "a_to_b" or "b_to_a".
        n: number of patches to translate, or None for all.
        seed: the synthesis seed (chooses the patches).
    """

    model: object
    from_dir: str
    direction: str
    n: int | None
    seed: int

    def __post_init__(self):
        from gan_zoo.data.idc import scan_idc

        if self.direction not in DIRECTIONS:
            raise SynthesisError(f"--direction must be one of {', '.join(DIRECTIONS)}; got {self.direction!r}.")
        if self.direction not in tuple(self.model.translation_directions()):
            raise SynthesisError(f"This {type(self.model).__name__} has no direction {self.direction!r}.")
        try:
            dataset = scan_idc(self.from_dir)
        except (ValueError, OSError) as error:
            first = (str(error).splitlines() or [type(error).__name__])[0]
            raise SynthesisError(f"--translate {self.from_dir}: {first}") from None
        source_class = SOURCE_CLASS[self.direction]
        patches = [p for p in dataset.patches if p.label == source_class]
        if not patches:
            raise SynthesisError(f"--translate {self.from_dir} has no class-{source_class} patches to translate.")
        if self.n is not None:
            if self.n > len(patches):
                raise SynthesisError(
                    f"--n {self.n} is more than the {len(patches)} class-{source_class} patches of "
                    f"{self.from_dir}."
                )
            chosen = np.sort(np.random.default_rng(self.seed).choice(len(patches), self.n, replace=False))
            patches = [patches[i] for i in chosen]
        self.patches = patches
        self.n = len(patches)
        self.target = 1 - source_class
        shape = tuple(self.model.translation_image_shape())
        self.shape = shape
        too_large = [p for p in patches if p.height > shape[0] or p.width > shape[1]]
        if too_large:
            raise SynthesisError(
                f"{too_large[0].path} is {too_large[0].width}x{too_large[0].height}, larger than this "
                f"CycleGAN's {shape[1]}x{shape[0]} input."
            )

    @property
    def count(self):
        return self.n

    @property
    def image_shape(self):
        return self.shape

    def entry(self, index):
        """Image `index`: its source patch, and the class it is translated to."""
        patch = self.patches[index]
        return {
            "index": index, "seed": None, "label": self.target, "source": patch.path,
            "source_label": patch.label, "patient": patch.patient, "x": patch.x, "y": patch.y,
            "_size": (patch.height, patch.width),
        }

    def _load(self, entry):
        from PIL import Image

        with Image.open(entry["source"]) as image:
            pixels = np.asarray(image.convert("RGB" if self.shape[-1] == 3 else "L"), np.float32) / 255.0
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        padded = np.zeros(self.shape, np.float32)
        padded[: pixels.shape[0], : pixels.shape[1]] = pixels
        return padded

    def produce(self, entries):
        images = np.stack([self._load(e) for e in entries])
        out = self.model.translate(images, direction=self.direction, batch_size=len(entries))
        return [image[: e["_size"][0], : e["_size"][1]] for image, e in zip(out, entries)]

    def produce_alone(self, entry):
        """The translation of one entry's patch: float32 [h, w, C]."""
        return self.produce([entry])[0]
