"""A model's numeric I/O, in one place for the runtime and the Pi bench runner: the manifest's
affine input normalization, int8 input quantization, output dequantization and softmax.

numpy and the standard library only, and no fer_edge imports: ``fer-edge bench --device rpi``
copies this file to the device as ``fer_edge_tensor_io.py`` beside its runner (the Pi has numpy
and a TFLite interpreter, not fer_edge). ``quantization`` params are a manifest's
``quantization.input`` / ``.output``: ``{"scale", "zero_point", "dtype"}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def normalize(x: np.ndarray, scale: float, offset) -> np.ndarray:
    """Float32 pixels 0..255 -> model input ``x * scale - offset`` (per channel), in place."""
    if scale != 1.0:
        x *= np.float32(scale)
    offset = np.asarray(offset, dtype=np.float32)
    if np.any(offset != 0):
        x -= offset
    return x


def quantize(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """float -> integer with the model's input scale/zero point (int8-I/O models)."""
    dtype = np.dtype(params["dtype"])
    info = np.iinfo(dtype)
    q = np.round(x / np.float32(params["scale"])) + int(params["zero_point"])
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    return ((q.astype(np.float32) - np.float32(params["zero_point"])) * np.float32(params["scale"])).astype(np.float32)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def io_mismatch(input_dtype, input_q: dict[str, Any] | None) -> str | None:
    """Why a model whose input has ``input_dtype`` cannot run with this manifest's input
    quantization, or None when they agree."""
    wants_int = np.dtype(input_dtype).kind in "iu"
    if wants_int and not input_q:
        return f"the model takes {np.dtype(input_dtype)} input but the manifest has no quantization.input scale/zero point"
    if input_q and not wants_int:
        return (f"the manifest gives int8 input quantization but the model takes {np.dtype(input_dtype)}; "
                "the manifest does not match its model")
    return None


def model_input(x: np.ndarray, input_q: dict[str, Any] | None) -> np.ndarray:
    """The normalized float input as the model takes it: quantized when its input is integer."""
    return quantize(x, input_q) if input_q else x


def probabilities(raw: np.ndarray, n: int, output_q: dict[str, Any] | None, logits: bool) -> np.ndarray:
    """The model's raw output for ``n`` faces -> float32 (n, K) probabilities: dequantized when
    integer, softmax when the model ends in logits (``quantization.output_kind``)."""
    out = dequantize(raw, output_q) if output_q else raw.astype(np.float32, copy=False)
    out = out.reshape(n, -1)
    return softmax(out) if logits else out
