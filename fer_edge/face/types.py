"""The face record every detector returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """One detected face in pixel coordinates of the image it was found in.

    box:       (x, y, w, h), top-left corner and size, float pixels.
    score:     detector confidence (YuNet: 0..1; Haar: the cascade's level weight, not a probability).
    landmarks: (5, 2) float32 in YuNet order: right eye, left eye, nose tip, right mouth
               corner, left mouth corner ("right" is the subject's right, i.e. image left
               for a frontal face), or None when the detector gives none (Haar).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def area(self) -> float:
        return float(self.box[2]) * float(self.box[3])

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)

    def scaled(self, sx: float, sy: float | None = None) -> "Face":
        """The same face in an image resized by (sx, sy) (e.g. lores detection -> main frame)."""
        sy = sx if sy is None else sy
        x, y, w, h = self.box
        lm = None if self.landmarks is None else (self.landmarks * np.array([sx, sy], np.float32))
        return Face((x * sx, y * sy, w * sx, h * sy), self.score, lm)


def largest_face(faces: list[Face]) -> Face | None:
    """The face with the largest box (kiosk / single-face mode), or None for no faces."""
    return max(faces, key=lambda f: f.area) if faces else None
