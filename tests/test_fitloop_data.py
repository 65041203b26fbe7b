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
