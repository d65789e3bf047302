"""Input-pipeline throughput on the IDC patches, per epoch, per source.

For each source it streams a few epochs through `training_stream` (decode,
pad to 50x50, scale, shuffle, flips, batch) without a model, and reports
images/s and the bytes this process read from files during each epoch
(`rchar` in /proc/self/io).

Sources:
- files: the PNG files themselves, decoded again every epoch;
- memory-cache: the PNGs are read and decoded once, when the stream is built
  (before epoch 1, timed apart as `cache_fill_seconds`); every epoch then
  reads decoded images from memory, ~0 bytes from files, which is the
  evidence that no PNG is reopened;
- tfds: sharded TFRecords prepared by `datasets/idc` (built first if needed,
  timed apart as `prepare_seconds`), whose PNGs are decoded every epoch.
  TFDS auto-caches the encoded records of a dataset under 250 MiB in memory
  during the first epoch, so later epochs read ~0 bytes from files but still
  decode.

    python benchmarks/input_pipeline.py --data-dir ../shared/data/idc --json out.json
"""

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time

import tensorflow as tf

from gan_zoo.data import idc, idc_tfds
from gan_zoo.data.pipeline import training_stream


def bytes_read():
    """Bytes this process has read through read() calls so far (Linux)."""
    for line in pathlib.Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def time_epochs(stream, epochs):
    rows, iterator = [], iter(stream.dataset)
    for epoch in range(epochs):
        start_bytes, start = bytes_read(), time.perf_counter()
        for _ in range(stream.steps_per_epoch):
            batch = next(iterator)
        batch[0].numpy()  # wait for the last batch
        seconds = time.perf_counter() - start
        images = stream.steps_per_epoch * stream.batch_size
        rows.append({
            "epoch": epoch + 1,
            "images": images,
            "seconds": seconds,
            "images_per_second": images / seconds,
            "megabytes_read": (bytes_read() - start_bytes) / 1e6,
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=pathlib.Path, required=True, help="IDC folder (Kaggle layout) or zip")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per source")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size")
    parser.add_argument("--sources", default="files,memory-cache,tfds", help="comma-separated sources")
    parser.add_argument("--tfds-dir", type=pathlib.Path, default=None,
                        help="where TFDS prepares the TFRecords (default: a temporary folder)")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    dataset = idc.scan_idc(args.data_dir)
    records = dataset.records()
    common = dict(batch_size=args.batch_size, image_size=(50, 50), size_policy=idc.IDC_SIZE_POLICY,
                  flips=True, seed=0, epochs=args.epochs)
    results = {"patches": len(records), "batch_size": args.batch_size, "sources": {},
               "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                           "tensorflow": tf.__version__}}
    for source in args.sources.split(","):
        extra = {}
        if source == "files":
            stream = training_stream(records, **common)
        elif source == "memory-cache":
            start = time.perf_counter()
            stream = training_stream(records, cache="memory", **common)
            extra["cache_fill_seconds"] = time.perf_counter() - start
        elif source == "tfds":
            tfds_dir = args.tfds_dir or pathlib.Path(tempfile.mkdtemp(prefix="idc_tfds_"))
            start = time.perf_counter()
            idc_tfds.idc_tfds_builder(tfds_dir, manual_dir=args.data_dir)  # prepares once
            extra["prepare_seconds"] = time.perf_counter() - start
            stream = training_stream(idc_tfds.load_idc_tfds(tfds_dir, manual_dir=args.data_dir), **common)
        else:
            raise SystemExit(f"unknown source {source!r}")
        rows = time_epochs(stream, args.epochs)
        results["sources"][source] = {**extra, "epochs": rows}
        for row in rows:
            print(f"{source:>13} epoch {row['epoch']}: {row['images_per_second']:8.0f} images/s, "
                  f"{row['megabytes_read']:8.1f} MB read from files")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
