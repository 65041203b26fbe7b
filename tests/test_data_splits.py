"""Official splits, seeded validation holdouts and subject-independent folds."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.data import select
from fer_edge.data.ckplus import read_ckplus
from fer_edge.data.jaffe import read_jaffe
from fer_edge.data.splits import (
    fold_selectors,
    folds,
    leave_one_subject_out,
    protocol_selectors,
    subject_kfold,
)
from fer_edge.errors import DataError


@pytest.fixture(scope="module")
def jaffe(jaffe_dir):
    return read_jaffe(jaffe_dir, crop=None, size=64)  # subjects are all a fold needs


@pytest.fixture(scope="module")
def ckplus(ckplus_dir):
    return read_ckplus(ckplus_dir)


def _check_folds(ds, fold_iter, expected_folds):
    seen_test = np.zeros(len(ds), int)
    names = []
    for train, test, name in fold_iter:
        names.append(name)
        assert not set(ds.subjects[train]) & set(ds.subjects[test]), name
        assert (train ^ test).all()  # every sample in exactly one side
        seen_test += test
        # the fold written as selectors selects exactly the same samples
        train_sel, test_sel = fold_selectors(ds, test)
        assert sorted(select(ds, test_sel).sources) == sorted(ds.sources[test])
        assert sorted(select(ds, train_sel).sources) == sorted(ds.sources[train])
    assert len(names) == expected_folds and len(set(names)) == expected_folds
    assert (seen_test == 1).all()  # every sample is tested exactly once


def test_jaffe_loso(jaffe):
    assert len(jaffe) == 213
    _check_folds(jaffe, leave_one_subject_out(jaffe), 10)


def test_ckplus_loso_and_kfold(ckplus):
    _check_folds(ckplus, leave_one_subject_out(ckplus), 118)
    _check_folds(ckplus, subject_kfold(ckplus, k=10, seed=0), 10)
    sizes = [test.sum() for _, test, _ in subject_kfold(ckplus, k=10, seed=0)]
    assert max(sizes) - min(sizes) <= 15  # greedy balancing by sample count


def test_kfold_is_seeded(jaffe):
    a = [t for _, t, _ in folds(jaffe, "kfold", k=5, seed=3)]
    b = [t for _, t, _ in folds(jaffe, "kfold", k=5, seed=3)]
    c = [t for _, t, _ in folds(jaffe, "kfold", k=5, seed=4)]
    assert all((x == y).all() for x, y in zip(a, b))
    assert any((x != y).any() for x, y in zip(a, c))


def test_bad_fold_requests(jaffe, fer2013):
    with pytest.raises(DataError, match="2 <= k <= number of subjects"):
        list(subject_kfold(jaffe, k=11))
    with pytest.raises(DataError, match="no subject ids"):
        next(leave_one_subject_out(fer2013))
    half = np.zeros(len(jaffe), bool)
    half[:5] = True  # part of subject KA only
    with pytest.raises(DataError, match="splits subjects"):
        fold_selectors(jaffe, half)
    with pytest.raises(DataError, match="subject-independent"):
        protocol_selectors(jaffe)


def test_fer2013_official_protocol(fer2013):
    sel = protocol_selectors(fer2013)
    assert [len(select(fer2013, sel[r])) for r in ("train", "val", "test")] == [28709, 3589, 3589]


def test_holdout_validation_for_train_test_folders(fer2013):
    # A train/test dataset without validation split gets a seeded stratified holdout.
    ds = fer2013.subset(fer2013.splits != "PublicTest")
    ds.roles = {"train": "Training", "test": "PrivateTest"}
    sel = protocol_selectors(ds, val_fraction=0.1, seed=0)
    train, val = select(ds, sel["train"]), select(ds, sel["val"])
    assert len(train) + len(val) == 28709
    assert not set(train.sources) & set(val.sources)
    assert len(val) == pytest.approx(2871, abs=4)
    # stratified: each class is ~10% in validation
    for i in range(7):
        n = (ds.split("train").labels == i).sum()
        assert abs((val.labels == i).sum() - 0.1 * n) <= 1
    again = select(ds, sel["val"])
    assert (again.sources == val.sources).all()


def test_loso_can_validate_on_another_subject(jaffe):
    # The JAFFE LOSO rows stop on a validation person the fold never trains on: a holdout of the
    # training subjects' own images would score person-dependent accuracy.
    from fer_edge.bundle import InputSpec
    from fer_edge.training.protocols import _loso

    everyone = sorted(set(jaffe.subjects.tolist()))
    cfg = {"type": "loso", "val_from": "next_subject", "folds": [everyone[0], everyone[-1]]}
    tasks = list(_loso(cfg, jaffe, InputSpec(size=(48, 48)), 0, None))
    assert [t.name for t in tasks] == [f"loso-{everyone[0]}", f"loso-{everyone[-1]}"]
    for task, val_subject in zip(tasks, [everyone[1], everyone[0]]):  # the last fold wraps around
        test_subject = task.name.removeprefix("loso-")
        assert task.selectors["val"] == {"subjects": [val_subject]}
        trained = set(select(jaffe, task.selectors["train"]).subjects.tolist())
        assert trained == set(everyone) - {test_subject, val_subject}
        assert len(task.val.y) == int((jaffe.subjects == val_subject).sum())
        assert len(task.train.y) + len(task.val.y) + len(task.test.y) == len(jaffe)
    holdout = next(_loso({"type": "loso", "folds": 1}, jaffe, InputSpec(size=(48, 48)), 0, None))
    assert "holdout" in holdout.selectors["val"]  # the default stays a holdout of the training subjects


def test_loso_next_subject_needs_three_subjects(jaffe):
    # Two subjects leave nobody to train on once one is tested and the other validates: a clear
    # error naming val_from, not an empty training selector.
    from fer_edge.bundle import InputSpec
    from fer_edge.errors import ConfigError
    from fer_edge.training.protocols import _loso

    everyone = sorted(set(jaffe.subjects.tolist()))
    cfg = {"type": "loso", "val_from": "next_subject"}
    two = select(jaffe, {"subjects": everyone[:2]})
    with pytest.raises(ConfigError, match="needs at least 3 subjects"):
        next(_loso(cfg, two, InputSpec(size=(48, 48)), 0, None))
    three = select(jaffe, {"subjects": everyone[:3]})
    task = next(_loso(cfg, three, InputSpec(size=(48, 48)), 0, None))
    assert set(select(three, task.selectors["train"]).subjects.tolist()) == {everyone[2]}
