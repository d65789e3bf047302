"""Patient-level (group-level) splits.

Images of one patient are strongly correlated, so a patient must never have
images in two splits. Everything here works on *groups* (patient ids as
strings): a split is a set of groups, and `select` turns a set of groups back
into the records that belong to them.

Stratification: pass `labels` (one per entry of `groups`) to `split_by_group`
or `kfold_by_group` and each group is given a stratum, the set of labels it
has (e.g. `{0}`, `{1}` or `{0, 1}`). Groups are shuffled within each stratum
and dealt to the splits so that every split receives its share of every
stratum. A split that gets at least one group with both classes, or one group
of each single-class stratum, therefore has both classes; that is guaranteed
whenever a split's share of a stratum rounds to one group or more, and is
"when possible" otherwise (a split of two patients cannot hold three strata).

Example:

    >>> splits = split_by_group(["a", "a", "b", "c", "d"], seed=1)
    >>> assert_disjoint(splits)
    >>> train = select(records, splits["train"])
"""

import collections
import dataclasses
import math
import random

DEFAULT_FRACTIONS = {"train": 0.7, "validation": 0.15, "test": 0.15}

UNLABELLED = -1
"""The label `hide_labels` gives a record whose label is hidden."""


def natural_key(group):
    """Sort key for patient ids: numeric ids as numbers, then others as text.

    So "9" sorts before "10", and "a" after every numeric id.
    """
    group = str(group)
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


def _unique_groups(groups, labels=None):
    """Sorted unique groups and, with labels, each group's stratum."""
    groups = list(groups)
    missing = [i for i, g in enumerate(groups) if g is None]
    if missing:
        raise ValueError(
            f"{len(missing)} entries have no group (None), e.g. at position "
            f"{missing[0]}; every record needs a patient/group to be split."
        )
    groups = [str(g) for g in groups]
    strata = None
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(groups):
            raise ValueError(
                f"labels has {len(labels)} entries but groups has "
                f"{len(groups)}; they must be parallel."
            )
        seen = collections.defaultdict(set)
        for g, y in zip(groups, labels):
            seen[g].add(y)
        strata = {g: tuple(sorted(ys, key=repr)) for g, ys in seen.items()}
    unique = sorted(set(groups), key=natural_key)
    if not unique:
        raise ValueError("No groups to split.")
    return unique, strata


def _ordered(unique, strata, rng):
    """Groups shuffled, and grouped by stratum when strata are given."""
    if strata is None:
        order = list(unique)
        rng.shuffle(order)
        return order
    by_stratum = collections.defaultdict(list)
    for g in unique:
        by_stratum[strata[g]].append(g)
    order = []
    for key in sorted(by_stratum, key=repr):
        members = by_stratum[key]
        rng.shuffle(members)
        order.extend(members)
    return order


def _split_counts(n, fractions):
    """Largest-remainder counts; every positive fraction gets >= 1 group."""
    names = list(fractions)
    positive = [k for k in names if fractions[k] > 0]
    if n < len(positive):
        raise ValueError(
            f"Cannot split {n} groups into {len(positive)} non-empty splits "
            f"{positive}."
        )
    raw = {k: n * fractions[k] for k in names}
    counts = {k: math.floor(raw[k]) for k in names}
    for k in positive:
        if counts[k] == 0:
            counts[k] = 1
    while sum(counts.values()) > n:
        # Take back from the split most above its exact share (keeping >= 1).
        k = max((k for k in positive if counts[k] > 1),
                key=lambda k: counts[k] - raw[k])
        counts[k] -= 1
    while sum(counts.values()) < n:
        k = max(positive, key=lambda k: (raw[k] - counts[k], -names.index(k)))
        counts[k] += 1
    return counts


def _check_fractions(fractions):
    if not fractions:
        raise ValueError("fractions must name at least one split.")
    bad = {k: v for k, v in fractions.items() if not 0 <= v <= 1}
    if bad:
        raise ValueError(f"Fractions must lie in [0, 1], got {bad}.")
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"Fractions must sum to 1, got {total} from {fractions}.")


def split_by_group(groups, fractions=None, seed=0, *, labels=None):
    """Randomly assigns whole groups (patients) to named splits.

    Args:
        groups: group of each record (repeats allowed), or the unique groups.
        fractions: `{split name: fraction of groups}`, summing to 1; default
            70 / 15 / 15 % train / validation / test. Fractions count
            groups, not records.
        seed: the assignment depends only on the seed and the set of groups
            (not on their order).
        labels: optional label per entry of `groups`, to stratify (see the
            module docstring).

    Returns:
        `{split name: set of groups}`; every group is in exactly one split.
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    _check_fractions(fractions)
    unique, strata = _unique_groups(groups, labels)
    order = _ordered(unique, strata, random.Random(seed))
    counts = _split_counts(len(order), fractions)
    # Deal groups one at a time to the split furthest behind its quota, so
    # each stratum (a contiguous run of `order`) is spread proportionally.
    splits = {k: set() for k in fractions}
    n = len(order)
    for i, g in enumerate(order):
        k = max(
            (k for k in fractions if len(splits[k]) < counts[k]),
            key=lambda k: (counts[k] * (i + 1) / n - len(splits[k]),
                           -list(fractions).index(k)),
        )
        splits[k].add(g)
    assert_disjoint(splits)
    return splits


def kfold_by_group(groups, k, seed=0, *, labels=None):
    """K folds over groups: each group is in exactly one fold's test set.

    Args:
        groups: group of each record (repeats allowed).
        k: number of folds, 2 <= k <= number of groups.
        seed: random seed (independent of the input order).
        labels: optional labels parallel to `groups`, to stratify folds.

    Returns:
        A list of `k` pairs `(train_groups, test_groups)` of sets.
    """
    unique, strata = _unique_groups(groups, labels)
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}.")
    if k > len(unique):
        raise ValueError(f"k={k} folds need at least {k} groups, got {len(unique)}.")
    order = _ordered(unique, strata, random.Random(seed))
    folds = [set(order[i::k]) for i in range(k)]
    everyone = set(unique)
    return [(everyone - test, test) for test in folds]


def assert_disjoint(splits):
    """Raises ValueError naming every group found in more than one split.

    Args:
        splits: `{split name: iterable of groups}`.
    """
    owners = collections.defaultdict(list)
    for name, members in splits.items():
        for g in set(members):
            owners[g].append(name)
    overlap = {g: names for g, names in owners.items() if len(names) > 1}
    if overlap:
        shown = sorted(overlap, key=natural_key)
        detail = "; ".join(
            f"{g!r} in {' and '.join(overlap[g])}" for g in shown[:20]
        )
        more = f" (and {len(shown) - 20} more)" if len(shown) > 20 else ""
        raise ValueError(
            f"{len(overlap)} patients/groups are in more than one split: "
            f"{detail}{more}."
        )


def select(records, groups):
    """The records whose `group` attribute is in `groups`, in input order."""
    wanted = {str(g) for g in groups}
    return [r for r in records if r.group is not None and str(r.group) in wanted]


def hide_labels(records, labelled_fraction, seed=0):
    """Keeps the labels of a random `labelled_fraction` of records per class.

    For semi-supervised training: the other records get label `UNLABELLED`
    (-1), so they can still train a GAN's real/fake head. The choice is per
    record (patch), stratified by class, seeded, and independent of record
    order.

    Args:
        records: `ImageRecord`-like dataclasses with a `path` and an integer
            `label` >= 0.
        labelled_fraction: in (0, 1]: the share of each class that keeps its
            label, rounded, and at least one record per class.
        seed: seed of the choice.

    Returns:
        New records in the input order.

    Raises:
        ValueError: `labelled_fraction` is out of range, or a record has no
            label (None or negative).
    """
    if not 0.0 < labelled_fraction <= 1.0:
        raise ValueError(f"labelled_fraction must be in (0, 1], got {labelled_fraction}.")
    by_class = collections.defaultdict(list)
    for index, record in enumerate(records):
        if record.label is None or record.label < 0:
            raise ValueError(f"{record.path} has no label to keep or hide.")
        by_class[record.label].append(index)
    rng = random.Random(seed)
    keep = set()
    for label in sorted(by_class):
        indices = sorted(by_class[label], key=lambda i: str(records[i].path))
        rng.shuffle(indices)
        keep.update(indices[: max(1, round(labelled_fraction * len(indices)))])
    return [
        r if i in keep else dataclasses.replace(r, label=UNLABELLED)
        for i, r in enumerate(records)
    ]
