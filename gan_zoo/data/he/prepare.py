"""H&E training tiles and held-out references for a generative run.

PathologyGAN trains on tiles and is scored (KID / FID) against tiles it
never saw. `prepare_he_data` turns what a user gives into that:

- a PathologyGAN HDF5 file (`train_img`; `valid_img` and `test_img` when
  present) is used as it is;
- a folder of H&E images or whole slides is tiled into `tiles.h5` in a
  work folder, whole image groups (patients, slides, images) held out as
  the validation and test splits, so that no tissue of a scored tile was
  trained on;
- a separate reference (`reference`: a folder, tiled, or an HDF5 file)
  replaces the held-out test split.

Problems with the data raise ValueError with one line that names the fix.
"""

import dataclasses
import pathlib

from gan_zoo.data.he.hdf5 import PathologyHDF5, hdf5_splits
from gan_zoo.data.he.tiles import scan_he_images, write_tiles
from gan_zoo.data.splits import split_by_group

HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")


def is_hdf5(path):
    """Whether `path` is an existing file with an HDF5 suffix."""
    return path is not None and pathlib.Path(path).is_file() and pathlib.Path(path).suffix.lower() in HDF5_SUFFIXES


@dataclasses.dataclass
class HEData:
    """The tiles of one run.

    Attributes:
        train: the HDF5 file whose `train_img` the GAN trains on.
        references: `{"validation", "test"}` -> `(HDF5 file, split)` or
            None (no validation split; the test reference is never None).
        summary: provenance for metrics.json: source, tiling reports, tile
            counts and shape, and `"<file>:<split>_img"` of each reference.
    """

    train: pathlib.Path
    references: dict
    summary: dict

    def training_source(self, *, batch_size, image_size, seed):
        """`train_gan`'s source: `(start_epoch, epochs) -> stream` of the training tiles (resumable).

        Args:
            batch_size: global batch size.
            image_size: the model's image side (tiles are resized to it).
            seed: seed of the order; epoch e depends only on (seed, e).
        """
        from gan_zoo.data.he.stream import hdf5_training_stream

        return lambda start_epoch, epochs: hdf5_training_stream(
            self.train, batch_size=batch_size, image_size=image_size, seed=seed, start_epoch=start_epoch,
            epochs=epochs)

    def counts_line(self):
        """"Tiles: N train, N validation, N test" (the splits present)."""
        return "Tiles: " + ", ".join(f"{self.summary[f'{k}_tiles']} {k}" for k in ("train", "validation", "test")
                                     if f"{k}_tiles" in self.summary)


def _held_out_groups(sources, validation_fraction, test_fraction, seed, source):
    """{group: "valid" | "test"} for the groups held out of training."""
    groups = sorted({s.group for s in sources})
    fractions = {"valid": validation_fraction}
    if test_fraction is not None:
        fractions["test"] = test_fraction
    if len(groups) < len(fractions) + 1:
        raise ValueError(f"{source} holds {len(groups)} image group(s): too few to hold out "
                         f"{' and '.join(fractions)} images (give --reference-dir).")
    fractions["train"] = 1.0 - sum(fractions.values())
    held_out = split_by_group(groups, fractions, seed=seed)
    return {group: split for split in ("valid", "test") for group in held_out.get(split, ())}


def _tiled_reference(reference, work_dir, tiling, summary):
    """(HDF5 file, "test") of a separate reference folder or file."""
    if is_hdf5(reference):
        return reference, "test"
    path = pathlib.Path(work_dir) / "reference.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    sources = scan_he_images(reference)
    summary["reference_tiling"] = write_tiles(sources, path, {s.group: "test" for s in sources},
                                              augment=False, **tiling)
    return path, "test"


def prepare_he_data(source, work_dir, *, tile_size, overlap, magnification=None, dihedral=True,
                    validation_fraction=0.15, test_fraction=0.15, split_seed=0, reference=None, batch_size=1):
    """Training tiles and validation / test references of a run.

    Args:
        source: a PathologyGAN HDF5 file, or a folder of H&E images or slides.
        work_dir: folder for the tiles written (`tiles.h5`, `reference.h5`).
        tile_size: side of the tiles cut from images.
        overlap: tile overlap in [0, 1).
        magnification: magnification to read whole slides at (None: base).
        dihedral: add the 8 rotations / mirrorings of each TRAINING tile.
        validation_fraction: share of the image groups held out for
            validation (folders only).
        test_fraction: share held out for the test (folders only; unused
            with `reference`).
        split_seed: seed of the held-out groups.
        reference: a separate test reference (folder or HDF5 file), or None.
        batch_size: the training batch: fewer training tiles are refused.

    Returns:
        `HEData`.

    Raises:
        ValueError: the data cannot give a batch of training tiles and a
            test reference.
    """
    source, work_dir = pathlib.Path(source), pathlib.Path(work_dir)
    tiling = dict(tile_size=tile_size, overlap=overlap, magnification=magnification)
    summary = {"source": str(source)}
    if is_hdf5(source):
        splits = hdf5_splits(source)
        if "train" not in splits:
            raise ValueError(f"{source} has no train_img dataset.")
        if "test" not in splits and reference is None:
            raise ValueError(f"{source} has no test_img split to score against: give --reference-dir.")
        train_path = source
    else:
        sources = scan_he_images(source)
        held_out = _held_out_groups(sources, validation_fraction, None if reference else test_fraction,
                                    split_seed, source)
        train_path = work_dir / "tiles.h5"
        train_path.parent.mkdir(parents=True, exist_ok=True)
        summary["tiling"] = write_tiles(sources, train_path, held_out, augment=("train",) if dihedral else (),
                                        **tiling)
        small = summary["tiling"]["smaller_than_a_tile"]
        if small and not sum(summary["tiling"]["tiles"].values()):
            raise ValueError(f"{len(small)} of the {len(sources)} images are smaller than one "
                             f"{tile_size}-pixel tile (e.g. {small[0]}): give a smaller --tile-size.")
        splits = hdf5_splits(train_path)
    references = {"validation": (train_path, "valid") if "valid" in splits else None,
                  "test": (train_path, "test") if "test" in splits else None}
    if reference is not None:
        references["test"] = _tiled_reference(pathlib.Path(reference), work_dir, tiling, summary)
    if references["test"] is None:
        raise ValueError("No test tiles to score against (every held-out tile was background?).")
    with PathologyHDF5(train_path, "train") as train:
        summary.update(train_tiles=len(train), tile_shape=list(train.image_shape))
    if summary["train_tiles"] < batch_size:
        raise ValueError(f"{source} gives {summary['train_tiles']} training tiles, fewer than one batch of "
                         f"{batch_size}: use more images or a smaller --batch-size.")
    for name, (path, split) in ((n, r) for n, r in references.items() if r is not None):
        with PathologyHDF5(path, split) as tiles:
            summary[f"{name}_tiles"] = len(tiles)
        summary[name] = f"{path}:{split}_img"
    return HEData(train_path, references, summary)
