"""JAFFE: a flat folder of ``<SUBJ>.<EXPR><n>.<id>.tiff`` (e.g. ``KA.AN1.39.tiff``).

10 subjects, 7 posed expressions (AN DI FE HA NE SA SU), 256x256 grayscale with
background (23 files are palette TIFFs, read as luma). By default the face is cut out
with ``fer_edge.face`` (the same crop the live path uses) and resized to ``size``;
``crop=None`` keeps the whole image. An image without a detected face is a bad item,
unless ``fallback="whole"`` explicitly asks to use the whole image instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..labels import FER7, canonical
from .dataset import BadItem, FaceDataset
from .images import read_gray, resize_gray

NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)\.tiff?$", re.IGNORECASE)
CROPS = ("face", None)
FALLBACKS = (None, "whole")


def looks_like_jaffe(names: list[str]) -> bool:
    tiffs = [n for n in names if n.lower().endswith((".tif", ".tiff"))]
    return bool(tiffs) and sum(bool(NAME.match(n)) for n in tiffs) >= 0.9 * len(tiffs)


def read_jaffe(
    root: str | Path,
    skip_bad: bool = False,
    crop: str | None = "face",
    size: int | None = None,
    detector: str = "yunet",
    margin: float = 0.2,
    align: bool = False,
    fallback: str | None = None,
) -> FaceDataset:
    """Read JAFFE as gray faces; ``size`` defaults to 128 with ``crop="face"`` and to the
    original 256 with ``crop=None``."""
    root = Path(root)
    if crop not in CROPS:
        raise ConfigError(f"JAFFE crop must be 'face' or None, not {crop!r}")
    if fallback not in FALLBACKS:
        raise ConfigError(f"JAFFE fallback must be None or 'whole', not {fallback!r}")
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"{root}: empty folder")
    if size is None and crop == "face":
        size = 128
    bad: list[BadItem] = []
    det = _detector(detector) if crop == "face" else None
    spec = _face_spec(margin, align) if crop == "face" else None

    images, labels, subjects, sources = [], [], [], []
    for f in files:
        m = NAME.match(f.name)
        if not m:
            if f.suffix.lower() not in (".tif", ".tiff"):
                bad.append(BadItem(str(f), "ignored: not a JAFFE .tiff"))
                continue
            _fail(bad, skip_bad, f, "file name does not match <SUBJ>.<EXPR><n>.<id>.tiff")
            continue
        try:
            label = canonical(m.group(2), where=f"file name {f}")
            img = read_gray(f)
        except DataError as exc:
            _fail(bad, skip_bad, f, str(exc).removeprefix(f"{f}: "))
            continue
        if det is not None:
            face_img = _crop(det, spec, img)
            if face_img is None:
                if fallback != "whole":
                    _fail(bad, skip_bad, f, "no face detected (pass fallback='whole' / --fallback whole to use the whole image)")
                    continue
                face_img = img
            img = face_img
        if size is not None:
            img = resize_gray(img, size)
        elif images and img.shape != images[0].shape:
            raise DataError(f"{f}: image is {img.shape[1]}x{img.shape[0]} but {sources[0]} is "
                            f"{images[0].shape[1]}x{images[0].shape[0]}; pass a size")
        images.append(img)
        labels.append(label)
        subjects.append(m.group(1).upper())
        sources.append(str(f))
    if not images:
        raise DataError(f"{root}: no JAFFE images (<SUBJ>.<EXPR><n>.<id>.tiff) could be read")
    names = FER7
    return FaceDataset(
        name="jaffe",
        images=np.stack(images),
        labels=np.asarray([names.index(label) for label in labels], np.int64),
        label_names=names,
        splits=np.full(len(images), "all"),
        sources=np.asarray(sources),
        subjects=np.asarray(subjects),
        skipped=bad,
        root=str(root),
        info={"crop": crop or "whole image", "size": list(images[0].shape),
              **({"detector": detector, "margin": margin, "align": align,
                  "face": {"margin": float(margin), "align": bool(align), "square": True}} if crop else {})},
    )


def _fail(bad: list[BadItem], skip_bad: bool, f: Path, problem: str) -> None:
    if not skip_bad:
        raise DataError(f"{f}: {problem}")
    bad.append(BadItem(str(f), problem))


def _detector(name: str):
    from ..face import create_detector

    return create_detector(name)


def _face_spec(margin: float, align: bool):
    from ..bundle import FaceSpec

    return FaceSpec(margin=float(margin), align=bool(align), square=True)


def _crop(det, spec, img: np.ndarray) -> np.ndarray | None:
    from ..face import crop_face, largest_face

    face = largest_face(det.detect(img))
    return None if face is None else crop_face(img, face, spec)
