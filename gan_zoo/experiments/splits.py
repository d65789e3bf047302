"""Patient splits of an experiment, made one way for every recipe.

Images of one patient are correlated, so every split here is by patient and
stratified by each patient's label pattern ({0}, {1}, {0, 1}). A `Split`
holds the records of its parts (`train`, `validation`, `test`) and a note
saying how it was made; the protocol built on it is always the same:
models train on `train`, options and thresholds are chosen on `validation`,
and `test` is scored once, at the end.

Schemes (`PatientSplitter` methods):

- `random(records, fractions)`: seeded train / validation / test shares of
  the patients (default 70 / 15 / 15).
- `fixed(records, {part: patients})`: a published split (e.g. Cruz-Roa's
  IDC patients); validation carved from training when it lists none.
- `kfold(records, k)`: k folds, each patient tested once; in each fold a
  `validation_share` of the training patients is carved out. With
  `tune=True` a fold's test patients are not used at all: its validation
  patients are scored (`scored == "validation"`) and a second carve-out of
  its training patients sets the thresholds, so options can be chosen on
  training patients only.
- `held_out(records, test_records)`: a separate test folder (`--test-dir`);
  patients found in both are removed from the training folder's records,
  and their number is recorded.
- `by_image(records, fractions, paper)`: images, not patients, assigned to
  the parts, as some papers split: only to reproduce such a paper's
  protocol. Patients then leak across the parts and the scores are
  optimistic; the split's note and `leaks_patients` say so.

Records can be any objects: the splitter is told how to read a record's
patient and label (`ImageRecord.group`, `MammogramRecord.patient_id`).
"""

import dataclasses

from gan_zoo.data.splits import DEFAULT_FRACTIONS, kfold_by_group, split_by_group
from gan_zoo.errors import UsageError

PARTS = ("train", "validation", "test")


class SplitError(UsageError, ValueError):
    """A split cannot be made from this data as asked (one line, exit status 2)."""


@dataclasses.dataclass
class Split:
    """One patient split: records per part and how they were chosen.

    Attributes:
        name: `"split"`, or the fold's name (`"fold0"`, ...).
        parts: `{"train", "validation", "test"}` -> records.
        note: how the split was made, for tables and metrics.json.
        scored: `"test"`, or `"validation"` in tuning mode (the fold's
            test patients were not read; these are validation patients).
        patient: the function that reads a record's patient.
        removed_patients: patients dropped from training because a
            separate test folder holds them too (`held_out`).
        leaks_patients: the parts were drawn by image (`by_image`), so one
            patient's images may be in several parts.
    """

    name: str
    parts: dict
    note: str
    scored: str = "test"
    patient: object = dataclasses.field(default=lambda record: record.group, repr=False)
    removed_patients: int = 0
    leaks_patients: bool = False

    def __getitem__(self, part):
        return self.parts[part]

    def patients(self, part):
        """The sorted patient ids of one part."""
        return sorted({str(self.patient(r)) for r in self.parts[part]})

    def summary(self):
        """JSON for metrics.json: the note, and patients and records per part."""
        summary = {
            "name": self.name,
            "note": self.note,
            "scored": self.scored,
            "patients": {part: len(self.patients(part)) for part in self.parts},
            "records": {part: len(records) for part, records in self.parts.items()},
        }
        if self.removed_patients:
            summary["patients_removed_from_training"] = self.removed_patients
        if self.leaks_patients:
            summary["leaks_patients"] = True
        return summary


class PatientSplitter:
    """Makes `Split`s of records by patient, stratified by label pattern.

    Args:
        patient: `record -> patient id` (default: `record.group`).
        label: `record -> label` for stratification (default
            `record.label`; None labels count as their own stratum).
        seed: seed of every random assignment.
        validation_share: share of training patients carved out as
            validation patients where a scheme has none.
    """

    def __init__(self, *, patient=None, label=None, seed=0, validation_share=0.15):
        if not 0.0 < validation_share < 1.0:
            raise SplitError(f"The validation share must be in (0, 1); got {validation_share}.")
        self.patient = patient or (lambda record: record.group)
        self.label = label or (lambda record: record.label)
        self.seed = seed
        self.validation_share = validation_share

    # ------------------------------------------------------------- schemes

    def random(self, records, fractions=None):
        """Seeded shares of the patients (default 70 / 15 / 15 %)."""
        fractions = dict(fractions or DEFAULT_FRACTIONS)
        if set(fractions) != set(PARTS):
            raise SplitError(f"Split fractions must name {PARTS}; got {sorted(fractions)}.")
        groups = self._groups(records, fractions)
        parts = {part: self._select(records, groups[part]) for part in PARTS}
        shares = "/".join(f"{100 * fractions[p]:g}" for p in PARTS)
        return self._checked(Split("split", parts, f"random patient split {shares} (seed {self.seed})",
                                   patient=self.patient))

    def fixed(self, records, assignment, note):
        """A given patient assignment; validation carved from training if it has none.

        Args:
            records: every record.
            assignment: `{part: patient ids}` for `train` (default: every
                patient not listed elsewhere), `validation` (optional) and
                `test`.
            note: how the split was made (e.g. "Cruz-Roa et al.'s split").
        """
        listed = {part: {str(p) for p in assignment.get(part, ())} for part in PARTS}
        if "train" not in assignment:
            listed["train"] = {str(self.patient(r)) for r in records} - listed["validation"] - listed["test"]
        parts = {part: self._select(records, listed[part]) for part in PARTS}
        if not parts["validation"]:
            parts["train"], parts["validation"] = self.carve(parts["train"])
            note += f"; validation = a seeded {self.validation_share:g} of the training patients"
        return self._checked(Split("split", parts, note, patient=self.patient))

    def kfold(self, records, k=5, *, only=None, tune=False):
        """k patient folds; validation carved from each fold's training patients.

        Args:
            records: every record.
            k: number of folds (at least 2).
            only: fold indices to make (None: all).
            tune: leave each fold's test patients out: its validation
                patients become the scored part and a second carve-out of
                its training patients the validation part.
        """
        if k < 2:
            raise SplitError(f"k-fold cross-validation needs at least 2 folds; got {k}.")
        if only is not None and max(only) >= k:
            raise SplitError(f"Fold indices run from 0 to {k - 1}; got {max(only)}.")
        groups = [str(self.patient(r)) for r in records]
        if k > len(set(groups)):
            raise SplitError(f"{k} folds need at least {k} patients; the data has {len(set(groups))}.")
        folds = kfold_by_group(groups, k, self.seed, labels=[self.label(r) for r in records])
        note = (f"{k}-fold cross-validation by patient (seed {self.seed}); validation = "
                f"{self.validation_share:g} of each fold's training patients")
        if tune:
            note += ("; TUNING: each fold's test patients are not read, its validation patients "
                     f"are scored, thresholds come from a further {self.validation_share:g} "
                     "of its training patients")
        splits = []
        for index, (train, test) in enumerate(folds):
            if only is not None and index not in only:
                continue
            train, validation = self.carve(self._select(records, train))
            test = self._select(records, test)
            if tune:
                test = validation
                train, validation = self.carve(train)
            parts = {"train": train, "validation": validation, "test": test}
            splits.append(self._checked(Split(f"fold{index}", parts, note,
                                              scored="validation" if tune else "test",
                                              patient=self.patient)))
        return splits

    def held_out(self, records, test_records, note="separate test folder"):
        """Training / validation from `records`, test from another folder.

        Patients present in both folders are removed from the training
        folder's records, so every test patient is unseen in training.
        """
        tested = {str(self.patient(r)) for r in test_records}
        shared = {str(self.patient(r)) for r in records} & tested
        kept = [r for r in records if str(self.patient(r)) not in shared]
        if not kept:
            raise SplitError(
                "Every training patient is also a test patient: the test folder holds the "
                "training data (give a --test-dir with other patients)."
            )
        train, validation = self.carve(kept)
        note = f"{note}; {len(shared)} of its patients removed from training"
        parts = {"train": train, "validation": validation, "test": list(test_records)}
        return self._checked(Split("split", parts, note, patient=self.patient,
                                   removed_patients=len(shared)))

    def by_image(self, records, test_share, paper):
        """A seeded share of the IMAGES (not patients) as test set: a paper's own protocol.

        The other images all train, as in such papers, which have no
        validation set: the validation part is a seeded `validation_share`
        of the training images themselves (thresholds other than argmax are
        then chosen on training images). Patients leak across train and
        test, so the scores are optimistic; the note says so, and a banner
        is printed when the split is made.

        Args:
            records: every record.
            test_share: the test images' share, in (0, 1).
            paper: whose protocol this is, for the note (e.g. "Johnson 2020's 80/20").
        """
        if not 0.0 < test_share < 1.0:
            raise SplitError(f"The test share must be in (0, 1); got {test_share}.")
        keys = [str(i) for i in range(len(records))]
        labels = [self.label(r) for r in records]
        groups = split_by_group(keys, {"train": 1.0 - test_share, "test": test_share}, self.seed, labels=labels)
        train = [records[int(i)] for i in sorted(groups["train"], key=int)]
        carved = split_by_group([str(i) for i in range(len(train))],
                                {"rest": 1.0 - self.validation_share, "validation": self.validation_share},
                                self.seed, labels=[self.label(r) for r in train])
        parts = {"train": train, "validation": [train[int(i)] for i in sorted(carved["validation"], key=int)],
                 "test": [records[int(i)] for i in sorted(groups["test"], key=int)]}
        note = (f"IMAGE-LEVEL split {100 * (1 - test_share):g}/{100 * test_share:g} (seed {self.seed}), "
                f"{paper} protocol: one patient's images fall in train and test, so the scores are "
                "optimistic and not comparable with patient splits; validation images are training images")
        split = Split("split", parts, note, patient=self.patient, leaks_patients=True)
        empty = [part for part in PARTS if not split.parts[part]]
        if empty:
            raise SplitError(f"The split ({note}) leaves {' and '.join(empty)} without images.")
        print(f"\n{'!' * 78}\n{note}.\n{'!' * 78}\n")  # said loudly, as well as in every result
        return split

    def carve(self, records):
        """(train, validation): a seeded `validation_share` of the patients."""
        shares = {"train": 1.0 - self.validation_share, "validation": self.validation_share}
        groups = self._groups(records, shares)
        return self._select(records, groups["train"]), self._select(records, groups["validation"])

    # ------------------------------------------------------------- helpers

    def _groups(self, records, fractions):
        groups = [str(self.patient(r)) for r in records]
        if len(set(groups)) < len(fractions):
            raise SplitError(
                f"{len(set(groups))} patient(s) cannot be split into {len(fractions)} parts "
                f"({', '.join(fractions)}): every part needs a patient."
            )
        return split_by_group(groups, fractions, self.seed, labels=[self.label(r) for r in records])

    def _select(self, records, patients):
        patients = {str(p) for p in patients}
        return [r for r in records if str(self.patient(r)) in patients]

    def _checked(self, split):
        empty = [part for part in PARTS if not split.parts[part]]
        if empty:
            raise SplitError(f"The split ({split.note}) leaves {' and '.join(empty)} without patients.")
        for part in ("train", "validation"):
            patients = set(split.patients(part))
            for other in PARTS[PARTS.index(part) + 1:]:
                if patients & set(split.patients(other)):
                    raise SplitError(f"Patients in both {part} and {other}: the split leaks.")
        return split
