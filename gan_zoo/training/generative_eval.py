"""KID and FID of a generator during training, against validation patients."""

import json
import pathlib

import numpy as np

from gan_zoo.metrics.generative import fid_sample_problem
from gan_zoo.training.callbacks import EvaluationHook


class GenerativeEvaluation(EvaluationHook):
    """Scores the model's samples against a reference split every few epochs.

    KID is computed at every evaluation; FID only when both sets have more
    images than the features have dimensions, so that the covariances have
    full rank (with fewer, FID's matrix square root rests on a regularised,
    rank-deficient estimate and its bias dominates; KID is unbiased at any
    n). The scores go into the epoch logs as `kid`, `kid_std` (and `fid`), so
    `metrics.jsonl` and TensorBoard get them, and each evaluation's full
    provenance (extractor and its weights' hash, n, seeds, reference source
    and split) is appended to `provenance_path` when given.

    The reference must be a validation split: test patients are scored once,
    after training, never to steer it.

    Args:
        reference: `FeatureStats` of the reference images (with features),
            or a source for `gan_zoo.metrics.features.reference_statistics`
            (e.g. the records of the validation patients).
        extractor: a `gan_zoo.metrics.extractors.FeatureExtractor`.
        reference_split: the split the reference comes from (recorded;
            "test" is refused).
        every_epochs: evaluate every this many epochs (and after the last).
        n: generated images per evaluation.
        seed: seed of the generated images (the same each time, so scores
            of successive epochs differ by the model, not the draw).
        labels: labels for a conditional generator (default: classes cycle).
        kid_subset_size: KID subset size (capped at the set sizes).
        cache: `.npz` file for the reference statistics.
        provenance_path: JSON-lines file receiving each score's provenance.
    """

    def __init__(
        self, reference, extractor, *, reference_split="validation", every_epochs=5, n=1000,
        seed=0, labels=None, kid_subset_size=1000, cache=None, provenance_path=None,
    ):
        if str(reference_split).lower() == "test":
            raise ValueError(
                "GenerativeEvaluation: reference_split='test' is refused: score the test "
                "patients once, after training; during training use validation patients."
            )
        if int(n) < 2:
            raise ValueError(f"GenerativeEvaluation: n must be at least 2, got {n}.")
        super().__init__(self._score, every_epochs=every_epochs, prefix="")
        self.reference = reference
        self.extractor = extractor
        self.reference_split = reference_split
        self.n = int(n)
        self.seed = int(seed)
        self.labels = labels
        self.kid_subset_size = int(kid_subset_size)
        self.cache = cache
        self.provenance_path = None if provenance_path is None else pathlib.Path(provenance_path)
        self._real = None

    def reference_statistics(self):
        from gan_zoo.metrics.features import reference_statistics
        from gan_zoo.metrics.scores import FeatureStats

        if self._real is None:
            if isinstance(self.reference, FeatureStats):
                self._real = self.reference
            else:
                self._real = reference_statistics(
                    self.reference, self.extractor, cache=self.cache,
                    split=self.reference_split, progress=False,
                )
        return self._real

    def _score(self, model, epoch):
        from gan_zoo.metrics.features import extract_features
        from gan_zoo.metrics.scores import compute_scores
        from gan_zoo.training.distribute import is_chief

        real = self.reference_statistics()
        fake = extract_features(
            model, self.extractor, n=self.n, seed=self.seed, labels=self.labels,
            name=f"{model.name} epoch {epoch + 1}", progress=False,
        )
        fid_problem = fid_sample_problem(real.n, fake.n, real.mean.shape[0])
        metrics = ("kid",) if fid_problem else ("kid", "fid")
        scores = compute_scores(
            real, fake, metrics=metrics, seed=self.seed,
            kid_subset_size=min(self.kid_subset_size, real.n, fake.n),
        )
        if self.provenance_path is not None and is_chief(model.distribute_strategy):
            self.provenance_path.parent.mkdir(parents=True, exist_ok=True)
            record = {"epoch": epoch + 1, **{k: v for k, v in scores.items()}}
            with self.provenance_path.open("a") as file:
                file.write(json.dumps(record, default=_plain) + "\n")
        return {k: float(v) for k, v in scores.items() if k in ("kid", "kid_std", "fid")}


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
