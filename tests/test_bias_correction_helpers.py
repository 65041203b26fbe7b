"""The pieces the three empirical bias corrections share."""

from __future__ import annotations

import numpy as np

from fer_edge.export.bias_correction import ChannelMeans, corrected_int32_bias, summary


def test_channel_means_over_batches_for_both_layouts():
    rng = np.random.default_rng(0)
    nchw = [rng.normal(size=(n, 4, 3, 5)).astype(np.float32) for n in (2, 5)]
    nhwc = [b.transpose(0, 2, 3, 1) for b in nchw]
    means = ChannelMeans()
    for a, b in zip(nchw, nhwc):
        means.add("nchw", a, axis=1)
        means.add("nhwc", b, axis=-1)
        means.add("nc", a[:, :, 0, 0], axis=1)
    got = means.means()
    want = np.concatenate(nchw).astype(np.float64).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(got["nchw"], want, rtol=1e-12)
    np.testing.assert_allclose(got["nhwc"], want, rtol=1e-12)
    np.testing.assert_allclose(got["nc"], np.concatenate(nchw)[:, :, 0, 0].astype(np.float64).mean(0), rtol=1e-12)


def test_corrected_int32_bias_rounds_clips_and_refuses_other_shapes():
    bias = np.array([10, -5, 2**31 - 2], np.int32)
    err = np.array([0.26, -0.1, -1.0])
    out = corrected_int32_bias(bias, err, np.array([0.1, 0.1, 0.1]))
    assert out.dtype == np.int32 and out.tolist() == [7, -4, 2**31 - 1]  # 10 - 3, -5 + 1, clipped
    assert corrected_int32_bias(bias, err[:2], np.array([0.1])) is None  # not one value per channel
    assert corrected_int32_bias(bias, err, np.array([0.1, 0.1])) is None  # scale neither per-tensor nor per-channel


def test_summary():
    assert summary("m", [0.1, 0.3], 5) == {"method": "m", "layers": 2, "images": 5, "mean_abs_shift": 0.2}
    assert summary("m", [], 5)["mean_abs_shift"] == 0.0
