"""Drawing on RGB frames: box, label, confidence bar, FPS and per-stage milliseconds."""

from __future__ import annotations

import numpy as np

from ..bundle import InputSpec
from .pipeline import FaceResult

# One colour per canonical emotion (RGB); unknown labels get grey.
COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 40, 40),
    "disgust": (120, 170, 40),
    "fear": (160, 60, 200),
    "happy": (250, 200, 0),
    "sad": (50, 110, 230),
    "surprise": (255, 130, 0),
    "neutral": (200, 200, 200),
    "contempt": (170, 110, 60),
}


def model_view(crop: np.ndarray, spec: InputSpec, size: int = 96) -> np.ndarray:
    """The crop as the model sees it (resized, in its colour), shown at ``size`` px, as uint8 RGB."""
    import cv2

    x = spec.preprocess_one(crop)[0]  # (h, w, c) float, normalized
    offset = np.asarray(spec.offset, np.float32)
    x = (x + offset) / np.float32(spec.scale) if spec.scale else x
    x = np.clip(x, 0, 255).astype(np.uint8)
    if x.shape[2] == 1:
        x = cv2.cvtColor(x, cv2.COLOR_GRAY2RGB)
    elif spec.color == "bgr":
        x = x[..., ::-1]
    return cv2.resize(x, (size, size), interpolation=cv2.INTER_NEAREST)


def draw(image: np.ndarray, faces: list[FaceResult], fps: float = 0.0,
         stage_ms: dict[str, float] | None = None, show_crop: InputSpec | None = None) -> np.ndarray:
    """Draw in place on a uint8 RGB image and return it."""
    import cv2

    h, w = image.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, f in enumerate(faces):
        x, y, bw, bh = (int(round(v)) for v in f.box)
        color = COLORS.get(f.label, (160, 160, 160))
        cv2.rectangle(image, (x, y), (x + bw, y + bh), color, 2)
        text = f"#{f.id} {f.label} {f.score:.2f}"
        ty = y - 8 if y > 24 else y + bh + 18
        cv2.putText(image, text, (x, ty), font, 0.55, color, 2, cv2.LINE_AA)
        # confidence bar under the box
        by = min(y + bh + 4, h - 7)
        cv2.rectangle(image, (x, by), (x + bw, by + 6), (60, 60, 60), -1)
        cv2.rectangle(image, (x, by), (x + int(bw * max(0.0, min(1.0, f.score))), by + 6), color, -1)
        if show_crop is not None and f.crop is not None and f.crop.size:
            view = model_view(f.crop, show_crop)
            s = view.shape[0]
            x0, y0 = w - s - 4, 4 + i * (s + 4)
            if y0 + s <= h and x0 >= 0:
                image[y0:y0 + s, x0:x0 + s] = view
                cv2.rectangle(image, (x0, y0), (x0 + s - 1, y0 + s - 1), color, 1)
    lines = [f"{fps:5.1f} FPS"]
    if stage_ms:
        lines.append(" ".join(f"{k[:4]} {v:4.1f}" for k, v in stage_ms.items()) + " ms")
    for j, line in enumerate(lines):
        cv2.putText(image, line, (6, 18 + 18 * j), font, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, line, (6, 18 + 18 * j), font, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image
