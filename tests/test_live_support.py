"""Shared helpers for the live/predict tests (no tests here): a real classifier bundle and a
test video made from real faces pasted on a background."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.atomic import atomic_dir
from fer_edge.bundle import FaceSpec, InputSpec, Manifest, write_bundle
from fer_edge.face import PRECROPPED_FRAMING
from fer_edge.labels import FER7

PEER_TFLITE = "emotion_model_quantized.tflite"


def make_peer_bundle(peer_dir: Path, out: Path, face: FaceSpec | None = None) -> Path:
    """The `fer` package's mini-Xception (trained on FER2013; 64x64 gray, x/255*2-1) as a bundle."""
    with atomic_dir(out, overwrite=True) as tmp:
        shutil.copyfile(peer_dir / PEER_TFLITE, tmp / PEER_TFLITE)
        manifest = Manifest(
            name="mini-xception (fer)", format="tflite", precision="dynamic", model_file=PEER_TFLITE,
            labels=list(FER7),
            input=InputSpec(size=(64, 64), color="gray", scale=2.0 / 255.0, offset=(1.0,), interpolation="area"),
            face=face or PRECROPPED_FRAMING["fer2013"],  # trained on FER2013 crops: frame live crops the same way
        )
        write_bundle(tmp, manifest, [PEER_TFLITE])
    return out


class CheapClassifier:
    """A deterministic stand-in for soak runs: mean brightness -> a fixed score vector."""

    def __init__(self, labels=FER7) -> None:
        self.labels = list(labels)
        self.manifest = None
        self._out = np.zeros((8, len(self.labels)), np.float32)

    def predict_proba(self, faces) -> np.ndarray:
        n = len(faces)
        out = np.full((n, len(self.labels)), 0.1 / max(1, len(self.labels) - 1), np.float32)
        for i, f in enumerate(faces):
            out[i, int(f.mean()) % len(self.labels)] = 0.9
        return out


def background(h: int = 480, w: int = 640, seed: int = 0) -> np.ndarray:
    """A face-free RGB background: gradients plus a few rectangles and lines."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 200 // w + 30), (yy * 180 // h + 40), ((xx + yy) * 120 // (w + h) + 60)], -1).astype(np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 60))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(30, 80)), y + int(rng.integers(20, 60))), color, -1)
    for _ in range(4):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p1, p2, (255, 255, 255), 2)
    return img


@dataclass
class Paste:
    image: np.ndarray  # uint8 gray face photo
    path: str
    start: tuple[int, int]  # top-left at its first frame
    step: tuple[int, int]  # pixels per frame


def render(bg: np.ndarray, pastes: list[Paste], t: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The frame at time t (RGB) and each pasted photo's rectangle (x, y, w, h)."""
    frame = bg.copy()
    rects = []
    for p in pastes:
        ph, pw = p.image.shape[:2]
        x, y = p.start[0] + p.step[0] * t, p.start[1] + p.step[1] * t
        frame[y:y + ph, x:x + pw] = p.image[..., None]
        rects.append((x, y, pw, ph))
    return frame, rects


def load_gray(path: Path, size: int | None = None) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None, path
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC) if size else img


def make_face_video(path: Path, jaffe_dir: Path, ckplus_dir: Path, fps: float = 15.0):
    """60 frames of 640x480: 0-24 one JAFFE face moving right, 25-34 no face, 35-59 two faces
    (JAFFE + an upscaled CK+ face) moving apart. Returns the per-frame list of face rectangles."""
    import cv2

    one = Paste(load_gray(jaffe_dir / "KA.HA1.29.tiff", 200), "KA.HA1.29.tiff", (40, 120), (6, 1))
    two_a = Paste(load_gray(jaffe_dir / "NA.SU1.208.tiff", 180), "NA.SU1.208.tiff", (60, 40), (2, 3))
    ck = sorted((ckplus_dir / "happy").glob("*.png"))[0]
    two_b = Paste(load_gray(ck, 150), ck.name, (440, 300), (-2, -2))
    bg = background()
    truth: list[list[tuple[int, int, int, int]]] = []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened()
    for t in range(60):
        if t < 25:
            frame, rects = render(bg, [one], t)
        elif t < 35:
            frame, rects = bg.copy(), []
        else:
            frame, rects = render(bg, [two_a, two_b], t - 35)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))  # files hold BGR
        truth.append(rects)
    writer.release()
    return truth


def inside(box, rect) -> bool:
    """The centre of a detected box lies inside a pasted photo's rectangle."""
    x, y, w, h = box
    rx, ry, rw, rh = rect
    cx, cy = x + w / 2, y + h / 2
    return rx <= cx <= rx + rw and ry <= cy <= ry + rh


def make_expression_video(path: Path, jaffe_dir: Path, seconds: float = 12.0, fps: float = 10.0,
                          subject: str = "KA", hold_s: float = 1.5) -> list[str]:
    """One JAFFE subject's posed expressions in turn (each held ``hold_s``), drifting slowly across a
    640x480 background, as an MJPG .avi. Returns the file name shown in each frame."""
    import cv2

    stills = sorted(jaffe_dir.glob(f"{subject}.*1.*.tiff"))  # the first photo of each expression
    assert len(stills) >= 5, stills
    bg = background()
    shown: list[str] = []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened()
    n = int(round(seconds * fps))
    for t in range(n):
        still = stills[int(t / (hold_s * fps)) % len(stills)]
        paste = Paste(load_gray(still, 200), still.name, (120, 100), (1, 0))
        frame, _ = render(bg, [paste], t % 240)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        shown.append(still.name)
    writer.release()
    return shown


def call_in_fresh_process(module: str, function: str, *args, timeout: float = 900):
    """``module.function(*args)`` (a module under tests/) in a new Python process; its JSON result.

    Memory checks run there: in the long pytest process other tests' threads and arenas move the RSS by
    several MiB, which says nothing about the code being measured."""
    import json
    import subprocess
    import sys

    code = ("import json, sys, importlib; sys.path.insert(0, sys.argv[1]); "
            "f = getattr(importlib.import_module(sys.argv[2]), sys.argv[3]); "
            "print(json.dumps(f(*json.loads(sys.argv[4]))))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent), module, function,
                          json.dumps(list(args))], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])

