"""What the three empirical bias corrections share (``tflite_bias``, ``onnx_bias``, ``openvino_bias``).

Each runs the int8 model as deployed and the float model on the calibration images, and per layer
subtracts the mean per-channel output error from the bias, front to back. Only per-channel means are
kept: the mean error is the difference of the means, and whole activations of every layer for
hundreds of images would not fit in memory on larger models.
"""

from __future__ import annotations

from typing import Any, Hashable

import numpy as np


class ChannelMeans:
    """Running per-channel means of tensors seen batch by batch."""

    def __init__(self) -> None:
        self._sums: dict[Hashable, np.ndarray] = {}
        self._counts: dict[Hashable, int] = {}

    def add(self, key: Hashable, values: np.ndarray, axis: int) -> None:
        """Accumulate ``values`` whose channels are on ``axis`` (1 for NCHW / (N, C), -1 for NHWC)."""
        v = np.asarray(values, np.float64)
        if axis in (-1, v.ndim - 1):
            rows = v.reshape(-1, v.shape[-1])  # channels last: sum the rows
            total, n = rows.sum(0), rows.shape[0]
        else:
            cols = np.moveaxis(v, axis, 0).reshape(v.shape[axis], -1)
            total, n = cols.sum(1), cols.shape[1]
        self._sums[key] = self._sums.get(key, 0) + total
        self._counts[key] = self._counts.get(key, 0) + n

    def means(self) -> dict[Hashable, np.ndarray]:
        return {k: self._sums[k] / self._counts[k] for k in self._sums}


def corrected_int32_bias(bias: np.ndarray, err: np.ndarray, scale: np.ndarray) -> np.ndarray | None:
    """``bias`` (int32, in units of ``scale``) minus the float error ``err``, clipped to int32; None
    when it is not one value per output channel (then the layer is left alone)."""
    if bias.shape != err.shape or scale.size not in (1, err.size):
        return None
    out = bias.astype(np.int64) - np.round(err / scale).astype(np.int64)
    return np.clip(out, -(2**31), 2**31 - 1).astype(np.int32)


def summary(method: str, shifts: list[float], images: int) -> dict[str, Any]:
    """What a correction did, for the manifest's ``quantization.profile``."""
    return {"method": method, "layers": len(shifts), "images": int(images),
            "mean_abs_shift": round(float(np.mean(shifts)), 6) if shifts else 0.0}
