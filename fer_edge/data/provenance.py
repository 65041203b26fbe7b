"""The dataset a bundle's provenance names (``provenance["data"]``: path, kind, labels, selectors).

Convert (calibration and test faces), bench, `fer-edge eval` and the model card read it here;
``select_role`` then picks a role's faces from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from ..paths import expand_data_path
from ..labels import label_set
from .dataset import FaceDataset
from .loader import load_dataset


def resolve_path(path: str | Path, folder: Path | None) -> Path:
    """``path`` as written in provenance ("$FER_EDGE_DATA/..." is under this machine's data root); a relative
    one is looked up from the bundle ``folder`` upwards."""
    p = expand_data_path(path)
    if p.exists() or p.is_absolute() or folder is None:
        return p
    for base in (folder, *folder.parents):
        if (base / p).exists():
            return base / p
    return p


def provenance_data(manifest) -> dict[str, Any]:
    """A bundle manifest's ``provenance["data"]``, or {} when it has none (peers, plain model files)."""
    data = manifest.provenance.get("data") if manifest is not None and manifest.provenance else None
    return data if isinstance(data, dict) else {}


def names_data(prov: dict[str, Any], data: str | Path | None) -> bool:
    """True when ``data`` is the dataset the provenance names (no ``data`` given means that one too)."""
    if not data:
        return True
    try:
        return Path(data).resolve() == resolve_path(prov["path"], None).resolve()
    except (KeyError, TypeError, DataError):
        return False


def provenance_dataset(data: dict[str, Any], folder: Path | None = None) -> FaceDataset:
    """The dataset ``data`` names, read with its kind and restricted to its label set."""
    path = resolve_path(str(data["path"]), folder)
    if not path.exists():
        raise DataError(f"{path}: the dataset named in the model's provenance is missing (provenance.data.path)")
    ds = load_dataset(path, data.get("kind"))
    labels = data.get("labels")
    if labels:
        names = label_set(labels) if isinstance(labels, str) else tuple(labels)
        if tuple(names) != tuple(ds.label_names):
            ds = ds.with_labels(tuple(names))
    return ds
