"""One calibration set for all three int8 toolchains.

The same preprocessed images (exactly as the runtime preprocesses them) feed the
TFLite representative dataset, an ONNX Runtime CalibrationDataReader and an
nncf.Dataset, so the three int8 artifacts are calibrated on identical data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..bundle import InputSpec
from ..data import FaceDataset, load_dataset, provenance_dataset, select_role
from ..errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm")


@dataclass
class CalibrationSet:
    x: np.ndarray  # float32 (N, h, w, c), already preprocessed
    description: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def representative_dataset(self) -> Iterator[list[np.ndarray]]:
        """TFLiteConverter.representative_dataset: one sample per step."""
        for i in range(len(self.x)):
            yield [self.x[i : i + 1]]

    def onnx_reader(self, input_name: str):
        """An onnxruntime.quantization.CalibrationDataReader over the same samples."""
        from onnxruntime.quantization import CalibrationDataReader

        samples = self.x

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._i = 0

            def get_next(self):
                if self._i >= len(samples):
                    return None
                self._i += 1
                return {input_name: samples[self._i - 1 : self._i]}

            def rewind(self) -> None:
                self._i = 0

        return _Reader()

    def nncf_dataset(self):
        import nncf

        return nncf.Dataset([self.x[i : i + 1] for i in range(len(self.x))])


def stratified_indices(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """``size`` indices with each class in proportion to its frequency (at least one per class)."""
    n = len(labels)
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts / n * size).astype(int))
    # hand out the rounding remainder to the largest classes
    for i in np.argsort(-counts)[: max(0, size - quota.sum())]:
        quota[i] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=min(q, cnt), replace=False) for c, q, cnt in zip(classes, quota, counts)]
    return np.sort(np.concatenate(picks))


def _preprocess(images, spec: InputSpec) -> np.ndarray:
    if isinstance(images, np.ndarray):
        return spec.preprocess(images)
    return np.concatenate([spec.preprocess_one(img) for img in images])


def from_dataset(ds: FaceDataset, spec: InputSpec, size: int, what: str, seed: int = 0) -> CalibrationSet:
    idx = stratified_indices(ds.labels, size, seed)
    counts = {ds.label_names[c]: int((ds.labels[idx] == c).sum()) for c in range(ds.num_classes)}
    return CalibrationSet(
        _preprocess(ds.images[idx], spec),
        {"source": what, "size": int(len(idx)), "of": int(len(ds)), "stratified": True, "seed": seed,
         "per_class": counts},
    )


def read_image_folder(path: Path) -> tuple[list[np.ndarray], list[str], int]:
    """All readable images under ``path`` as uint8 gray/RGB, their parent-folder names, unreadable count."""
    import cv2

    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    images, groups, bad = [], [], 0
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if img is None or img.dtype != np.uint8 or img.size == 0:
            bad += 1
            continue
        # OpenCV reads BGR(A); fer-edge APIs take RGB, so convert here at the I/O boundary.
        if img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        elif img.ndim == 3 and img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif img.ndim == 3:
            img = img[..., 0]
        images.append(img)
        groups.append(f.parent.name)
    return images, groups, bad


def from_folder(path: Path, spec: InputSpec, size: int, seed: int = 0) -> CalibrationSet:
    images, groups, bad = read_image_folder(path)
    if not images:
        raise DataError(
            f"{path}: no usable images for calibration (looked for {', '.join(IMAGE_SUFFIXES)} recursively"
            + (f"; {bad} files could not be read)" if bad else ")")
        )
    _, labels = np.unique(np.asarray(groups), return_inverse=True)
    idx = stratified_indices(labels, size, seed)
    return CalibrationSet(
        _preprocess([images[i] for i in idx], spec),
        {"source": str(path), "size": int(len(idx)), "of": len(images), "stratified_by": "folder",
         "unreadable": bad, "seed": seed},
    )


def build_calibration(source, calib: str | Path | None, size: int) -> CalibrationSet:
    """Calibration images for ``source``: ``calib`` (folder or dataset file) or the run's training selector.

    Never the test split: the default comes from provenance["data"]["train"].
    """
    if size < 1:
        raise ConfigError(f"--calib-size must be >= 1, got {size}")
    if calib is not None:
        path = Path(calib)
        if path.is_dir():
            return from_folder(path, source.input, size)
        if not path.is_file():
            raise DataError(f"{path}: calibration data not found (a folder of face images or a dataset file)")
        ds = load_dataset(path)
        if "train" in ds.roles:
            ds = ds.split("train")
        ds = _match_labels(ds, source.labels)
        return from_dataset(ds, source.input, size, f"{path} ({ds.name}, train split)")
    data = source.data
    if not data:
        raise ConfigError(
            f"{source.path}: int8 needs calibration images; pass --calib DATA (a folder of face images or a "
            "dataset file), or convert the `fer-edge train` run folder, whose manifest names its training data"
        )
    ds = select_role(provenance_dataset(data, source.run_dir), data, "train")
    return from_dataset(ds, source.input, size, f"{data['path']} train selector {data.get('train')}")


def _match_labels(ds: FaceDataset, labels: list[str]) -> FaceDataset:
    if tuple(ds.label_names) == tuple(labels):
        return ds
    if all(name in ds.label_names for name in labels):
        return ds.with_labels(tuple(labels))
    return ds  # calibration needs images, not labels: a different label set is fine
