"""Patient-level splits: disjoint, seeded, proportional, stratified."""

import pytest

from gan_zoo.data.image_folder import ImageRecord
from gan_zoo.data.splits import (
    UNLABELLED,
    assert_disjoint,
    hide_labels,
    kfold_by_group,
    natural_key,
    select,
    split_by_group,
)

PATIENTS = [str(1000 + i) for i in range(100)]


def _union(splits):
    out = set()
    for members in splits.values():
        out |= members
    return out


def test_split_is_disjoint_and_complete():
    groups = [p for p in PATIENTS for _ in range(3)]  # several records each
    splits = split_by_group(groups, seed=3)
    assert set(splits) == {"train", "validation", "test"}
    assert_disjoint(splits)
    assert _union(splits) == set(PATIENTS)
    assert sum(len(s) for s in splits.values()) == len(PATIENTS)


def test_split_fractions_count_patients():
    splits = split_by_group(PATIENTS, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {
        "train": 70, "validation": 15, "test": 15}
    splits = split_by_group(PATIENTS[:10], {"a": 0.7, "b": 0.15, "c": 0.15})
    sizes = {k: len(v) for k, v in splits.items()}
    assert sum(sizes.values()) == 10 and sizes["a"] == 7
    assert min(sizes.values()) >= 1


def test_split_every_nonzero_fraction_gets_a_patient():
    splits = split_by_group(PATIENTS[:3], {"a": 0.9, "b": 0.05, "c": 0.05})
    assert [len(splits[k]) for k in "abc"] == [1, 1, 1]
    with pytest.raises(ValueError, match="Cannot split 2 groups"):
        split_by_group(PATIENTS[:2], {"a": 0.9, "b": 0.05, "c": 0.05})


def test_split_is_deterministic_and_order_independent():
    a = split_by_group(PATIENTS, seed=7)
    b = split_by_group(list(reversed(PATIENTS)), seed=7)
    assert a == b
    assert split_by_group(PATIENTS, seed=8) != a


def test_split_rejects_bad_fractions_and_missing_groups():
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_group(PATIENTS, {"train": 0.5, "test": 0.4})
    with pytest.raises(ValueError, match="no group"):
        split_by_group(["a", None, "b"])
    with pytest.raises(ValueError, match="parallel"):
        split_by_group(["a", "b"], labels=[0])


def test_stratified_split_gives_every_split_both_classes():
    # 12 patients with only healthy patches, 12 with only IDC patches.
    groups = [f"h{i}" for i in range(12)] + [f"c{i}" for i in range(12)]
    labels = [0] * 12 + [1] * 12
    for seed in range(20):
        splits = split_by_group(groups, seed=seed, labels=labels)
        for name, members in splits.items():
            classes = {labels[groups.index(g)] for g in members}
            assert classes == {0, 1}, (seed, name, members)


def test_kfold_covers_every_patient_once_as_test():
    folds = kfold_by_group([p for p in PATIENTS for _ in range(2)], k=5, seed=1)
    assert len(folds) == 5
    seen = []
    for train, test in folds:
        assert not train & test
        assert train | test == set(PATIENTS)
        seen.extend(test)
    assert sorted(seen) == sorted(PATIENTS)
    assert {len(test) for _, test in folds} == {20}
    assert kfold_by_group(PATIENTS, k=5, seed=1) == folds


def test_kfold_stratified_and_errors():
    groups = [f"h{i}" for i in range(6)] + [f"c{i}" for i in range(6)]
    labels = [0] * 6 + [1] * 6
    for _, test in kfold_by_group(groups, k=3, labels=labels):
        assert {g[0] for g in test} == {"h", "c"}
    with pytest.raises(ValueError, match="k must be"):
        kfold_by_group(groups, k=1)
    with pytest.raises(ValueError, match="at least 13 groups"):
        kfold_by_group(groups, k=13)


def test_assert_disjoint_names_patients_and_splits():
    with pytest.raises(ValueError) as e:
        assert_disjoint({"train": {"1", "2", "3"}, "validation": {"4"},
                         "test": {"3", "4"}})
    message = str(e.value)
    assert "'3' in train and test" in message
    assert "'4' in validation and test" in message
    assert_disjoint({"train": {"1"}, "test": {"2"}})


def test_select_keeps_records_of_the_groups_in_order():
    records = [ImageRecord(f"{i}.png", i % 2, group=str(i % 4)) for i in range(8)]
    records.append(ImageRecord("nogroup.png", 0))
    chosen = select(records, {"1", "3"})
    assert [r.path for r in chosen] == ["1.png", "3.png", "5.png", "7.png"]
    assert select(records, set()) == []


def test_natural_key_sorts_numeric_ids_as_numbers_then_text():
    ids = ["b", "10", "9", "a", "100"]
    assert sorted(ids, key=natural_key) == ["9", "10", "100", "a", "b"]
    assert natural_key(12) == natural_key("12")


def test_hide_labels_keeps_a_seeded_stratified_fraction():
    records = [ImageRecord(f"{i}.png", int(i < 20)) for i in range(100)]
    hidden = hide_labels(records, 0.1, seed=2)
    assert [r.path for r in hidden] == [r.path for r in records]
    kept = [r for r in hidden if r.label != UNLABELLED]
    assert sorted(r.label for r in kept) == [0] * 8 + [1] * 2  # 10 % of each class
    assert all(r.label == o.label for r, o in zip(hidden, records) if r.label != UNLABELLED)
    assert hide_labels(list(reversed(records)), 0.1, seed=2)[::-1] == hidden
    with pytest.raises(ValueError, match="labelled_fraction"):
        hide_labels(records, 0.0)
    with pytest.raises(ValueError, match="x.png has no label"):
        hide_labels([ImageRecord("x.png")], 0.5)
