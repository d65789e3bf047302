"""KID / FID protocol and training summary of a PathologyGAN run on H&E tiles.

A PathologyGAN run scores its generator in a feature extractor
(`gan_zoo.training.he_extractor`) against tiles it never trained on:

- `validation_kid_fid`: the callback that scores it against the VALIDATION
  tiles every few epochs (none when the data has no validation split);
- `test_kid_fid`: the test tiles, scored once after training;
- `kid_fid_protocol`: the sentence metrics.json records about both;
- `training_summary`: epochs, final losses, validation scores, throughput
  and times from the epoch logs of `train_gan`;
- `inception_extractor` and `inception_test_scores`: the paper's FID, in
  Inception-V3 pool_3 features (2048-d) of images resized bilinearly to
  299x299 and scaled to [-1, 1], when the run is given Inception weights;
- `cell_count_fid`: the paper's cancer-cell-feature FID, the Frechet
  distance of per-tile (cancer cells, other cells, cancer-cell density)
  vectors from the nuclei detector of `gan_zoo.metrics.cell_counts`.

FID is computed only with more images than feature dimensions on both sides
(`fid_sample_problem`); KID always. The paper's FID compares 5,000
generated with 5,000 real tiles: by default (`n_fake=None`) as many
generated tiles are scored as real ones were read (at most `n_real`, 5,000),
and `paper_counts_note` says when the data holds fewer.
"""

import math
import pathlib
import warnings

import numpy as np

from gan_zoo.errors import UsageError
from gan_zoo.metrics import cell_counts
from gan_zoo.metrics.features import extract_features, image_batches
from gan_zoo.metrics.generative import fid_sample_problem
from gan_zoo.metrics.scores import compute_scores
from gan_zoo.training.generative_eval import GenerativeEvaluation

SCORE_KEYS = ("kid", "kid_std", "fid")
PAPER_TILES = 5000  # generated and real tiles of the paper's FID
VALIDATION_SEED = 10_000  # seed of the generated tiles of every validation score
TEST_SEED = 123_456  # seed of the generated tiles of the test score
INCEPTION_SIZE = 299  # the paper's Inception input side
INCEPTION_PROTOCOL = ("Inception-V3 pool_3 (2048-d) features of images resized bilinearly (TF1 grid, no "
                      "antialiasing) to 299x299 and scaled to [-1, 1], as the paper; Keras' InceptionV3 "
                      "architecture with the weights named by weights / weights_sha256")


def validation_kid_fid(reference, extractor, *, every_epochs, n_fake, n_real, provenance_path):
    """`[GenerativeEvaluation]` against the validation tiles, or `[]` without them.

    Args:
        reference: `(HDF5 file, split)` of the validation tiles, or None.
        extractor: the run's feature extractor.
        every_epochs: epochs between scores (and after the last).
        n_fake: generated tiles per score (None: as many as validation tiles).
        n_real: at most this many validation tiles.
        provenance_path: JSON-lines file of each score's provenance.
    """
    if reference is None:
        print("No validation split: KID / FID only after training, on the test split.")
        return []
    path, split = reference
    validation = extract_features(path, extractor, split=split, n=n_real, progress=False)
    print(paper_counts_note("validation", validation.n, n_fake))
    return [GenerativeEvaluation(validation, extractor, reference_split="validation", every_epochs=every_epochs,
                                 n=n_fake or validation.n, seed=VALIDATION_SEED, provenance_path=provenance_path)]


def paper_counts_note(part, n_real, n_fake):
    """One line: do the scores of `part` compare the paper's 5,000 vs 5,000 tiles?"""
    n_fake = n_fake or n_real
    if n_real >= PAPER_TILES and n_fake == n_real:
        return f"KID / FID on {part}: {n_fake} generated vs {n_real} real tiles, as in the paper."
    return (f"KID / FID on {part}: {n_fake} generated vs {n_real} real tiles (the paper: "
            f"{PAPER_TILES} vs {PAPER_TILES}; {'the data holds fewer' if n_real < PAPER_TILES else 'as asked'}).")


def test_kid_fid(gan, extractor, reference, *, n_fake, n_real):
    """KID (and FID) of the final generator against the test tiles: `(scores, tiles scored)`.

    Args:
        gan: the trained generator.
        extractor: the run's feature extractor (the one of the validation scores).
        reference: `(HDF5 file, split)` of the test tiles.
        n_fake: generated tiles scored (None: as many as test tiles).
        n_real: at most this many test tiles.

    Returns:
        `compute_scores`' dict (with its provenance), and the numbers of
        test and generated tiles scored, `{"real": n, "generated": n}`.
    """
    path, split = reference
    real = extract_features(path, extractor, split=split, n=n_real, progress=False)
    print(paper_counts_note("test", real.n, n_fake))
    fake = extract_features(gan, extractor, n=n_fake or real.n, seed=TEST_SEED, progress=False)
    metrics = ("kid",) if fid_sample_problem(real.n, fake.n, real.mean.shape[0]) else ("kid", "fid")
    scores = compute_scores(real, fake, metrics=metrics, kid_subset_size=min(1000, real.n, fake.n))
    return scores, {"real": real.n, "generated": fake.n}


def kid_fid_protocol(*, n_fake, n_test, test_reference, extractor_id):
    """How the run's KID / FID were made, in one sentence for metrics.json.

    Args:
        n_fake: generated tiles of the test score.
        n_test: test tiles scored.
        test_reference: `"<file>:<split>_img"` of the test tiles.
        extractor_id: the feature extractor's id.
    """
    return (f"generated tiles vs the validation tiles every --eval-every epochs, and {n_fake} "
            f"generated vs {n_test} test tiles ({test_reference}) once after training "
            f"(the paper: {PAPER_TILES} vs {PAPER_TILES}); "
            f"features from {extractor_id}; FID only with more images than feature dimensions; "
            "provenance in kid_fid_validation.jsonl and kid_fid_test.json")


def training_summary(logs, images_per_epoch):
    """What metrics.json says of the training, from `train_gan`'s epoch logs.

    Args:
        logs: one dict per epoch, those of earlier invocations of a resumed
            run included.
        images_per_epoch: training images of one epoch (whole batches).

    Returns:
        `epochs`, `final` losses, `kid_fid_validation` (one record per
        scored epoch), `train_images_per_second`, `epoch_seconds` (each
        with its evaluations and sample grid) and `train_seconds`.
    """
    # Train steps only: the first epoch of each fit call also traces the train step.
    steady = [e for e in logs if e.get("fit_epoch", 1) > 1] or logs
    return {
        "epochs": len(logs),
        "final": {k: logs[-1][k] for k in ("d_loss", "g_loss", "gradient_penalty") if k in logs[-1]},
        "kid_fid_validation": [{"epoch": e["epoch"], **{k: e[k] for k in SCORE_KEYS if k in e}}
                               for e in logs if "kid" in e],
        "train_images_per_second": float(np.mean([images_per_epoch / e["train_seconds"] for e in steady])),
        "epoch_seconds": [round(e["seconds"], 1) for e in logs],
        "train_seconds": float(sum(e["seconds"] for e in logs)),
    }


def inception_extractor(weights, *, input_size=INCEPTION_SIZE):
    """The paper's FID extractor with `weights`; a bad file is a one-line `UsageError`.

    Args:
        weights: a local Keras Inception-V3 no-top weights file, or
            "imagenet" (Keras downloads them; needs the network once).
        input_size: network input side (299, the paper; smaller in tests).
    """
    import h5py

    from gan_zoo.metrics.extractors import InceptionV3Extractor

    if str(weights) != "imagenet":  # checked before Inception is built (seconds)
        if not pathlib.Path(weights).is_file():
            raise UsageError(f"--inception-weights {weights}: no such file (a Keras Inception-V3 no-top weights "
                             "file, or 'imagenet').")
        if not h5py.is_hdf5(weights):
            raise UsageError(f"--inception-weights {weights}: not an HDF5 file (Keras Inception-V3 no-top "
                             "weights are .h5 / .weights.h5).")
    try:
        with warnings.catch_warnings():  # Keras only warns, and keeps random weights, for layers a file lacks
            warnings.filterwarnings("error", message=".*Skipping", category=UserWarning)
            return InceptionV3Extractor(weights=str(weights), mode="legacy", input_size=input_size)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds for a bad file or no network
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise UsageError(f"--inception-weights {weights}: not usable as Keras Inception-V3 no-top weights "
                         f"({type(error).__name__}: {reason}).") from error


def inception_test_scores(gan, extractor, reference, *, n_fake, n_real):
    """The paper's Inception FID (and KID) of the generator against the test tiles.

    Args:
        gan: the trained generator.
        extractor: `inception_extractor`'s extractor.
        reference: `(HDF5 file, split)` of the test tiles.
        n_fake: generated tiles (None: as many as test tiles).
        n_real: at most this many test tiles.

    Returns:
        A dict for metrics.json: `fid` (None, with `fid_note`, with no more
        images than the 2,048 feature dimensions), `kid`, `kid_std`, the
        tiles scored (`real`, `generated`), the extractor's `extractor_id`,
        `weights`, `weights_sha256` and `protocol`.
    """
    scores, scored = test_kid_fid(gan, extractor, reference, n_fake=n_fake, n_real=n_real)
    out = {k: scores[k] for k in SCORE_KEYS if k in scores}
    if "fid" not in out:
        out.update(fid=None, fid_note=fid_sample_problem(scored["real"], scored["generated"], extractor.feature_dim))
    return {**out, **scored, "extractor_id": extractor.id, "weights": extractor.weights_source,
            "weights_sha256": extractor.weights_sha256, "protocol": INCEPTION_PROTOCOL}


def _resized_batches(batches, side):
    """[0, 1] float batches resized to `side` (area averaging when shrinking): tiles as G sees them."""
    import cv2

    for batch in batches:
        if batch.shape[1:3] == (side, side):
            yield batch
            continue
        method = cv2.INTER_AREA if batch.shape[1] > side else cv2.INTER_LINEAR
        yield np.stack([cv2.resize(image, (side, side), interpolation=method) for image in batch])


def cell_count_fid(gan, reference, *, n_fake, n_real, config=None):
    """PathologyGAN's cancer-cell-feature FID of the generator against the test tiles.

    Each test tile is resized to the generator's side (as the generator was
    trained on them), and both sets are detected at the scale of the stored
    tiles (`scale` = generator side / tile side): the detector's sizes are
    in stored-tile pixels. The Frechet distance of the `[N, 3]` count
    vectors (`cell_counts.COUNT_NAMES`) is `cell_counts.cell_fid`.

    Args:
        gan: the trained generator.
        reference: `(HDF5 file, split)` of the test tiles.
        n_fake: generated tiles (None: as many as test tiles).
        n_real: at most this many test tiles.
        config: a `cell_counts.CellDetectorConfig` (default: the defaults).

    Returns:
        A dict for metrics.json: `fid` (None when undefined, with 3 or fewer
        tiles), the tiles scored, the mean count vector of each side, the
        scale, the detector's config and the protocol.
    """
    config = config or cell_counts.CellDetectorConfig()
    path, split = reference
    side = int(gan.image_size)
    batches, _, _ = image_batches(path, split=split, n=n_real)
    batches = iter(batches)
    first = next(batches)
    scale = side / first.shape[1]
    real = cell_counts.cell_count_vectors(_resized_batches([first, *batches], side), config, scale=scale)
    generated, _, _ = image_batches(gan, n=n_fake or real.shape[0], seed=TEST_SEED)
    fake = cell_counts.cell_count_vectors(generated, config, scale=scale)
    distance = cell_counts.cell_fid(real, fake) if min(real.shape[0], fake.shape[0]) > 3 else math.nan
    return {
        "fid": None if math.isnan(distance) else distance, "real": int(real.shape[0]),
        "generated": int(fake.shape[0]), "counts": list(cell_counts.COUNT_NAMES),
        "real_mean": dict(zip(cell_counts.COUNT_NAMES, real.mean(axis=0).tolist())),
        "generated_mean": dict(zip(cell_counts.COUNT_NAMES, fake.mean(axis=0).tolist())),
        "scale": scale, "detector": {"module": "gan_zoo.metrics.cell_counts", **config.to_dict()},
        "protocol": (f"{fake.shape[0]} generated vs {real.shape[0]} test tiles at {side} px; per tile (cancer "
                     f"cells, other cells, cancer cells per {config.density_area:,.0f} tissue pixels) from colour "
                     "deconvolution (Ruifrok & Johnston 2001), Otsu threshold and watershed, at the stored tiles' "
                     "scale; cancer / other by an unvalidated morphological rule; Frechet distance of the 3-d "
                     "vectors (the paper: a cell classifier's counts, 5000 vs 5000)"),
    }
