"""Synthetic datasets from trained zoo models, in the layouts the loaders read.

    >>> from gan_zoo.synthesis import synthesize, regenerate
    >>> synthesize("runs/dcgan", n=1000, labels="0:500,1:500", out="synthetic/idc", seed=0)
    >>> scan_idc("synthetic/idc")                                  # IDC layout
    >>> synthesize("runs/cigan", n=200, masks="data/cbis_ddsm", out="synthetic/ddsm")
    >>> scan_cbis_ddsm("synthetic/ddsm")                           # with masks
    >>> image = regenerate("runs/dcgan", "synthetic/idc", 17)      # image 17 alone

- `sources`: the model to synthesize with (`open_model`: a model object, a
  run folder or a `.keras` file) and its identity (weights SHA-256).
- `plans`: what image i is made of (per-image seeds, labels, ciGAN's
  context and mask, CycleGAN's source patch) and how to produce it.
- `layouts`: the writers (IDC Kaggle layout, CBIS-DDSM PNG layout with
  masks, PNG tiles, PathologyGAN HDF5).
- `dataset`: `synthesize` (checks, batches, resume, `manifest.json`) and
  `regenerate`.

`gan-zoo synthesize` is the command line of `synthesize`.
"""

from gan_zoo.synthesis.dataset import (
    MANIFEST,
    SynthesisResult,
    make_plan,
    prepare,
    read_manifest,
    regenerate,
    synthesize,
)
from gan_zoo.synthesis.errors import SynthesisError
from gan_zoo.synthesis.layouts import HDF5_NAME, LAYOUTS
from gan_zoo.synthesis.plans import image_seed, parse_label_counts
from gan_zoo.synthesis.sources import ModelSource, open_model

__all__ = [
    "HDF5_NAME",
    "LAYOUTS",
    "MANIFEST",
    "ModelSource",
    "SynthesisError",
    "SynthesisResult",
    "image_seed",
    "make_plan",
    "open_model",
    "parse_label_counts",
    "prepare",
    "read_manifest",
    "regenerate",
    "synthesize",
]
