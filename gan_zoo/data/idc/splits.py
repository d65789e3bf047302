"""IDC patient splits (the Cruz-Roa split, random, k-fold) and class balance."""

import collections
import logging
import random

from gan_zoo.data.splits import (
    DEFAULT_FRACTIONS,
    assert_disjoint,
    kfold_by_group,
    split_by_group,
)

logger = logging.getLogger(__name__)

# The standard patient-level split of Cruz-Roa et al. 2014, reused by
# Janowczyk & Madabhushi 2016: 84 train / 29 validation / 49 test patients of
# the 162-patient release. Lists as given in the project's data notes
# (shared/data/README.md). Train is "every other patient present".
CRUZ_ROA_VALIDATION_PATIENTS = frozenset("""
    13688 9381 16554 12867 12880 9076 12626 10299 8959 9023 15473 12896 13591
    13461 9078 9324 9022 8956 9036 10260 10269 10261 8917 10277 12875 16896
    9345 8914 8867
""".split())
CRUZ_ROA_TEST_PATIENTS = frozenset("""
    12909 9382 9075 9290 12881 12895 8864 14191 10259 10274 10303 12907 9225
    13402 10295 10306 9176 13023 12821 10307 9322 9073 12905 13106 12906 13401
    13403 10292 9261 8916 8918 9254 15515 13458 16550 9250 9347 14081 12826
    13460 10276 10273 14189 9181 13687 10286 10255 10301 9125
""".split())


def cruz_roa_assignment(patients):
    """Cruz-Roa et al.'s split of the `patients` present, for `PatientSplitter.fixed`.

    The Kaggle copy of the release lacks the 49 test patients: then the 29
    validation patients become the test set, and the validation patients
    are carved from the others.

    Args:
        patients: the patient ids of the data.

    Returns:
        `({"validation": ..., "test": ...} or {"test": ...}, note)`, or
        `(None, reason)` when none of the listed patients is present.
    """
    present = {str(p) for p in patients}
    validation = present & CRUZ_ROA_VALIDATION_PATIENTS
    test = present & CRUZ_ROA_TEST_PATIENTS
    if test:
        return {"validation": validation, "test": test}, "cruz_roa patient split"
    if validation:
        return {"test": validation}, ("cruz_roa: its 49 test patients are absent, so its "
                                      "29 validation patients are the test set")
    return None, "none of Cruz-Roa et al.'s listed patients is present"


class IDCSplit(dict):
    """`{"train", "validation", "test"} -> set of patients`, plus metadata.

    Attributes:
        scheme: `"cruz_roa"` or `"random"`.
        absent: for `"cruz_roa"`, `{split: listed patients not present}`.
    """

    def __init__(self, splits, scheme, absent=None):
        super().__init__(splits)
        self.scheme = scheme
        self.absent = absent or {}


def idc_split(dataset, scheme="cruz_roa", seed=0, fractions=None, stratify=True):
    """Patient-level train / validation / test split of an `IDCDataset`.

    Args:
        dataset: an `IDCDataset`.
        scheme: `"cruz_roa"`: the standard split of Cruz-Roa et al. 2014
            (validation = `CRUZ_ROA_VALIDATION_PATIENTS`, test =
            `CRUZ_ROA_TEST_PATIENTS`, train = every other patient present).
            On the 162-patient original release train has 84 patients; the
            Kaggle copy has more patient folders, so train is larger there.
            Listed patients that are missing (the local copy lacks all 49
            test patients) are reported in the result's `absent` and logged.
            `"random"`: a seeded random split by patient (`fractions`,
            default `splits.DEFAULT_FRACTIONS`, 70/15/15 %), stratified by
            the classes each patient has when `stratify`.
        seed: seed of the random scheme (ignored by `cruz_roa`).
        fractions: `{"train", "validation", "test"}` fractions for `random`.
        stratify: stratify the random split (see `gan_zoo.data.splits`).

    Returns:
        An `IDCSplit` (a dict of sets of patient ids). Always disjoint.
    """
    present = set(dataset.patients)
    if scheme == "cruz_roa":
        if fractions is not None:
            raise ValueError("fractions apply to scheme='random' only.")
        validation = present & CRUZ_ROA_VALIDATION_PATIENTS
        test = present & CRUZ_ROA_TEST_PATIENTS
        train = present - validation - test
        absent = {
            "validation": frozenset(CRUZ_ROA_VALIDATION_PATIENTS - present),
            "test": frozenset(CRUZ_ROA_TEST_PATIENTS - present),
        }
        for name, missing in absent.items():
            if missing:
                listed = len(CRUZ_ROA_VALIDATION_PATIENTS if name == "validation"
                             else CRUZ_ROA_TEST_PATIENTS)
                logger.warning(
                    "cruz_roa split: %d of the %d listed %s patients are "
                    "absent from %s%s", len(missing), listed, name,
                    dataset.root,
                    f" ({name} is empty)" if len(missing) == listed else "",
                )
        result = IDCSplit(
            {"train": train, "validation": validation, "test": test},
            scheme, absent,
        )
    elif scheme == "random":
        fractions = dict(fractions or DEFAULT_FRACTIONS)
        if set(fractions) != {"train", "validation", "test"}:
            raise ValueError(
                "fractions must name 'train', 'validation' and 'test', got "
                f"{sorted(fractions)}."
            )
        groups = [p.patient for p in dataset.patches]
        labels = [p.label for p in dataset.patches] if stratify else None
        result = IDCSplit(
            split_by_group(groups, fractions, seed, labels=labels), scheme
        )
    else:
        raise ValueError(
            f"Unknown IDC split scheme {scheme!r}: use 'cruz_roa' or 'random'."
        )
    assert_disjoint(result)
    return result


def idc_kfold(dataset, k=5, seed=0, stratify=True):
    """K patient-level folds of an `IDCDataset`.

    Every patient is in exactly one fold's test set; see
    `gan_zoo.data.splits.kfold_by_group`.

    Args:
        dataset: an `IDCDataset`.
        k: number of folds, 2 <= k <= number of patients.
        seed: seed of the assignment (independent of the patch order).
        stratify: spread patients with only healthy, only IDC, and both
            kinds of patches evenly over the folds.

    Returns:
        A list of `k` pairs `(train_patients, test_patients)` of sets of
        patient ids. Each pair is disjoint.
    """
    groups = [p.patient for p in dataset.patches]
    labels = [p.label for p in dataset.patches] if stratify else None
    folds = kfold_by_group(groups, k, seed, labels=labels)
    for train, test in folds:
        assert_disjoint({"train": train, "test": test})
    return folds


def class_weights(labels, num_classes=2):
    """Inverse-frequency class weights for `fit(class_weight=...)`.

    `w_c = N / (num_classes * n_c)`, so the mean weight over the samples is
    exactly 1 and the loss keeps its scale.

    Raises:
        ValueError: a class has no samples, or a label is out of range.
    """
    counts = collections.Counter(int(y) for y in labels)
    n = sum(counts.values())
    bad = sorted(set(counts) - set(range(num_classes)))
    if bad:
        raise ValueError(f"Labels {bad} are outside 0..{num_classes - 1}.")
    empty = [c for c in range(num_classes) if counts[c] == 0]
    if empty:
        raise ValueError(
            f"Classes {empty} have no samples; class weights are undefined."
        )
    return {c: n / (num_classes * counts[c]) for c in range(num_classes)}


def balanced_records(records, seed=0, method="undersample"):
    """Records re-sampled to equal class counts, shuffled.

    Args:
        records: objects with a `label` (ImageRecord, IDCPatch).
        seed: random seed.
        method: `"undersample"`: keep a random subset of each class of the
            minority's size (no duplicates; drops data). `"oversample"`: keep
            everything and add random duplicates of the smaller classes up to
            the majority's size.

    Alternative without duplicating or dropping records: keep all of them
    and pass `class_weights(...)` to `fit`, or sample per-class
    `tf.data` datasets with `tf.data.Dataset.sample_from_datasets`.
    """
    if method not in ("undersample", "oversample"):
        raise ValueError(
            f"method must be 'undersample' or 'oversample', got {method!r}."
        )
    by_class = collections.defaultdict(list)
    for r in records:
        if r.label is None:
            raise ValueError(f"Record {r!r} has no label.")
        by_class[r.label].append(r)
    if not by_class:
        return []
    rng = random.Random(seed)
    sizes = [len(v) for v in by_class.values()]
    out = []
    for label in sorted(by_class):
        members = by_class[label]
        if method == "undersample":
            out.extend(rng.sample(members, min(sizes)))
        else:
            extra = max(sizes) - len(members)
            out.extend(members)
            out.extend(rng.choice(members) for _ in range(extra))
    rng.shuffle(out)
    return out
