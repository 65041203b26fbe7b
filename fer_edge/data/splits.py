"""Evaluation protocols: official splits, seeded validation holdouts, subject-independent folds.

Everything a training run needs to reproduce its split is a *selector* (see
``dataset.select``), which bundles store in their provenance. Folds are generated
as boolean masks and turned into selectors with ``fold_selectors``.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import DataError
from .dataset import FaceDataset

Fold = tuple[np.ndarray, np.ndarray, str]  # (train_mask, test_mask, fold_name)


def protocol_selectors(ds: FaceDataset, val_fraction: float = 0.1, seed: int = 0) -> dict[str, dict]:
    """{"train": sel, "val": sel, "test": sel} for a dataset with an official split.

    FER2013/FER+: train=Training, val=PublicTest, test=PrivateTest. A dataset with a
    train and test split but no validation split gets a stratified, seeded validation
    holdout carved from training. Datasets without official splits (JAFFE, CK+) need
    subject folds instead, which is said clearly.
    """
    roles = ds.roles
    missing = [r for r in ("train", "test") if r not in roles]
    if missing:
        have = sorted(set(ds.splits.tolist()))
        advice = ("use subject-independent folds (subject_kfold / leave_one_subject_out) instead"
                  if ds.subjects is not None else "name split folders train/val/test (or Training/PublicTest/PrivateTest)")
        raise DataError(f"{ds.name}: no official {' or '.join(missing)} split (splits: {have}); {advice}")
    if "val" in roles:
        return {"train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}}
    hold = {"fraction": float(val_fraction), "seed": int(seed)}
    return {
        "train": {"split": "train", "holdout": {**hold, "part": "rest"}},
        "val": {"split": "train", "holdout": {**hold, "part": "holdout"}},
        "test": {"split": "test"},
    }


def _subjects(ds: FaceDataset) -> np.ndarray:
    if ds.subjects is None:
        raise DataError(f"{ds.name}: has no subject ids, so subject-independent folds are impossible")
    return ds.subjects


def _check_disjoint(subjects: np.ndarray, train: np.ndarray, test: np.ndarray, name: str) -> None:
    shared = set(subjects[train].tolist()) & set(subjects[test].tolist())
    # An invariant of the fold construction, not a user error: keep it an assertion.
    assert not shared, f"fold {name}: subjects {sorted(shared)} are in both train and test"
    assert not (train & test).any(), f"fold {name}: a sample is in both train and test"


def leave_one_subject_out(ds: FaceDataset) -> Iterator[Fold]:
    """One fold per subject: test on that subject, train on all others."""
    subjects = _subjects(ds)
    for subject in sorted(set(subjects.tolist())):
        test = subjects == subject
        train = ~test
        name = f"loso-{subject}"
        _check_disjoint(subjects, train, test, name)
        yield train, test, name


def subject_groups(ds: FaceDataset, k: int, seed: int = 0) -> list[list[str]]:
    """Split the subjects into ``k`` groups of about equal sample count (seeded, greedy)."""
    subjects = _subjects(ds)
    names, counts = np.unique(subjects, return_counts=True)
    if not 2 <= k <= len(names):
        raise DataError(f"{ds.name}: k={k} folds needs 2 <= k <= number of subjects ({len(names)})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]  # big subjects first, ties shuffled
    groups: list[list[str]] = [[] for _ in range(k)]
    sizes = np.zeros(k, np.int64)
    for i in order:
        g = int(np.argmin(sizes))
        groups[g].append(str(names[i]))
        sizes[g] += counts[i]
    return [sorted(g) for g in groups]


def subject_kfold(ds: FaceDataset, k: int = 5, seed: int = 0) -> Iterator[Fold]:
    """k folds with disjoint subject sets; every sample is in exactly one test fold."""
    subjects = _subjects(ds)
    for i, group in enumerate(subject_groups(ds, k, seed)):
        test = np.isin(subjects, np.asarray(group, dtype=str))
        train = ~test
        name = f"fold{i + 1}of{k}"
        _check_disjoint(subjects, train, test, name)
        yield train, test, name


def folds(ds: FaceDataset, scheme: str = "loso", k: int = 5, seed: int = 0) -> Iterator[Fold]:
    """``scheme`` "loso" or "kfold" (subject-independent either way)."""
    if scheme == "loso":
        return leave_one_subject_out(ds)
    if scheme == "kfold":
        return subject_kfold(ds, k, seed)
    raise DataError(f"fold scheme must be 'loso' or 'kfold', not {scheme!r}")


def fold_selectors(ds: FaceDataset, test_mask: np.ndarray) -> tuple[dict, dict]:
    """(train selector, test selector) for a subject fold, to store in bundle provenance.

    The mask must cover whole subjects (as the fold generators produce); anything else
    cannot be written as a subject selector and is refused rather than approximated.
    """
    subjects = _subjects(ds)
    test_mask = np.asarray(test_mask, dtype=bool)
    if test_mask.shape != subjects.shape:
        raise DataError(f"{ds.name}: fold mask has {test_mask.size} entries for {len(subjects)} samples")
    test_subjects = sorted(set(subjects[test_mask].tolist()))
    partial = sorted(set(subjects[~test_mask].tolist()) & set(test_subjects))
    if partial:
        raise DataError(f"{ds.name}: fold splits subjects {partial[:5]} between train and test")
    return {"exclude_subjects": test_subjects}, {"subjects": test_subjects}
