"""PatientSplitter: every scheme splits by patient, stratified, and refuses leaks."""

import collections

import pytest

from gan_zoo.experiments import PatientSplitter, SplitError

Record = collections.namedtuple("Record", "group label index")


def records(patients=20, per_patient=4):
    """Patients 0..n-1; even patients have both labels, odd ones only label 0."""
    out = []
    for p in range(patients):
        for i in range(per_patient):
            label = i % 2 if p % 2 == 0 else 0
            out.append(Record(f"p{p}", label, len(out)))
    return out


def assert_disjoint_by_patient(split):
    seen = {}
    for part in ("train", "validation", "test"):
        for patient in split.patients(part):
            assert patient not in seen, f"{patient} in {seen.get(patient)} and {part}"
            seen[patient] = part


def test_random_split_keeps_every_patient_in_one_part_and_is_seeded():
    data = records()
    split = PatientSplitter(seed=3).random(data)
    assert_disjoint_by_patient(split)
    assert sum(len(split[part]) for part in ("train", "validation", "test")) == len(data)
    again = PatientSplitter(seed=3).random(data)
    other = PatientSplitter(seed=4).random(data)
    assert split.patients("test") == again.patients("test")
    assert split.patients("test") != other.patients("test")
    assert split.summary()["patients"] == {"train": 14, "validation": 3, "test": 3}


def test_kfold_tests_every_patient_once_and_carves_validation_from_training():
    data = records()
    folds = PatientSplitter(seed=0, validation_share=0.2).kfold(data, 5)
    tested = [p for fold in folds for p in fold.patients("test")]
    assert sorted(tested) == sorted({r.group for r in data})
    for fold in folds:
        assert_disjoint_by_patient(fold)
        assert fold.scored == "test"
        # Stratified: each fold's test patients hold both patterns.
        patterns = {int(p[1:]) % 2 for p in fold.patients("test")}
        assert patterns == {0, 1}
    assert [f.name for f in PatientSplitter().kfold(data, 5, only=[1, 3])] == ["fold1", "fold3"]


def test_tuning_mode_never_reads_a_folds_test_patients():
    data = records()
    splitter = PatientSplitter(seed=0, validation_share=0.2)
    plain = splitter.kfold(data, 5, only=[2])[0]
    tuned = splitter.kfold(data, 5, only=[2], tune=True)[0]
    assert tuned.scored == "validation"
    used = set().union(*(tuned.patients(part) for part in ("train", "validation", "test")))
    assert not used & set(plain.patients("test"))
    assert tuned.patients("test") == plain.patients("validation")
    assert_disjoint_by_patient(tuned)


def test_fixed_split_uses_the_given_patients_and_carves_validation():
    data = records()
    split = PatientSplitter(seed=1, validation_share=0.25).fixed(
        data, {"test": ["p0", "p1", "p2"]}, "published split")
    assert split.patients("test") == ["p0", "p1", "p2"]
    assert "published split" in split.note and "validation" in split.note
    assert len(split.patients("validation")) == 4 and len(split.patients("train")) == 13
    assert_disjoint_by_patient(split)


def test_held_out_removes_shared_patients_from_training_and_counts_them():
    train_folder = records(10)
    test_folder = [r for r in records(14) if r.group in {"p8", "p9", "p12", "p13"}]
    split = PatientSplitter(seed=0, validation_share=0.2).held_out(train_folder, test_folder)
    assert split.removed_patients == 2
    assert split.summary()["patients_removed_from_training"] == 2
    assert not {"p8", "p9"} & set(split.patients("train") + split.patients("validation"))
    assert split.patients("test") == ["p12", "p13", "p8", "p9"]


def test_held_out_refuses_a_test_folder_that_is_the_training_folder():
    data = records(6)
    with pytest.raises(SplitError, match="Every training patient is also a test patient"):
        PatientSplitter().held_out(data, data)


@pytest.mark.parametrize("call, message", [
    (lambda s, d: s.kfold(d, 1), "at least 2 folds"),
    (lambda s, d: s.kfold(d, 5, only=[5]), "from 0 to 4"),
    (lambda s, d: s.kfold(d[:12], 5), "at least 5 patients"),
    (lambda s, d: s.random(d[:8]), "cannot be split into 3 parts"),
    (lambda s, d: s.random(d, {"train": 0.5, "test": 0.5}), "must name"),
])
def test_impossible_splits_are_refused_in_one_line(call, message):
    with pytest.raises(SplitError, match=message) as error:
        call(PatientSplitter(), records())
    assert "\n" not in str(error.value)


def test_the_splitter_reads_any_record_type():
    data = [{"patient": f"m{i // 3}", "y": i % 2} for i in range(30)]
    splitter = PatientSplitter(patient=lambda r: r["patient"], label=lambda r: r["y"], seed=0)
    split = splitter.random(data)
    assert_disjoint_by_patient(split)
    assert sum(len(split[p]) for p in ("train", "validation", "test")) == 30


def test_an_image_level_split_reproduces_a_papers_protocol_and_says_it_leaks():
    all_records = records()
    split = PatientSplitter(seed=3).by_image(all_records, 0.2, "Johnson 2020's 80/20")
    sizes = {part: len(split[part]) for part in ("train", "validation", "test")}
    # Every image but the test ones trains, as in the paper; validation is drawn from them.
    assert sizes["train"] + sizes["test"] == len(all_records) and abs(sizes["test"] - 0.2 * len(all_records)) <= 2
    assert {r.index for r in split["validation"]} <= {r.index for r in split["train"]}
    assert split.leaks_patients and split.summary()["leaks_patients"]
    assert "IMAGE-LEVEL" in split.note and "Johnson 2020's 80/20" in split.note
    assert set(split.patients("train")) & set(split.patients("test"))  # patients do leak
    again = PatientSplitter(seed=3).by_image(all_records, 0.2, "x")
    assert [r.index for r in again["test"]] == [r.index for r in split["test"]]  # seeded
