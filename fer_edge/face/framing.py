"""How tightly a pre-cropped dataset frames its faces, in FaceSpec terms.

A model trained on pre-cropped faces (FER2013, CK+48) must see live crops framed the
same way, or it meets a zoom level it never saw. ``measure_framing`` runs the detector
on such images and returns the ``FaceSpec.margin`` that reproduces their framing;
training writes that FaceSpec into the bundle manifest and live/predict crop with it.
Measured on this repository's data (tests/test_face_framing.py): FER2013 and CK+48
both frame the YuNet box edge to edge (margin ~0.0), eyes not levelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..bundle import FaceSpec
from .detector import FaceDetector
from .types import largest_face

# The FaceSpec that reproduces each pre-cropped dataset's framing (see measure_framing).
PRECROPPED_FRAMING: dict[str, FaceSpec] = {
    "fer2013": FaceSpec(margin=0.0, align=False, square=True),
    "ferplus": FaceSpec(margin=0.0, align=False, square=True),
    "ckplus48": FaceSpec(margin=0.0, align=False, square=True),
}


def dataset_framing(kind: str, info: dict | None = None) -> FaceSpec:
    """The FaceSpec that reproduces how a dataset's faces were framed for training.

    Readers that crop faces themselves (JAFFE) record their spec in ``info["face"]``;
    pre-cropped datasets use the measured table above. Unknown folders keep the default.
    """
    info = info or {}
    if "face" in info:
        return FaceSpec(**info["face"])
    return PRECROPPED_FRAMING.get(kind, FaceSpec())


@dataclass
class Framing:
    margin: float  # median FaceSpec.margin that reproduces the images' framing
    margin_iqr: tuple[float, float]
    center: tuple[float, float]  # median face-box centre as a fraction of (width, height)
    found: int
    total: int

    def spec(self, align: bool = False) -> FaceSpec:
        # steps of 0.05: finer differences are below the detector's box jitter
        return FaceSpec(margin=round(max(0.0, self.margin) * 20) / 20, align=align, square=True)


def measure_framing(images: Iterable[np.ndarray], detector: FaceDetector, upscale_to: int = 192) -> Framing:
    """Detect the face in each pre-cropped image (upscaled: small crops detect better) and
    express the image side relative to the box: side = box * (1 + 2 * margin)."""
    import cv2

    margins, cx, cy, total = [], [], [], 0
    for img in images:
        total += 1
        h, w = img.shape[:2]
        s = upscale_to / max(h, w)
        big = cv2.resize(img, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_CUBIC)
        face = largest_face(detector.detect(big))
        if face is None:
            continue
        x, y, bw, bh = face.box
        margins.append((max(big.shape[:2]) / max(bw, bh) - 1.0) / 2.0)
        cx.append((x + bw / 2) / big.shape[1])
        cy.append((y + bh / 2) / big.shape[0])
    if not margins:
        raise ValueError(f"no face found in any of {total} images")
    q1, q3 = np.percentile(margins, [25, 75])
    return Framing(float(np.median(margins)), (float(q1), float(q3)), (float(np.median(cx)), float(np.median(cy))),
                   len(margins), total)
