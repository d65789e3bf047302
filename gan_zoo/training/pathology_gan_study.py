"""KID / FID protocol and training summary of a PathologyGAN run on H&E tiles.

A PathologyGAN run scores its generator in a feature extractor
(`gan_zoo.training.he_extractor`) against tiles it never trained on:

- `validation_kid_fid`: the callback that scores it against the VALIDATION
  tiles every few epochs (none when the data has no validation split);
- `test_kid_fid`: the test tiles, scored once after training;
- `kid_fid_protocol`: the sentence metrics.json records about both;
- `training_summary`: epochs, final losses, validation scores, throughput
  and times from the epoch logs of `train_gan`.

FID is computed only with more images than feature dimensions on both sides
(`fid_sample_problem`); KID always. The paper's FID compares 5,000
generated with 5,000 real tiles: by default (`n_fake=None`) as many
generated tiles are scored as real ones were read (at most `n_real`, 5,000),
and `paper_counts_note` says when the data holds fewer.
"""

import numpy as np

from gan_zoo.metrics.features import extract_features
from gan_zoo.metrics.generative import fid_sample_problem
from gan_zoo.metrics.scores import compute_scores
from gan_zoo.training.generative_eval import GenerativeEvaluation

SCORE_KEYS = ("kid", "kid_std", "fid")
PAPER_TILES = 5000  # generated and real tiles of the paper's FID
VALIDATION_SEED = 10_000  # seed of the generated tiles of every validation score
TEST_SEED = 123_456  # seed of the generated tiles of the test score


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
