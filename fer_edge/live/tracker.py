"""IoU tracker: stable face ids across frames, boxes carried between detections.

Detection runs every N frames; in between each track's box moves with the velocity
measured between its last two detections (faces move smoothly at camera frame rates).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..face import Face


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


@dataclass
class Track:
    id: int
    face: Face  # as last detected
    frame: int  # frame number of that detection
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float64))  # px per frame
    missed: int = 0  # detection rounds in a row without a match
    hits: int = 1
    state: object = None  # per-track data owned by the caller (the score smoother)

    @property
    def visible(self) -> bool:
        return self.missed == 0

    def face_at(self, frame: int) -> Face:
        """The face moved along its velocity to ``frame`` (landmarks move with it)."""
        dt = frame - self.frame
        if dt <= 0 or not self.velocity.any():
            return self.face
        dx, dy = self.velocity * dt
        x, y, w, h = self.face.box
        lm = None if self.face.landmarks is None else self.face.landmarks + np.array([dx, dy], np.float32)
        return Face((x + dx, y + dy, w, h), self.face.score, lm)


class IouTracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 2) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, faces: list[Face], frame: int) -> list[Track]:
        """Match a detection round to the tracks (greedy, highest IoU first); new faces get new
        ids; a track unmatched for more than ``max_missed`` rounds is dropped. Returns the
        visible tracks (matched this round)."""
        pairs = []
        predicted = [t.face_at(frame).box for t in self.tracks]
        for ti, box in enumerate(predicted):
            for fi, f in enumerate(faces):
                v = iou(box, f.box)
                if v >= self.iou_threshold:
                    pairs.append((v, ti, fi))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_f: set[int] = set()
        for _, ti, fi in pairs:
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            t, f = self.tracks[ti], faces[fi]
            dt = frame - t.frame
            if dt > 0:
                (ox, oy), (nx, ny) = t.face.center, f.center
                t.velocity = np.array([(nx - ox) / dt, (ny - oy) / dt])
            t.face, t.frame, t.missed = f, frame, 0
            t.hits += 1
        kept: list[Track] = []
        for ti, t in enumerate(self.tracks):
            if ti not in used_t:
                t.missed += 1
                t.velocity[:] = 0.0
                if t.missed > self.max_missed:
                    continue
            kept.append(t)
        for fi, f in enumerate(faces):
            if fi not in used_f:
                kept.append(Track(id=self._next_id, face=f, frame=frame))
                self._next_id += 1
        self.tracks = kept
        return [t for t in self.tracks if t.visible]

    def visible(self) -> list[Track]:
        return [t for t in self.tracks if t.visible]
