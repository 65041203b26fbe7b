"""Datasets for training: pick the recipe's labels and shape the faces to the model input (fer_edge.data reads them)."""

from __future__ import annotations

import numpy as np

from ..bundle import InputSpec
from ..data import FaceDataset
from ..labels import label_set


def restrict_labels(ds: FaceDataset, labels: str | list[str] | None) -> FaceDataset:
    """Keep the recipe's label set (a name from fer_edge.labels or a list), in its order."""
    if labels is None:
        return ds
    names = label_set(labels) if isinstance(labels, str) else tuple(labels)
    if tuple(ds.label_names) == names:
        return ds
    return ds.with_labels(names)


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
