"""IDC as sharded TFRecords: the TFDS builder in `datasets/idc/`.

Opening 277K small PNG files every epoch is slow; the builder prepares the
patches once from a local copy (offline, nothing downloaded) and these
helpers stream them, filtered by patient, as a pipeline source.
"""

import importlib
import importlib.util
import pathlib
import sys

from gan_zoo.data.idc import IDC_TOP_FOLDER, IDC_ZIP_NAME

_BUILDER_DIR = pathlib.Path(__file__).resolve().parents[2] / "datasets" / "idc"
_BUILDER_PACKAGE = "gan_zoo_datasets_idc"


def idc_tfds_builder_class():
    """The TFDS builder class from `datasets/idc/idc_dataset_builder.py`.

    The top-level `datasets` folder is not part of the installed package, so
    the folder is imported by path as the package `gan_zoo_datasets_idc`
    (a name that cannot clash with other `datasets` or `idc` modules), without
    adding the builder to TFDS's global registry.
    """
    name = f"{_BUILDER_PACKAGE}.idc_dataset_builder"
    if name not in sys.modules:
        init = _BUILDER_DIR / "__init__.py"
        if not (_BUILDER_DIR / "idc_dataset_builder.py").is_file():
            raise FileNotFoundError(
                f"The IDC TFDS builder is not in {_BUILDER_DIR} (it lives in "
                "the repository's datasets/ folder, not in the installed "
                "package). Use a source checkout, or read an already prepared "
                "dataset with tfds.builder_from_directory."
            )
        import tensorflow_datasets as tfds

        if _BUILDER_PACKAGE not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                _BUILDER_PACKAGE, init,
                submodule_search_locations=[str(_BUILDER_DIR)],
            )
            package = importlib.util.module_from_spec(spec)
            sys.modules[_BUILDER_PACKAGE] = package
            spec.loader.exec_module(package)
        with tfds.core.registered.skip_registration():
            importlib.import_module(name)
    return sys.modules[name].Builder


def idc_tfds_builder(data_dir, *, config="raw", manual_dir=None,
                     **builder_kwargs):
    """A prepared IDC TFDS builder in `data_dir` (built when needed).

    When `<data_dir>/idc/<config>/<version>` is not prepared yet, it is
    built from `manual_dir` (the Kaggle folder, or a folder holding
    `IDC_regular_ps50_idx5/` or `IDC_regular_ps50_idx5.zip`); nothing is
    downloaded. Without the builder code (installed package), an already
    prepared dataset is read with `tfds.builder_from_directory`.
    """
    import tensorflow_datasets as tfds

    try:
        builder_cls = idc_tfds_builder_class()
    except FileNotFoundError:
        version = builder_kwargs.get("version", "1.0.0")
        prepared = pathlib.Path(data_dir) / "idc" / config / str(version)
        if prepared.is_dir():
            return tfds.builder_from_directory(str(prepared))
        raise
    builder = builder_cls(data_dir=str(data_dir), config=config,
                          **builder_kwargs)
    if not builder.is_prepared():
        if manual_dir is None:
            raise FileNotFoundError(
                f"IDC TFDS dataset not prepared in {builder.data_dir}: pass "
                "manual_dir= (the Kaggle IDC folder, or a folder holding "
                f"{IDC_TOP_FOLDER}/ or {IDC_ZIP_NAME}) to build it."
            )
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=str(manual_dir)
            )
        )
    return builder


def load_idc_tfds(data_dir, patients=None, *, config="raw", manual_dir=None,
                  shuffle_files=False, with_coordinates=False,
                  **builder_kwargs):
    """IDC as a `tf.data.Dataset` of `{"image", "label", "patient"}` dicts.

    Args:
        data_dir: TFDS data folder (prepared here from `manual_dir` if
            needed, see `idc_tfds_builder`).
        patients: keep only these patient ids (e.g. `idc_split(...)["train"]`);
            None keeps all. The filter runs before images are decoded, and
            the kept patches are counted once here from their patient ids
            alone (one read of the records, no image decoded), so the result
            has a known cardinality and a pipeline needs no counting pass
            of its own.
        config: builder config, `"raw"` (edge crops at their size) or
            `"pad50"` (zero-padded to 50x50 at build time).
        manual_dir: local copy to build from when not prepared.
        shuffle_files: shuffle the shard order.
        with_coordinates: also return `"x"` and `"y"`.
        **builder_kwargs: passed to the builder (e.g. `version`).

    Returns:
        A dataset of dicts: `image` uint8 (H, W, 3), `label` int64 (0 healthy,
        1 IDC), `patient` string (and `x`, `y` int32 with
        `with_coordinates`); usable as a pipeline source, whose error
        messages then name the patch by patient and coordinates. Its
        cardinality is known.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = idc_tfds_builder(data_dir, config=config, manual_dir=manual_dir,
                               **builder_kwargs)
    ds = builder.as_dataset(
        split="all",
        shuffle_files=shuffle_files,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    if patients is not None:
        wanted = tf.constant(sorted({str(p) for p in patients}), dtype=tf.string)

        def keep(ex):
            return tf.reduce_any(tf.equal(ex["patient"], wanted))

        ids = builder.as_dataset(
            split="all",
            decoders=tfds.decode.PartialDecoding({"patient": True}),
        )
        count = int(ids.filter(keep).reduce(
            tf.constant(0, tf.int64), lambda n, _: n + 1))
        # Declared before the decoding map (which keeps it), so that an image
        # dropped later by on_error="skip" cannot trip the assertion.
        ds = ds.filter(keep).apply(
            tf.data.experimental.assert_cardinality(count))
    image_feature = builder.info.features["image"]

    def to_example(ex):
        out = {
            "image": image_feature.decode_example(ex["image"]),
            "label": ex["label"],
            "patient": ex["patient"],
        }
        if with_coordinates:
            out["x"], out["y"] = ex["x"], ex["y"]
        return out

    return ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
