"""Cache a ``FaceDataset`` as one compressed ``.npz`` (+ a small JSON sidecar for people).

The npz is self-contained (arrays + a JSON metadata string, no pickles) and written to
a temporary file that is renamed into place, so a crash never leaves half a cache.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_file, write_json
from ..errors import DataError
from .dataset import BadItem, FaceDataset

SCHEMA = "fer-edge/dataset-cache@1"
_OPTIONAL = ("subjects", "soft_labels", "sequences")


def sidecar_path(npz: str | Path) -> Path:
    npz = Path(npz)
    return npz.with_name(npz.name.removesuffix(".npz") + ".json")


def metadata(ds: FaceDataset) -> dict:
    return {
        "schema": SCHEMA,
        "name": ds.name,
        "label_names": list(ds.label_names),
        "roles": ds.roles,
        "root": ds.root,
        "num_samples": len(ds),
        "image_shape": list(ds.images.shape[1:]),
        "counts": ds.counts(),
        "subjects": None if ds.subjects is None else len(set(ds.subjects.tolist())),
        "skipped": [{"source": b.source, "problem": b.problem} for b in ds.skipped],
        "info": ds.info,
    }


def save_npz(ds: FaceDataset, out: str | Path) -> Path:
    """Write ``ds`` to ``out`` (.npz) and ``out`` with .json beside it; returns the npz path."""
    out = Path(out)
    if out.suffix != ".npz":
        raise DataError(f"{out}: cache file must end in .npz")
    meta = metadata(ds)
    arrays = {
        "images": ds.images,
        "labels": ds.labels,
        "splits": ds.splits.astype(str),
        "sources": ds.sources.astype(str),
        "meta": np.array(json.dumps(meta)),
    }
    for key in _OPTIONAL:
        value = getattr(ds, key)
        if value is not None:
            arrays[key] = value.astype(str) if value.dtype.kind in "OUS" else value
    with atomic_file(out, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    write_json(sidecar_path(out), {k: v for k, v in meta.items() if k != "skipped"} | {"skipped": len(ds.skipped)})
    for path in (out, sidecar_path(out)):  # mkstemp makes 0600 files; a cache is meant to be shared
        _chmod_default(path)
    return out


def _chmod_default(path: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def load_npz(path: str | Path) -> FaceDataset:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from exc
    missing = [k for k in ("images", "labels", "splits", "sources", "meta") if k not in arrays]
    if missing:
        raise DataError(f"{path}: not a fer-edge dataset cache (missing {missing})")
    meta = json.loads(str(arrays["meta"]))
    if meta.get("schema") != SCHEMA:
        raise DataError(f"{path}: cache schema {meta.get('schema')!r}, expected {SCHEMA!r}; run `fer-edge data prepare` again")
    return FaceDataset(
        name=meta["name"],
        images=arrays["images"],
        labels=arrays["labels"].astype(np.int64),
        label_names=tuple(meta["label_names"]),
        splits=arrays["splits"],
        sources=arrays["sources"],
        subjects=arrays.get("subjects"),
        soft_labels=arrays.get("soft_labels"),
        sequences=arrays.get("sequences"),
        roles=dict(meta.get("roles", {})),
        skipped=[BadItem(b["source"], b["problem"]) for b in meta.get("skipped", [])],
        root=meta.get("root", ""),
        info={**meta.get("info", {}), "cache": str(path)},
    )
