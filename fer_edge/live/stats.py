"""Per-stage timings in fixed-size ring buffers: memory stays flat however long the run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

STAGES = ("capture", "detect", "classify", "draw")


class StageTimes:
    """Milliseconds per stage for the last ``capacity`` frames (percentiles and mean over those)."""

    def __init__(self, stages: tuple[str, ...] = STAGES, capacity: int = 1 << 15) -> None:
        self.stages = stages
        self._buf = np.zeros((len(stages), capacity), dtype=np.float32)
        self._index = {s: i for i, s in enumerate(stages)}
        self._pos = 0
        self._count = 0
        self._current = np.zeros(len(stages), dtype=np.float64)

    def add(self, stage: str, ms: float) -> None:
        """Accumulate time for ``stage`` within the current frame."""
        self._current[self._index[stage]] += ms

    def discard_frame(self) -> None:
        self._current[:] = 0.0

    def end_frame(self) -> None:
        self._buf[:, self._pos] = self._current
        self._current[:] = 0.0
        self._pos = (self._pos + 1) % self._buf.shape[1]
        self._count += 1

    def last(self, stage: str) -> float:
        if self._count == 0:
            return 0.0
        return float(self._buf[self._index[stage], (self._pos - 1) % self._buf.shape[1]])

    def recent_means(self, n: int) -> dict[str, float]:
        """Mean ms of each stage over the last ``n`` frames (the live page's once-a-second numbers)."""
        cap = self._buf.shape[1]
        n = max(0, min(int(n), self._count, cap))
        if n == 0:
            return {s: 0.0 for s in self.stages}
        idx = (self._pos - 1 - np.arange(n)) % cap
        means = self._buf[:, idx].mean(axis=1)
        return {s: round(float(means[i]), 3) for i, s in enumerate(self.stages)}

    def percentiles(self, qs: tuple[float, ...] = (50, 90)) -> dict[str, dict[str, float]]:
        n = min(self._count, self._buf.shape[1])
        if n == 0:
            return {s: {**{f"p{int(q)}": 0.0 for q in qs}, "mean": 0.0} for s in self.stages}
        vals = np.percentile(self._buf[:, :n], qs, axis=1)  # (len(qs), stages)
        means = self._buf[:, :n].mean(axis=1)
        return {s: {**{f"p{int(q)}": round(float(vals[j, i]), 3) for j, q in enumerate(qs)},
                    "mean": round(float(means[i]), 3)}
                for i, s in enumerate(self.stages)}


class Stopwatch:
    """``with sw("detect"): ...`` adds the block's wall time to the stage."""

    def __init__(self, times: StageTimes) -> None:
        self.times = times
        self._stage = ""
        self._t0 = 0.0

    def __call__(self, stage: str) -> "Stopwatch":
        self._stage = stage
        return self

    def __enter__(self) -> "Stopwatch":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.times.add(self._stage, (time.perf_counter() - self._t0) * 1000.0)


class FpsMeter:
    """Frames per second over a sliding window (for the overlay)."""

    def __init__(self, window: int = 30) -> None:
        self._t = np.zeros(window, dtype=np.float64)
        self._i = 0
        self._n = 0

    def tick(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        w = len(self._t)
        self._t[self._i] = now
        self._i = (self._i + 1) % w
        self._n += 1
        k = min(self._n, w)
        oldest = self._t[self._i] if self._n >= w else self._t[0]  # the slot written next is the oldest
        if k < 2 or now <= oldest:
            return 0.0
        return (k - 1) / (now - oldest)


@dataclass
class Summary:
    """What a live run prints at the end (and --headless emits as its last JSON line)."""

    frames: int = 0
    seconds: float = 0.0
    captured: int = 0
    dropped: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    reconnects: int = 0
    stop_reason: str = ""
    source: str = ""
    model: str = ""
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "type": "summary",
            "source": self.source,
            "model": self.model,
            "stop_reason": self.stop_reason,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "captured": self.captured,
            "dropped": self.dropped,
            "frames_with_faces": self.frames_with_faces,
            "faces": self.faces,
            "reconnects": self.reconnects,
            "stages_ms": self.stages_ms,
        }

    def format(self) -> str:
        lines = [
            f"{self.frames} frames in {self.seconds:.1f} s = {self.fps:.1f} FPS "
            f"({self.stop_reason}; {self.dropped} dropped of {self.captured} captured, "
            f"{self.frames_with_faces} frames with faces, {self.reconnects} reconnects)",
            "stage      p50 ms   p90 ms  mean ms",
        ]
        for stage, p in self.stages_ms.items():
            lines.append(f"{stage:<9} {p.get('p50', 0):7.2f}  {p.get('p90', 0):7.2f}  {p.get('mean', 0):7.2f}")
        return "\n".join(lines)
