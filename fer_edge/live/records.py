"""The JSON records of a live run: one builder for `--headless` lines and the `--serve` event stream,
so a program reading either gets the same bytes for the same frame."""

from __future__ import annotations

import json

from .pipeline import FaceResult
from .sources import Frame
from .stats import StageTimes


def frame_record(frame: Frame, number: int, faces: list[FaceResult], labels: list[str]) -> dict:
    """One processed frame: capture time, processing and capture counters, every face's box and scores."""
    return {"type": "frame", "t": round(frame.timestamp, 3), "frame": number, "capture_index": frame.index,
            "faces": [f.to_json(labels) for f in faces]}


def stats_record(fps: float, times: StageTimes, frames: int, captured: int, dropped: int) -> dict:
    """What the live page charts once a second: FPS and the mean ms of each stage over the last second."""
    return {"type": "stats", "fps": round(fps, 2), "stages_ms": times.recent_means(max(1, int(round(fps)))),
            "frames": frames, "captured": captured, "dropped": dropped}


def to_line(record: dict) -> str:
    """A record as one JSON line (no newline): `--headless` prints it, `--serve` sends it as one event."""
    return json.dumps(record)
