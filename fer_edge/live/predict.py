"""`fer-edge predict`: every face in still images, with label and scores; annotated copies on request."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bundle import FaceSpec
from ..errors import ConfigError, DataError
from ..face import Face, FaceDetector, crop_face

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
WRITE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}  # others are annotated as .png


@dataclass
class ImageResult:
    path: str
    size: tuple[int, int]  # (width, height)
    faces: list[dict]  # {"box", "label", "score", "scores", "detector_score"}
    annotated: str | None = None  # its annotated copy, when asked for

    def to_json(self) -> dict:
        doc = {"path": self.path, "width": self.size[0], "height": self.size[1], "faces": self.faces}
        return doc | ({"annotated": self.annotated} if self.annotated else {})


@dataclass
class PredictReport:
    images: list[ImageResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, problem)
    annotated: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # folders not scanned: the --annotate folder inside an input

    @property
    def faces(self) -> int:
        return sum(len(r.faces) for r in self.images)

    def to_json(self) -> dict:
        return {
            "images": [r.to_json() for r in self.images],
            "skipped": [{"path": p, "problem": why} for p, why in self.skipped],
            "counts": {"images": len(self.images), "faces": self.faces, "skipped": len(self.skipped),
                       "without_faces": sum(1 for r in self.images if not r.faces)},
            "annotated": self.annotated,
            "left_out": self.left_out,
        }


def collect_images(inputs: list[str | os.PathLike], skip: str | os.PathLike | None = None,
                   left_out: list[str] | None = None) -> list[tuple[Path, Path]]:
    """(image path, path relative to its input) for files and folders (recursively, sorted).
    A ``skip`` folder inside a scanned folder is left out (and named once in ``left_out``): it holds a previous
    run's annotated copies."""
    found: list[tuple[Path, Path]] = []
    skip = Path(skip).resolve() if skip else None
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            inner_skip = skip if skip and p.resolve() in skip.parents else None
            if inner_skip and left_out is not None and str(inner_skip) not in left_out:
                left_out.append(str(inner_skip))
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not (inner_skip and _inside(f.parent, inner_skip)))
            if not files:
                raise DataError(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found.extend((f, f.relative_to(p)) for f in files)
        elif p.exists():
            found.append((p, Path(p.name)))
        else:
            raise DataError(f"{p}: no such file or folder")
    return found


def _inside(folder: Path, root: Path) -> bool:
    folder = folder.resolve()
    return folder == root or root in folder.parents


def annotation_targets(found: list[tuple[Path, Path]], out_dir: Path) -> list[Path]:
    """Where each image's annotated copy goes: its relative path under ``out_dir``; a name already given
    to an earlier image gets -2, -3, ... (two inputs named a.jpg must not share one copy). Refuses, before
    anything is written, a target that is one of the input images."""
    taken: set[str] = set()
    targets = []
    for _, rel in found:
        target = out_dir / rel
        if target.suffix.lower() not in WRITE_SUFFIXES:
            target = target.with_suffix(".png")
        stem, n = target.stem, 1
        while str(target).casefold() in taken:  # casefold: A.jpg and a.jpg are one file on macOS / Windows
            n += 1
            target = target.with_name(f"{stem}-{n}{target.suffix}")
        taken.add(str(target).casefold())
        targets.append(target)
    inputs = {(s.st_dev, s.st_ino) for s in (path.stat() for path, _ in found)}  # os.path.samefile, for all at once
    clobbered = [str(t) for t in targets if t.exists() and ((s := t.stat()).st_dev, s.st_ino) in inputs]
    if clobbered:
        more = f" and {len(clobbered) - 3} more" if len(clobbered) > 3 else ""
        raise ConfigError(f"--annotate {out_dir}: would overwrite input images ({', '.join(clobbered[:3])}{more}); "
                          "choose another folder")
    return targets


def read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB image, or DataError naming the file (OpenCV reads BGR: converted here)."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8) if path.stat().st_size else np.zeros(0, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise DataError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def predict_paths(inputs: list[str | os.PathLike], classifier, detector: FaceDetector | None,
                  face_spec: FaceSpec | None = None, annotate_dir: str | os.PathLike | None = None,
                  whole_image: bool = False) -> PredictReport:
    """Classify every face in every image. ``detector=None`` with ``whole_image`` treats each
    image as one pre-cropped face (e.g. FER2013's 48x48 images)."""
    from .overlay import draw
    from .pipeline import FaceResult

    spec = face_spec or getattr(getattr(classifier, "manifest", None), "face", None) or FaceSpec()
    labels = list(classifier.labels)
    report = PredictReport()
    found = collect_images(inputs, skip=annotate_dir, left_out=report.left_out)
    targets = annotation_targets(found, Path(annotate_dir)) if annotate_dir else [None] * len(found)
    for (path, _), target in zip(found, targets):
        try:
            rgb = read_rgb(path)
        except (DataError, OSError) as exc:
            report.skipped.append((str(path), str(exc).split(": ", 1)[-1] if isinstance(exc, DataError) else str(exc)))
            continue
        h, w = rgb.shape[:2]
        if whole_image:
            faces = [Face((0.0, 0.0, float(w), float(h)), 1.0)]
            crops = [rgb]
        else:
            faces = detector.detect(rgb)
            crops = [crop_face(rgb, f, spec) for f in faces]
        probs = np.asarray(classifier.predict_proba(crops), np.float32) if crops else np.zeros((0, len(labels)))
        rows, drawn = [], []
        for i, (f, crop, p) in enumerate(zip(faces, crops, probs)):
            best = int(np.argmax(p))
            rows.append({
                "box": [round(float(v), 1) for v in f.box],
                "detector_score": round(float(f.score), 4),
                "label": labels[best],
                "score": round(float(p[best]), 4),
                "scores": {name: round(float(v), 4) for name, v in zip(labels, p)},
            })
            drawn.append(FaceResult(i + 1, f.box, labels[best], float(p[best]), p, crop, True))
        if target is not None:
            _write_annotated(target, draw(rgb.copy(), drawn))
            report.annotated.append(str(target))
        report.images.append(ImageResult(str(path), (w, h), rows, str(target) if target else None))
    return report


def _write_annotated(target: Path, rgb: np.ndarray) -> None:
    import cv2

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):  # files are written as BGR
        tmp.unlink(missing_ok=True)
        raise DataError(f"{target}: could not write the annotated image")
    os.replace(tmp, target)
