"""Duplicate and leakage finder: FER2013's known duplicate groups, plus synthetic cases."""

from __future__ import annotations

import time

import numpy as np

from fer_edge.data.dataset import FaceDataset
from fer_edge.data.leakage import exact_duplicate_groups, leakage_report, near_duplicate_groups


def test_fer2013_duplicates_match_known_numbers(fer2013):
    t0 = time.perf_counter()
    report = leakage_report(fer2013)
    summary = report.summary(fer2013)
    print(f"\nFER2013 exact-duplicate report in {time.perf_counter() - t0:.2f} s")
    ex = summary["exact"]
    assert ex["groups"] == 1516
    assert ex["rows"] == 3369
    assert ex["conflicting_label_groups"] == 56
    assert ex["cross_split_groups"] == 557
    assert summary["near_blank"]["rows"] == 13
    assert sum(ex["cross_split_pairs"].values()) >= 557
    for group in report.exact_groups[:50]:  # groups really are pixel-identical
        assert (fer2013.images[group] == fer2013.images[group[0]]).all()


def test_fer2013_near_duplicates_run_in_seconds(fer2013):
    t0 = time.perf_counter()
    report = leakage_report(fer2013, near=True)
    print(f"\nFER2013 report with near duplicates in {time.perf_counter() - t0:.2f} s")
    near = report.summary(fer2013)["near"]
    assert near["groups"] > 0
    # every near group holds at least two different images
    for g in report.near_groups[:50]:
        imgs = fer2013.images[g].reshape(len(g), -1)
        assert (imgs != imgs[0]).any(1).any()


def _synthetic():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    base = np.stack([np.kron(b[:12, :12], np.ones((4, 4), np.uint8)) for b in base])  # smooth-ish faces
    images = np.concatenate([
        base,
        base[:1],  # 6: exact copy of 0, other split and other label
        np.clip(base[1:2].astype(int) + 3, 0, 255).astype(np.uint8),  # 7: brightened copy of 1
        np.full((1, 48, 48), 128, np.uint8),  # 8: blank
    ])
    labels = np.array([0, 1, 2, 3, 4, 5, 3, 1, 6])
    splits = np.array(["train"] * 6 + ["test", "train", "train"])
    return FaceDataset("synthetic", images, labels, tuple("abcdefg"), splits,
                       np.array([f"img{i}" for i in range(9)]))


def test_synthetic_exact_near_and_blank():
    ds = _synthetic()
    report = leakage_report(ds, near=True)
    s = report.summary(ds)
    assert [sorted(g.tolist()) for g in report.exact_groups] == [[0, 6]]
    assert s["exact"]["cross_split_groups"] == 1 and s["exact"]["conflicting_label_groups"] == 1
    assert s["exact"]["cross_split_pairs"] == {"test/train": 1}
    assert report.near_blank.tolist() == [8]
    assert [sorted(g.tolist()) for g in report.near_groups] == [[1, 7]]
    assert near_duplicate_groups(ds.images, 0, exclude=report.near_blank)[0].tolist() == [1, 7]
    assert exact_duplicate_groups(ds.images[:0]) == []
