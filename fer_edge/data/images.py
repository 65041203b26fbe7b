"""Read one image file as uint8 grayscale, failing loudly on corrupt or truncated files.

OpenCV happily returns a half-grey picture for a truncated JPEG (it only prints a
warning), so the end markers of JPEG and PNG are checked before decoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".webp")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _truncation_problem(data: bytes) -> str | None:
    """A reason the bytes are an incomplete JPEG/PNG, or None."""
    if data[:2] == b"\xff\xd8":
        # JPEG ends with EOI (FFD9); some writers pad with zeros after it.
        if b"\xff\xd9" not in data[-64:]:
            return "truncated JPEG (no end-of-image marker)"
    elif data[:8] == _PNG_MAGIC:
        if b"IEND" not in data[-16:]:
            return "truncated PNG (no IEND chunk)"
    return None


def read_gray(path: str | Path) -> np.ndarray:
    """uint8 (H, W) grayscale of an image file, or a DataError naming the file.

    Palette and RGB files are converted with OpenCV's luma weights (for JAFFE's
    palette TIFFs this equals PIL's ``convert("L")`` exactly).
    """
    import cv2  # base dependency, imported lazily to keep `import fer_edge.data` light

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise DataError(f"{path}: empty file")
    problem = _truncation_problem(data)
    if problem:
        raise DataError(f"{path}: {problem}")
    # imdecode from bytes (not imread) so non-ASCII paths work on every platform.
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.dtype != np.uint8:  # 16-bit PNG/TIFF: scale down rather than wrap around
        img = (img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)).round().astype(np.uint8)
    return img


def resize_gray(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize to (h, w) with area interpolation (the right filter for downscaling faces)."""
    import cv2

    h, w = (size, size) if isinstance(size, int) else size
    if img.shape[:2] == (h, w):
        return img
    interp = cv2.INTER_AREA if img.shape[0] >= h else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def read_stack(
    files: list[Path], size: int | tuple[int, int] | None, bad: list, skip_bad: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Read many gray images into one (N, H, W) array; returns (images, kept mask).

    Unreadable files become ``BadItem``s in ``bad`` (raised at once unless ``skip_bad``).
    Without ``size`` all images must share one size, otherwise that is reported.
    """
    from .dataset import BadItem

    images: list[np.ndarray] = []
    keep = np.zeros(len(files), dtype=bool)
    first_shape: tuple[int, int] | None = None
    first_file: Path | None = None
    for i, f in enumerate(files):
        try:
            img = read_gray(f)
        except DataError as exc:
            if not skip_bad:
                raise
            bad.append(BadItem(str(f), str(exc).removeprefix(f"{f}: ")))
            continue
        if size is not None:
            img = resize_gray(img, size)
        elif first_shape is None:
            first_shape, first_file = img.shape, f
        elif img.shape != first_shape:
            raise DataError(
                f"{f}: image is {img.shape[1]}x{img.shape[0]} but {first_file} is "
                f"{first_shape[1]}x{first_shape[0]}; pass a size to resize them all"
            )
        images.append(img)
        keep[i] = True
    if not images:
        return np.zeros((0, 0, 0), np.uint8), keep
    return np.stack(images), keep
