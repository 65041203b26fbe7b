"""The data a conversion calibrates and evaluates on, from the run's provenance selectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import FaceDataset, load_dataset, select_role
from ..errors import DataError
from ..labels import label_set


def resolve_path(path: str, run_dir: Path | None) -> Path:
    p = Path(path)
    if p.exists() or p.is_absolute() or run_dir is None:
        return p
    for base in (run_dir, *run_dir.parents):
        if (base / p).exists():
            return base / p
    return p


# Datasets read in this process, keyed by file identity: converting several precisions
# in one process (tests, benchmarks) reads FER2013 once instead of once per call.
_READ: dict[tuple, FaceDataset] = {}


def read_cached(path: Path, kind: str | None) -> FaceDataset:
    st = path.stat()
    key = (str(path.resolve()), kind, st.st_mtime_ns, st.st_size)
    if key not in _READ:
        _READ.clear()  # keep at most one dataset in memory
        _READ[key] = load_dataset(path, kind)
    return _READ[key]


def dataset_for(data: dict[str, Any], run_dir: Path | None, cache: dict | None = None) -> FaceDataset:
    """Load the dataset named by provenance["data"], restricted to its label set."""
    path = resolve_path(str(data["path"]), run_dir)
    if not path.exists():
        raise DataError(f"{path}: the dataset named in the model's provenance is missing (provenance.data.path)")
    key = (str(path), data.get("kind"))
    if cache is not None and key in cache:
        return cache[key]
    ds = read_cached(path, data.get("kind"))
    labels = data.get("labels")
    if labels:
        names = label_set(labels) if isinstance(labels, str) else tuple(labels)
        if tuple(names) != tuple(ds.label_names):
            ds = ds.with_labels(tuple(names))
    if cache is not None:
        cache[key] = ds
    return ds


def role(ds: FaceDataset, data: dict[str, Any], name: str) -> FaceDataset:
    """The samples of role ``name`` ("train"/"test") per the stored selectors (quick-run subset included)."""
    return select_role(ds, data, name)
