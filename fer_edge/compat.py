"""Features newer than the oldest Python (3.10) and NumPy (1.24) that fer-edge supports.

A Pi with tflite-runtime 2.14 must stay on NumPy 1.x, and Python 3.10 has no tomllib.
"""

from __future__ import annotations

import numpy as np

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

__all__ = ["tomllib", "popcount"]


def popcount(a: np.ndarray) -> np.ndarray:
    """Set bits per element of an unsigned integer array (np.bitwise_count, NumPy 2, elsewhere)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    a = np.ascontiguousarray(a)
    bits = np.unpackbits(a.view(np.uint8).reshape(*a.shape, a.dtype.itemsize), axis=-1)
    return bits.sum(-1).astype(np.uint8)
