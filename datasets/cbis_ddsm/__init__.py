"""TFDS dataset `cbis_ddsm_local` (see `cbis_ddsm_dataset_builder.py` and README.md)."""
