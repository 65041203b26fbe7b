"""Face detection and cropping shared by training data preparation, predict and live.

    from fer_edge.face import create_detector, crop_face, largest_face
    det = create_detector("yunet")            # once
    faces = det.detect(image)                 # uint8 RGB (H,W,3) or gray (H,W), best first
    crop = crop_face(image, faces[0], manifest.face)   # then InputSpec.preprocess resizes

numpy + OpenCV only (no TensorFlow).
"""

from __future__ import annotations

from .crop import crop_box, crop_face, eye_angle, rotate_points
from .detector import DETECTORS, FaceDetector, HaarDetector, YuNetDetector, create_detector
from .framing import PRECROPPED_FRAMING, Framing, dataset_framing, measure_framing
from .types import Face, largest_face

__all__ = [
    "DETECTORS", "PRECROPPED_FRAMING", "dataset_framing", "Face", "FaceDetector", "Framing", "HaarDetector", "YuNetDetector",
    "create_detector", "crop_box", "crop_face", "eye_angle", "largest_face", "measure_framing", "rotate_points",
]
