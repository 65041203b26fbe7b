"""`prepare` cache: atomic .npz + JSON sidecar that loads back identical and fast."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from fer_edge.data import load_dataset
from fer_edge.data.cache import load_npz, save_npz, sidecar_path
from fer_edge.data.report import prepare
from fer_edge.errors import DataError


def _same(a, b):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.label_names == b.label_names and a.roles == b.roles and a.name == b.name
    assert (a.splits == b.splits).all() and (a.sources == b.sources).all()
    for attr in ("subjects", "sequences", "soft_labels"):
        x, y = getattr(a, attr), getattr(b, attr)
        assert (x is None) == (y is None), attr
        if x is not None:
            np.testing.assert_array_equal(x, y)


def test_ckplus_roundtrip_keeps_subjects_and_sequences(tmp_path, ckplus_dir):
    out = tmp_path / "ck.npz"
    summary = prepare(ckplus_dir, out)
    assert summary["samples"] == 981 and summary["kind"] == "ckplus48"
    back = load_dataset(out)
    _same(load_dataset(ckplus_dir), back)
    assert back.info["kind"] == "ckplus48"
    side = json.loads(sidecar_path(out).read_text())
    assert side["num_samples"] == 981 and side["subjects"] == 118
    assert [p.name for p in tmp_path.iterdir()] and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    with pytest.raises(DataError, match="already exists"):
        prepare(ckplus_dir, out)
    prepare(ckplus_dir, out, overwrite=True)


def test_fer2013_and_ferplus_soft_cache_roundtrip(tmp_path, fer2013, ferplus_csv):
    part = fer2013.subset(np.arange(0, len(fer2013), 10))  # every 10th row keeps the test quick
    out = save_npz(part, tmp_path / "fer.npz")
    t0 = time.perf_counter()
    back = load_npz(out)
    print(f"\nFER2013 1/10 cache: {out.stat().st_size / 1e6:.1f} MB, loads in {time.perf_counter() - t0:.2f} s")
    _same(part, back)
    soft = load_dataset(ferplus_csv, mode="soft", fer2013=fer2013)
    soft = soft.subset(np.arange(0, len(soft), 10))
    back = load_npz(save_npz(soft, tmp_path / "soft.npz"))
    _same(soft, back)
    assert back.info["mode"] == "soft" and back.soft_labels.dtype == np.float32


def test_bad_cache_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(DataError, match="not a fer-edge dataset cache"):
        load_dataset(other)
    with pytest.raises(DataError, match="must end in .npz"):
        prepare(tmp_path, tmp_path / "x.zip")
