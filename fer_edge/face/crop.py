"""Cut a face out of a larger image exactly the same way for training and inference."""

from __future__ import annotations

import math

import numpy as np

from ..bundle import FaceSpec
from .types import Face


def crop_box(face: Face, spec: FaceSpec) -> tuple[float, float, float, float]:
    """The region (cx, cy, w, h) cut for ``face``: the box grown by ``spec.margin`` of its
    size on every side, made square (side = the longer edge) when ``spec.square``."""
    x, y, w, h = face.box
    if spec.square:
        w = h = max(w, h)
    grow = 1.0 + 2.0 * float(spec.margin)
    cx, cy = face.center
    return cx, cy, w * grow, h * grow


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle in degrees of the line from the right eye (image left) to the left eye;
    0 when the eyes are level, positive when the left eye (image right) is lower."""
    (rx, ry), (lx, ly) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(float(ly - ry), float(lx - rx)))


def crop_face(image: np.ndarray, face: Face, spec: FaceSpec | None = None) -> np.ndarray:
    """A uint8 face crop, same colour layout as ``image`` ((H,W) gray or (H,W,3) RGB).

    The region from ``crop_box``; parts outside the image are padded with black. With
    ``spec.align`` and landmarks the image is rotated about the box centre so the eyes
    are level before cutting. Not resized: ``InputSpec.preprocess`` does that, so the
    same crop feeds every model input size.
    """
    spec = spec or FaceSpec()
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"crop_face expects a uint8 image, got {img.dtype}")
    cx, cy, w, h = crop_box(face, spec)
    ow, oh = max(1, int(round(w))), max(1, int(round(h)))
    if spec.align and face.landmarks is not None:
        import cv2

        angle = eye_angle(face.landmarks)
        # Rotating by +angle (OpenCV: counter-clockwise in image coordinates, y down) levels
        # a line that descends to the right by angle; then shift the box centre to the crop centre.
        m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, 1.0)
        m[0, 2] += ow / 2.0 - cx
        m[1, 2] += oh / 2.0 - cy
        return cv2.warpAffine(img, m, (ow, oh), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # No rotation: plain slicing (bit-exact pixels) with black padding where the box leaves the image.
    x0, y0 = int(round(cx - ow / 2.0)), int(round(cy - oh / 2.0))
    x1, y1 = x0 + ow, y0 + oh
    H, W = img.shape[:2]
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    out = np.zeros((oh, ow) + img.shape[2:], dtype=np.uint8)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


def rotate_points(points: np.ndarray, face: Face, spec: FaceSpec) -> np.ndarray:
    """Where ``points`` (N,2) of the source image land inside ``crop_face``'s output (for tests/overlays)."""
    cx, cy, w, h = crop_box(face, spec)
    ow, oh = max(1, int(round(w))), max(1, int(round(h)))
    pts = np.asarray(points, dtype=np.float64)
    if spec.align and face.landmarks is not None:
        import cv2

        m = cv2.getRotationMatrix2D((float(cx), float(cy)), eye_angle(face.landmarks), 1.0)
        m[0, 2] += ow / 2.0 - cx
        m[1, 2] += oh / 2.0 - cy
        return pts @ m[:, :2].T + m[:, 2]
    x0, y0 = int(round(cx - ow / 2.0)), int(round(cy - oh / 2.0))
    return pts - np.array([x0, y0], dtype=np.float64)
