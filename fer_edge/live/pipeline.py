"""Per-frame work: detect (every N frames) or track, crop exactly as in training, classify, smooth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..bundle import FaceSpec
from ..errors import ConfigError
from ..face import Face, FaceDetector, crop_face, largest_face
from .smoothing import smoother_factory
from .stats import Stopwatch
from .tracker import IouTracker


class FaceClassifier(Protocol):
    """What the live path needs from ``fer_edge.runtime.Classifier``."""

    labels: list[str]

    def predict_proba(self, faces: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass
class FaceResult:
    id: int
    box: tuple[float, float, float, float]  # (x, y, w, h) in the frame's image
    label: str
    score: float
    scores: np.ndarray  # (K,) smoothed probabilities, in the classifier's label order
    crop: np.ndarray  # the uint8 crop that was classified
    detected: bool  # True on detection frames, False when the box was carried by the tracker

    def to_json(self, labels: list[str]) -> dict:
        return {
            "id": self.id,
            "box": [round(float(v), 1) for v in self.box],
            "label": self.label,
            "score": round(float(self.score), 4),
            "scores": {name: round(float(p), 4) for name, p in zip(labels, self.scores)},
            "detected": self.detected,
        }


class FacePipeline:
    def __init__(self, classifier: FaceClassifier, detector: FaceDetector, face_spec: FaceSpec,
                 detect_every: int = 1, single_face: bool = False, smoothing: str = "ema:0.5",
                 iou_threshold: float = 0.3, max_missed: int = 2) -> None:
        if int(detect_every) < 1:
            raise ConfigError(f"--detect-every must be >= 1, got {detect_every}")
        self.classifier = classifier
        self.detector = detector
        self.face_spec = face_spec
        self.labels = list(classifier.labels)
        self.detect_every = int(detect_every)
        self.single_face = bool(single_face)
        self._new_smoother = smoother_factory(smoothing)
        self.tracker = IouTracker(iou_threshold=iou_threshold, max_missed=max_missed)
        self._n = 0

    def detect(self, detect_image: np.ndarray, scale: tuple[float, float]) -> list[Face]:
        faces = self.detector.detect(detect_image)
        sx, sy = scale
        if sx != 1.0 or sy != 1.0:
            faces = [f.scaled(sx, sy) for f in faces]
        if self.single_face:
            big = largest_face(faces)
            faces = [big] if big is not None else []
        return faces

    def process(self, image: np.ndarray, detect_image: np.ndarray | None = None,
                detect_scale: tuple[float, float] = (1.0, 1.0), sw: Stopwatch | None = None) -> list[FaceResult]:
        """One frame (uint8 RGB or gray) -> the faces in it with smoothed labels."""
        n = self._n
        self._n += 1
        is_detect = n % self.detect_every == 0
        with _timed(sw, "detect"):
            if is_detect:
                faces = self.detect(image if detect_image is None else detect_image, detect_scale)
                tracks = self.tracker.update(faces, n)
            else:
                tracks = self.tracker.visible()
            current = [t.face_at(n) for t in tracks]
        if not tracks:
            return []
        with _timed(sw, "classify"):
            crops = [crop_face(image, f, self.face_spec) for f in current]
            probs = np.asarray(self.classifier.predict_proba(crops), dtype=np.float32)
            out = []
            for t, f, crop, p in zip(tracks, current, crops, probs):
                if t.state is None:
                    t.state = self._new_smoother(len(self.labels))
                smooth = t.state.update(p)
                best = int(np.argmax(smooth))
                out.append(FaceResult(t.id, f.box, self.labels[best], float(smooth[best]), smooth.copy(),
                                      crop, is_detect))
        return out


class _NoTimer:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


_NO_TIMER = _NoTimer()


def _timed(sw: Stopwatch | None, stage: str):
    return sw(stage) if sw is not None else _NO_TIMER
