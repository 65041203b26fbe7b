"""The training input pipeline: a dataset too large to copy into the tf.data graph is gathered from
its numpy array by index, and gives exactly the batches of the in-graph path."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the training pipeline needs the train extra")


@pytest.mark.parametrize("seed, soft, weights", [(7, False, False), (7, True, True), (None, False, True)])
def test_gathered_batches_equal_the_in_graph_ones(monkeypatch, seed, soft, weights):
    from fer_edge.training import fitloop

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (203, 12, 12, 1), dtype=np.uint8)
    y = rng.random((203, 4)).astype(np.float32) if soft else rng.integers(0, 4, 203)
    w = rng.random(203).astype(np.float32) if weights else None

    def batches():
        ds = fitloop.dataset(x, y, w, 32, None, seed, (1 / 255, (0.5,)), 4, True)
        return [tuple(t.numpy() for t in b) for b in ds]

    in_graph = batches()
    monkeypatch.setattr(fitloop, "IN_GRAPH_BYTES", 0)  # every array is "large" now
    gathered = batches()
    assert len(gathered) == len(in_graph) == 7  # 203 faces in batches of 32, the last one short
    for a, b in zip(in_graph, gathered):
        assert len(a) == len(b) == (3 if weights else 2)
        for ta, tb in zip(a, b):
            np.testing.assert_array_equal(ta, tb)
    if seed is not None:  # shuffled: not the array's order
        assert not np.array_equal(in_graph[0][0], ((x[:32].astype(np.float32) / 255) - 0.5))


def test_pipeline_runs_without_autotuning():
    """An autotuned iterator's model thread can sleep out its period (up to 60 s) when fit destroys
    the iterator (benchmarks/fit_epoch_stall.py); the training and validation pipelines have none."""
    from fer_edge.training import fitloop

    x = np.zeros((10, 4, 4, 1), np.uint8)
    ds = fitloop.dataset(x, np.zeros(10, int), None, 4, None, 0, (1.0, (0.0,)), 3, True)
    assert ds.options().autotune.enabled is False
    assert sum(len(b[0]) for b in ds) == 10


def test_offline_copies_are_kept_for_a_resume(tmp_path):
    # The JAFFE paper's 79,449 copies at 224 px take tens of minutes: a resumed run reads them back.
    from fer_edge.training.augment import augment_copies

    x = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 1), dtype=np.uint8)
    cfg = {"rotation": 15, "shift": 0.1}
    first, src = augment_copies(x, cfg, 3, seed=0, cache=tmp_path)
    (kept,) = tmp_path.glob("copies-*.npy")
    np.testing.assert_array_equal(np.load(kept), first)
    np.save(kept, np.zeros_like(first))  # what the next call returns must come from the file
    again, src2 = augment_copies(x, cfg, 3, seed=0, cache=tmp_path)
    assert not again.any() and np.array_equal(src, src2)
    other, _ = augment_copies(x, cfg, 3, seed=1, cache=tmp_path)  # another seed: another key, computed
    assert other.any() and len(list(tmp_path.glob("copies-*.npy"))) == 2
