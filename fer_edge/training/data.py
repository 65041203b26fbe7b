"""Datasets for training: read, pick the recipe's labels, select splits, shape to the model input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import InputSpec
from ..data.dataset import FaceDataset, select
from ..errors import DataError
from ..labels import label_set


def load(path: str | Path, kind: str | None = None) -> tuple[FaceDataset, str]:
    """(dataset, reader kind). Uses ``fer_edge.data.load_dataset`` (auto-detection) when present."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    try:
        from ..data import load_dataset  # the data layer's auto-detecting entry point
    except ImportError:
        load_dataset = None
    if load_dataset is not None:
        ds = load_dataset(path, kind=kind)
        return ds, kind or getattr(ds, "info", {}).get("kind", ds.name)
    kind = kind or _guess_kind(path)
    if kind == "fer2013":
        from ..data.fer2013 import read_fer2013

        return read_fer2013(path), kind
    if kind == "jaffe":
        from ..data.jaffe import read_jaffe

        return read_jaffe(path), kind
    if kind == "ckplus48":
        from ..data.ckplus import read_ckplus

        return read_ckplus(path), kind
    if kind == "ferplus":
        from ..data.ferplus import read_ferplus

        return read_ferplus(path), kind
    from ..data.imagefolder import read_imagefolder

    return read_imagefolder(path), "imagefolder"


def _guess_kind(path: Path) -> str:
    name = path.name.lower()
    if path.is_file() and (name.endswith(".csv") or name.endswith(".csv.gz")):
        return "ferplus" if "new" in name else "fer2013"
    if path.is_dir():
        names = [p.name for p in path.iterdir()]
        if any(n.lower().endswith((".tif", ".tiff")) for n in names):
            return "jaffe"
        if "contempt" in names:
            return "ckplus48"
    return "imagefolder"


def restrict_labels(ds: FaceDataset, labels: str | list[str] | None) -> FaceDataset:
    """Keep the recipe's label set (a name from fer_edge.labels or a list), in its order."""
    if labels is None:
        return ds
    names = label_set(labels) if isinstance(labels, str) else tuple(labels)
    if tuple(ds.label_names) == names:
        return ds
    return ds.with_labels(names)


def pick(ds: FaceDataset, selector: dict[str, Any]) -> FaceDataset:
    return select(ds, selector)


def to_input(ds: FaceDataset, spec: InputSpec, chunk: int = 4096) -> np.ndarray:
    """Faces -> model-input pixels with the runtime's own preprocessing (InputSpec.preprocess).

    Returned as uint8 (N,h,w,c) to keep memory small; the bundle's scale/offset (identity
    for our models: normalization is a layer inside the model) is applied in the pipeline.
    """
    identity = InputSpec(size=spec.size, color=spec.color, interpolation=spec.interpolation)

    def convert(faces: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(identity.preprocess(faces)), 0, 255).astype(np.uint8)

    if not isinstance(ds.images, np.ndarray):  # a shard cache (data/shards.py): converted shard by shard as it streams
        return ds.images.mapped(convert, identity.shape)
    out = np.empty((len(ds),) + identity.shape, dtype=np.uint8)
    for i in range(0, len(ds), chunk):
        out[i : i + chunk] = convert(ds.images[i : i + chunk])
    return out


def apply_scale(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels -> float model input with the bundle's scale/offset."""
    return spec.normalize(x.astype(np.float32))
