"""Per-face score smoothing over time: an exponential moving average or a sliding window."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


class NoSmoothing:
    def __init__(self, k: int) -> None:
        self.value = np.zeros(k, np.float32)

    def update(self, probs: np.ndarray) -> np.ndarray:
        self.value[:] = probs
        return self.value


class EmaSmoother:
    """value = alpha * new + (1 - alpha) * value; the first update takes the scores as they are."""

    def __init__(self, k: int, alpha: float) -> None:
        self.alpha = np.float32(alpha)
        self.value = np.zeros(k, np.float32)
        self._started = False

    def update(self, probs: np.ndarray) -> np.ndarray:
        if not self._started:
            self.value[:] = probs
            self._started = True
        else:
            self.value *= 1 - self.alpha
            self.value += self.alpha * np.asarray(probs, np.float32)
        return self.value


class WindowSmoother:
    """Mean of the last ``n`` score vectors (a fixed ring buffer)."""

    def __init__(self, k: int, n: int) -> None:
        self._ring = np.zeros((n, k), np.float32)
        self._sum = np.zeros(k, np.float64)
        self._i = 0
        self._count = 0
        self.value = np.zeros(k, np.float32)

    def update(self, probs: np.ndarray) -> np.ndarray:
        n = len(self._ring)
        self._sum -= self._ring[self._i]
        self._ring[self._i] = probs
        self._sum += self._ring[self._i]
        self._i = (self._i + 1) % n
        self._count = min(self._count + 1, n)
        self.value[:] = self._sum / self._count
        return self.value


def smoother_factory(spec: str):
    """'ema:ALPHA' (0 < ALPHA <= 1), 'window:N' (N >= 1) or 'none' -> a function k -> smoother."""
    text = (spec or "none").strip().lower()
    kind, _, arg = text.partition(":")
    try:
        if kind == "none" and not arg:
            return NoSmoothing
        if kind == "ema":
            alpha = float(arg or 0.5)
            if 0.0 < alpha <= 1.0:
                return lambda k: EmaSmoother(k, alpha)
        if kind == "window":
            n = int(arg or 5)
            if n >= 1:
                return lambda k: WindowSmoother(k, n)
    except ValueError:
        pass
    raise ConfigError(f"--smooth {spec!r}: use ema:ALPHA (0 < ALPHA <= 1), window:N (N >= 1) or none")
