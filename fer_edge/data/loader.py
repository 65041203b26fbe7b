"""``load_dataset(path)``: detect which dataset a path holds and read it.

Kinds: fer2013 (csv/csv.gz), ferplus (fer2013new.csv + the fer2013 pixels), jaffe,
ckplus48, imagefolder, rafdb (RAF-DB basic), affectnet, npz (a ``fer-edge data prepare`` cache),
shards (a ``fer-edge data prepare --shards`` folder, pixels left on disk). Detection looks at
file names and csv headers only; when it cannot tell, it says so and asks for ``kind``.
Reader options a kind does not take are refused, never ignored.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, DataError
from ..labels import label_set
from .dataset import FaceDataset

KINDS = ("fer2013", "ferplus", "jaffe", "ckplus48", "imagefolder", "rafdb", "affectnet", "npz", "shards")
FER2013_NAMES = ("fer2013.csv.gz", "fer2013.csv")
FERPLUS_NAME = "fer2013new.csv"


def _csv_header(path: Path) -> list[str]:
    import gzip

    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            line = fh.readline()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    return [c.strip() for c in line.strip().split(",")]


def detect_kind(path: str | Path) -> str:
    """The dataset kind at ``path``, or a DataError explaining why it cannot tell."""
    from .affectnet import HEADER as AFFECTNET_HEADER, LISTS_DIR, looks_like_affectnet
    from .ckplus import looks_like_ckplus
    from .fer2013 import COLUMNS
    from .ferplus import HEADER
    from .jaffe import looks_like_jaffe
    from .rafdb import looks_like_rafdb
    from .shards import is_shard_cache

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".npz"):
            return "npz"
        if name.endswith((".csv", ".csv.gz")):
            header = _csv_header(path)
            if sorted(header) == sorted(COLUMNS):  # any column order (icml_face_data.csv)
                return "fer2013"
            if tuple(header) == HEADER:
                return "ferplus"
            if header[:1] == [AFFECTNET_HEADER[0]]:
                raise DataError(f"{path}: an AffectNet list; pass the AffectNet folder (the one holding "
                                f"{LISTS_DIR}/ or training.csv/validation.csv)")
            raise DataError(
                f"{path}: csv header {header[:12]} is neither FER2013 {list(COLUMNS)} nor FER+ "
                f"({', '.join(HEADER[:3])}, ...)"
            )
        raise DataError(f"{path}: cannot tell the dataset kind from this file; expected .csv, .csv.gz or .npz "
                        f"or a folder (pass --kind (kind= in Python), one of {', '.join(KINDS)})")
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise DataError(f"{path}: empty folder")
    names = {p.name for p in entries}
    if is_shard_cache(path):
        return "shards"
    if FERPLUS_NAME in names:
        return "ferplus"
    if any(n in names for n in FER2013_NAMES):
        return "fer2013"
    if looks_like_rafdb(path):
        return "rafdb"
    if looks_like_affectnet(path):
        return "affectnet"
    files = [p.name for p in entries if p.is_file()]
    if looks_like_jaffe(files):
        return "jaffe"
    dirs = [p for p in entries if p.is_dir()]
    if dirs:
        inner = [f.name for d in dirs for f in d.iterdir() if f.is_file() and not f.name.startswith(".")]
        if looks_like_ckplus(inner):
            return "ckplus48"
        sub = [c.name for d in dirs for c in d.iterdir() if c.is_dir()]
        if any(_is_label(n) for n in [d.name for d in dirs] + sub):
            return "imagefolder"
    from .images import is_image_file

    loose = sum(is_image_file(p) for p in entries)
    hint = f"; it holds {loose} images directly, expected <root>/<class>/*" if loose else ""
    raise DataError(
        f"{path}: cannot tell the dataset kind (no emotion class folders, no JAFFE .tiff names, no fer2013 csv, "
        f"no RAF-DB EmoLabel/, no AffectNet csvs)"
        f"{hint}; pass --kind (kind= in Python), one of {', '.join(KINDS)}"
    )


def _is_label(name: str) -> bool:
    from ..labels import ALIASES

    return name.strip().lower() in ALIASES


def _find_fer2013_pixels(ferplus_csv: Path) -> Path:
    """FER+ holds only votes: look for fer2013.csv(.gz) beside it or in ../fer2013/."""
    for folder in (ferplus_csv.parent, ferplus_csv.parent.parent / "fer2013"):
        for name in FER2013_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise DataError(
        f"{ferplus_csv}: FER+ holds only votes and no fer2013.csv(.gz) was found beside it or in "
        f"{ferplus_csv.parent.parent / 'fer2013'}; pass fer2013=PATH (--fer2013 PATH)"
    )


def _readers() -> dict[str, Callable[..., FaceDataset]]:
    from .affectnet import read_affectnet
    from .cache import load_npz
    from .ckplus import read_ckplus
    from .fer2013 import read_fer2013
    from .imagefolder import read_imagefolder
    from .jaffe import read_jaffe
    from .rafdb import read_rafdb
    from .shards import read_shards

    def npz(path, skip_bad=False):
        return load_npz(path)

    return {
        "fer2013": read_fer2013,
        "ferplus": _read_ferplus,
        "jaffe": read_jaffe,
        "ckplus48": read_ckplus,
        "imagefolder": read_imagefolder,
        "rafdb": read_rafdb,
        "affectnet": read_affectnet,
        "npz": npz,
        "shards": read_shards,
    }


def _read_ferplus(path, skip_bad=False, mode="majority", fer2013=None):
    from .ferplus import read_ferplus

    path = Path(path)
    votes = path / FERPLUS_NAME if path.is_dir() else path
    if isinstance(fer2013, FaceDataset):
        return read_ferplus(None, votes, mode=mode, skip_bad=skip_bad, fer2013=fer2013)
    pixels = Path(fer2013) if fer2013 else _find_fer2013_pixels(votes)
    return read_ferplus(pixels, votes, mode=mode, skip_bad=skip_bad)


def listing_for(path: str | Path, kind: str | None = None, skip_bad: bool = False, **opts):
    """The dataset at ``path`` as a ``Listing`` (faces read one at a time) for the kinds that can
    stream (imagefolder, rafdb, affectnet); None for the others, which load whole."""
    from .affectnet import list_affectnet
    from .imagefolder import list_imagefolder
    from .rafdb import list_rafdb

    path = Path(path)
    kind = kind or detect_kind(path)
    lister = {"imagefolder": list_imagefolder, "rafdb": list_rafdb, "affectnet": list_affectnet}.get(kind)
    if lister is None:
        return None
    _check_options(kind, opts)
    listing = lister(path, skip_bad=skip_bad, **opts)
    listing.info.setdefault("kind", kind)
    return listing


def _check_options(kind: str, opts: dict) -> None:
    allowed = reader_options(kind)
    unknown = sorted(k for k in opts if k not in allowed)
    if unknown:
        raise ConfigError(
            f"dataset kind {kind} does not take option(s) {unknown}; it takes {allowed or 'none'}"
        )


def reader_options(kind: str) -> list[str]:
    """Options ``load_dataset`` accepts for ``kind`` (besides path and skip_bad)."""
    params = inspect.signature(_readers()[kind]).parameters
    return [p for p in list(params)[1:] if p != "skip_bad"]


# The last dataset file read, by identity: convert (calibration and test faces), the bench, the
# model card and the tests read FER2013 (~5 s) once per process instead of once per call.
_LAST_FILE: dict[tuple, FaceDataset] = {}


def _file_identity(path: Path, kind: str, skip_bad: bool) -> tuple | None:
    """A key that changes when the file does; None for folders (a file inside may change unseen)."""
    if not path.is_file():
        return None
    st = path.stat()
    return (str(path.resolve()), kind, skip_bad, st.st_mtime_ns, st.st_size)


def load_dataset(
    path: str | Path, kind: str | None = None, skip_bad: bool = False, labels: str | None = None, **opts
) -> FaceDataset:
    """Read any supported dataset as a ``FaceDataset``.

    ``kind``: one of KINDS, detected from the path when None. ``opts`` go to the reader:
    ferplus: mode ("majority"|"soft"), fer2013 (path or FaceDataset);
    jaffe: crop ("face"|None), size, detector, margin, align, fallback ("whole");
    ckplus48 / imagefolder / rafdb: size (imagefolder also name); affectnet: size, margin.
    ``labels``: a named label set (``labels.LABEL_SETS``: "fer7", "fer4", "ferplus8") to
    re-index into, for any kind: samples of other classes are dropped (e.g. CK+ contempt
    for a FER7 model, or the 4-class subset), classes the data lacks just have no samples.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if kind is None:
        kind = detect_kind(path)
    elif kind not in KINDS:
        raise ConfigError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
    reader = _readers()[kind]
    _check_options(kind, opts)
    if kind == "fer2013" and path.is_dir():
        found = [path / n for n in FER2013_NAMES if (path / n).is_file()]
        if not found:
            raise DataError(f"{path}: no {' or '.join(FER2013_NAMES)} in this folder")
        path = found[0]
    key = _file_identity(path, kind, skip_bad) if not opts else None
    if key is not None and key in _LAST_FILE:
        ds = _LAST_FILE[key]
    else:
        ds = reader(path, skip_bad=skip_bad, **opts)
        ds.info.setdefault("kind", kind)
        ds.info.setdefault("path", str(path))  # errors about its faces name the file
        if key is not None:
            _LAST_FILE.clear()  # at most one dataset held
            _LAST_FILE[key] = ds
    # Each caller gets its own FaceDataset (arrays shared: nothing writes into a read dataset's arrays).
    ds = dataclasses.replace(ds, info=dict(ds.info), roles=dict(ds.roles), skipped=list(ds.skipped))
    if labels is not None:
        ds = relabel(ds, label_set(labels))
        ds.info["labels"] = labels
    return ds


def relabel(ds: FaceDataset, names: tuple[str, ...]) -> FaceDataset:
    """``ds`` indexed by ``names``: other classes dropped, absent ones allowed (zero samples)."""
    extra = tuple(n for n in names if n not in ds.label_names)
    if extra:  # widen first so with_labels can pick them (their columns/counts are empty)
        ds = ds.subset(np.arange(len(ds)))
        ds.label_names = ds.label_names + extra
        if ds.soft_labels is not None:
            pad = np.zeros((len(ds), len(extra)), ds.soft_labels.dtype)
            ds.soft_labels = np.concatenate([ds.soft_labels, pad], 1)
    return ds.with_labels(names)
