"""Feature-extraction throughput of the generative metrics' extractors.

FID and KID cost one forward pass of the extractor per image, over the
reference and the generated set (5,000 + 5,000 for the PathologyGAN
protocol), so the extractor's speed decides whether a metric can run every
few epochs. This times, on random images already in memory (no decoding):

- Inception-V3 pool_3 at 299x299 (random weights: the same compute as the
  ImageNet weights, which cannot be downloaded offline), legacy and clean
  resizing from 50x50 and 224x224 inputs;
- a domain extractor: the `gap` layer of the zoo's `small_cnn` at 50x50
  (the IDC extractor of `recipes/dcgan_idc.py`).

    python benchmarks/feature_extraction.py --json benchmarks/results/feature-extraction.json
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def time_extractor(extractor, images, batch_size, repeats):
    """Median images/s over `repeats` passes (after one warm-up batch)."""
    extractor(images[:batch_size])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for first in range(0, len(images), batch_size):
            extractor(images[first : first + batch_size])
        rates.append(len(images) / (time.perf_counter() - start))
    return float(np.median(rates))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128, help="images per pass")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)

    import gan_zoo
    from gan_zoo.metrics.extractors import InceptionV3Extractor, KerasLayerExtractor

    rng = np.random.default_rng(0)
    rows = []
    for size in (50, 224):
        images = rng.uniform(0, 1, (args.images, size, size, 3)).astype("float32")
        for mode in ("legacy", "clean"):
            extractor = InceptionV3Extractor(weights=None, mode=mode, allow_random=True)
            rate = time_extractor(extractor, images, args.batch_size, args.repeats)
            rows.append({"extractor": "inception_v3_pool3_299", "mode": mode,
                         "input": f"{size}x{size}", "images_per_second": rate})
            print(rows[-1], flush=True)
    classifier = gan_zoo.load("small_cnn", image_size=50, width=0.5)
    extractor = KerasLayerExtractor(classifier, "gap")
    images = rng.uniform(0, 1, (args.images * 8, 50, 50, 3)).astype("float32")
    rate = time_extractor(extractor, images, 256, args.repeats)
    rows.append({"extractor": "small_cnn_gap (width 0.5)", "mode": extractor.mode,
                 "input": "50x50", "images_per_second": rate})
    print(rows[-1], flush=True)
    run = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0]},
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w") as file:
            json.dump(run, file, indent=2)
    return run


if __name__ == "__main__":
    main()
