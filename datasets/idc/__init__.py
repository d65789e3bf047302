"""TFDS dataset `idc` (see `idc_dataset_builder.py` and README.md)."""
