"""The faces a bundle is benchmarked on: its own test selection, the same selector on --data for peers.
They are scored by fer_edge.evaluation (in the worker, or on the host for a Pi's predictions)."""

from __future__ import annotations

import json
from pathlib import Path

from ..bundle import Manifest
from ..data import FaceDataset, load_dataset, names_data, provenance_data, provenance_dataset
from ..data.provenance import resolve_path
from ..errors import DataError
from ..evaluation import select_faces, split_selection

DEFAULT_SELECTOR = {"split": "test"}


def eval_key(manifest: Manifest | None, data: str | Path | None, limit: int | None, kind: str | None = None) -> str:
    """What ``eval_faces`` picks its faces by: bundles with equal keys are scored on the same faces.
    On its own data that is the provenance's kind, label set and quick-run subset too."""
    prov = provenance_data(manifest)
    selector = prov.get("test") or DEFAULT_SELECTOR
    if names_data(prov, data):
        what = [prov.get("path"), prov.get("kind"), prov.get("labels"), prov.get("subset"), selector]
    else:
        what = [str(data), kind, selector]
    return json.dumps([*what, limit], sort_keys=True, default=str)


def eval_faces(manifest: Manifest | None, data: str | Path | None, limit: int | None,
               kind: str | None = None) -> tuple[FaceDataset, str]:
    """(the test faces the bundle's provenance names, or ``data`` (read as ``kind``, detected when None) with
    that selector; a description like "fer2013.csv.gz {'split': 'test'} n=3589")."""
    prov = provenance_data(manifest)
    path = data or (resolve_path(prov["path"], None) if prov.get("path") else None)
    if not path:
        where = f"bundle {manifest.name!r}" if manifest else "this run"
        raise DataError(f"{where} names no evaluation data in its provenance; pass --data PATH")
    if not Path(path).exists():
        raise DataError(f"{path}: evaluation data not found" + ("" if data else " (pass --data PATH)"))
    selector = prov.get("test") or DEFAULT_SELECTOR
    if names_data(prov, data):
        # the bundle's own data: its quick-run subset and test selector, exactly as train reported
        faces = select_faces(provenance_dataset(prov), "test", prov, limit)
    else:  # another dataset: the same test split (all of a dataset without splits: CK+, JAFFE)
        other = load_dataset(path, kind)
        if set(selector) == {"split"}:
            selector = split_selection(other, selector["split"])
        faces = select_faces(other, selector, limit=limit)
    return faces, f"{Path(path).name} {selector or 'all'} n={len(faces)}"
