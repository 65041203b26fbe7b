"""Face detectors: OpenCV YuNet (default, with 5 landmarks) and the Haar cascade (fallback).

A detector is built once (model loading is the slow part) and ``detect`` is then
cheap per frame: YuNet's input size is only reset when the frame size changes.
Images are fer-edge images, uint8 RGB (H,W,3) or gray (H,W); the conversion to the
BGR that OpenCV's models expect happens here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelError
from ..paths import weights_path
from .types import Face

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
HAAR_FILE = "haarcascade_frontalface_default.xml"
DETECTORS = ("auto", "yunet", "haar")
# "auto" = YuNet when its model file is found, else the Haar cascade that OpenCV 4.x wheels ship
# (cv2.data), so `fer-edge predict/live` work right after `pip install` with no download.


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"face detection expects a uint8 image, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"face detection expects (H,W) gray or (H,W,3) RGB, got shape {img.shape}")
    return img


class FaceDetector:
    """Base class: ``detect(image) -> list[Face]`` sorted by score, best first."""

    name = "base"

    def detect(self, image: np.ndarray) -> list[Face]:  # pragma: no cover - abstract
        raise NotImplementedError


class YuNetDetector(FaceDetector):
    name = "yunet"

    def __init__(self, model_path: str | Path, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, top_k: int = 50) -> None:
        import cv2

        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError(f"this OpenCV ({cv2.__version__}) has no FaceDetectorYN; YuNet needs OpenCV >= 4.8")
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), float(score_threshold),
                                                  float(nms_threshold), int(top_k))
        except cv2.error as exc:
            raise ModelError(f"{model_path}: OpenCV could not load it as a YuNet face detector ({exc})") from exc
        self._size: tuple[int, int] = (320, 320)
        self._cv2 = cv2
        self.score_threshold = float(score_threshold)

    def detect(self, image: np.ndarray) -> list[Face]:
        cv2 = self._cv2
        img = _check_image(image)
        # YuNet was trained on BGR frames: convert fer-edge gray/RGB here.
        bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR if img.ndim == 2 else cv2.COLOR_RGB2BGR)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:  # resetting the input size rebuilds anchors: only on change
            self._net.setInputSize(size)
            self._size = size
        _, rows = self._net.detect(bgr)
        if rows is None:
            return []
        faces = [
            Face(box=(float(r[0]), float(r[1]), float(r[2]), float(r[3])), score=float(r[14]),
                 landmarks=np.asarray(r[4:14], dtype=np.float32).reshape(5, 2))
            for r in rows
        ]
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces


class HaarDetector(FaceDetector):
    """Viola-Jones cascade: no landmarks (so no alignment); score = the cascade's level weight."""

    name = "haar"

    def __init__(self, model_path: str | Path, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 24) -> None:
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError(
                f"this OpenCV ({cv2.__version__}) has no Haar cascades (removed in OpenCV 5); "
                "use --detector yunet or install opencv-python-headless<5"
            )
        self._cascade = cv2.CascadeClassifier(str(model_path))
        if self._cascade.empty():
            raise ModelError(f"{model_path}: OpenCV could not load it as a Haar cascade")
        self._cv2 = cv2
        self._params = (float(scale_factor), int(min_neighbors), (int(min_size), int(min_size)))

    def detect(self, image: np.ndarray) -> list[Face]:
        cv2 = self._cv2
        img = _check_image(image)
        gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        scale, neighbors, min_size = self._params
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=scale, minNeighbors=neighbors, minSize=min_size, outputRejectLevels=True)
        if len(boxes) == 0:
            return []
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        faces = [Face(box=tuple(float(v) for v in b), score=float(w), landmarks=None)
                 for b, w in zip(boxes, weights)]
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces


def create_detector(name: str = "yunet", score_threshold: float = 0.6,
                    model_path: str | Path | None = None) -> FaceDetector:
    """Build a face detector once; call ``.detect(image)`` per image or frame.

    Model files default to ``<weights>/face/`` (see ``fer_edge.paths``). ``score_threshold``
    applies to YuNet; the Haar cascade has no calibrated score and filters by neighbours.
    """
    name = name.lower()
    if name not in DETECTORS:
        raise ConfigError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    if not 0.0 <= float(score_threshold) <= 1.0:
        raise ConfigError(f"face score threshold must be in [0, 1], got {score_threshold}")
    if name == "auto":
        if model_path is not None or weights_path("face", YUNET_FILE, required=False) is not None:
            name = "yunet"
        else:
            name = "haar"
            model_path = weights_path("face", HAAR_FILE, required=False) or _opencv_haar()
    file = YUNET_FILE if name == "yunet" else HAAR_FILE
    if model_path is None:
        path = weights_path("face", file)
    else:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: face detector model not found")
    if name == "yunet":
        return YuNetDetector(path, score_threshold=score_threshold)
    return HaarDetector(path)


def _opencv_haar() -> Path | None:
    """OpenCV's own copy of the frontal-face cascade (in 4.x wheels), or None."""
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder) / HAAR_FILE if folder else None
    return path if path is not None and path.is_file() else None
