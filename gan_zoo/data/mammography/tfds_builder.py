"""CBIS-DDSM as sharded TFRecords: the TFDS builder in `datasets/cbis_ddsm/`.

Decoding 3000 x 5000 DICOMs every epoch is slow; the builder prepares the
whole mammograms once from a local copy (PNG layout or TCIA release,
offline) and `load_cbis_ddsm_tfds` streams them, filtered by patient, as
float32 images in [0, 1] with the full dynamic range of the source.
"""

import importlib
import importlib.util
import pathlib
import sys

_BUILDER_DIR = pathlib.Path(__file__).resolve().parents[3] / "datasets" / "cbis_ddsm"
_BUILDER_PACKAGE = "gan_zoo_datasets_cbis_ddsm"
DATASET_NAME = "cbis_ddsm_local"


def cbis_ddsm_tfds_builder_class():
    """The builder class of `datasets/cbis_ddsm/cbis_ddsm_dataset_builder.py`.

    Imported by path as the package `gan_zoo_datasets_cbis_ddsm` (the
    repository's `datasets/` folder is not part of the installed package),
    without adding it to TFDS's global registry.
    """
    name = f"{_BUILDER_PACKAGE}.cbis_ddsm_dataset_builder"
    if name not in sys.modules:
        if not (_BUILDER_DIR / "cbis_ddsm_dataset_builder.py").is_file():
            raise FileNotFoundError(
                f"The CBIS-DDSM TFDS builder is not in {_BUILDER_DIR} (it lives in the "
                "repository's datasets/ folder). Use a source checkout, or read a prepared "
                "dataset with tfds.builder_from_directory."
            )
        import tensorflow_datasets as tfds

        if _BUILDER_PACKAGE not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                _BUILDER_PACKAGE, _BUILDER_DIR / "__init__.py",
                submodule_search_locations=[str(_BUILDER_DIR)])
            package = importlib.util.module_from_spec(spec)
            sys.modules[_BUILDER_PACKAGE] = package
            spec.loader.exec_module(package)
        with tfds.core.registered.skip_registration():
            importlib.import_module(name)
    return sys.modules[name].Builder


def cbis_ddsm_tfds_builder(data_dir, *, config="original", manual_dir=None, **builder_kwargs):
    """A prepared builder in `data_dir`, built from `manual_dir` when needed.

    Args:
        data_dir: the TFDS data folder.
        config: "original" or "fit256".
        manual_dir: the local CBIS-DDSM copy (PNG layout or TCIA release).
        **builder_kwargs: passed to the builder (e.g. `version`).
    """
    import tensorflow_datasets as tfds

    try:
        builder_cls = cbis_ddsm_tfds_builder_class()
    except FileNotFoundError:
        version = builder_kwargs.get("version", "1.0.0")
        prepared = pathlib.Path(data_dir) / DATASET_NAME / config / str(version)
        if prepared.is_dir():
            return tfds.builder_from_directory(str(prepared))
        raise
    builder = builder_cls(data_dir=str(data_dir), config=config, **builder_kwargs)
    if not builder.is_prepared():
        if manual_dir is None:
            raise FileNotFoundError(
                f"CBIS-DDSM TFDS dataset not prepared in {builder.data_dir}: pass manual_dir= "
                "(the TCIA release or a PNG folder with labels.csv) to build it."
            )
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def load_cbis_ddsm_tfds(data_dir, patients=None, *, config="original", manual_dir=None,
                        shuffle_files=False, **builder_kwargs):
    """CBIS-DDSM as a `tf.data.Dataset` of dicts.

    Args:
        data_dir: the TFDS data folder (prepared from `manual_dir` if needed).
        patients: keep only these patient ids (None: all).
        config: "original" or "fit256".
        manual_dir: local copy to build from.
        shuffle_files: shuffle the shard order.
        **builder_kwargs: passed to the builder.

    Returns:
        Dicts with `image` float32 (H, W, 1) in [0, 1] (uint16 / 65535),
        `mask` float32 (H, W, 1) in {0, 1}, `label` int64 (1 malignant),
        `patient_id`, `side`, `view`, `official_split` strings, `bit_depth`.
    """
    import tensorflow as tf

    builder = cbis_ddsm_tfds_builder(data_dir, config=config, manual_dir=manual_dir,
                                     **builder_kwargs)
    dataset = builder.as_dataset(split="full", shuffle_files=shuffle_files)
    if patients is not None:
        wanted = tf.constant(sorted({str(p) for p in patients}), tf.string)
        dataset = dataset.filter(lambda ex: tf.reduce_any(tf.equal(ex["patient_id"], wanted)))

    def to_example(ex):
        return {
            "image": tf.cast(ex["image"], tf.float32) / 65535.0,
            "mask": tf.cast(ex["mask"] > 127, tf.float32),
            **{k: ex[k] for k in ("label", "patient_id", "side", "view", "official_split",
                                  "bit_depth")},
        }

    return dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
