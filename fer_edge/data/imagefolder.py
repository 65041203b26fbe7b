"""Image-folder datasets: ``<root>/<split>/<class>/*`` or ``<root>/<class>/*``.

Class folder names go through ``labels.canonical`` (``anger`` -> ``angry`` ...); an
unknown name is an error, never a guessed label. Without a split level, files named
``Training_*``, ``PublicTest_*`` or ``PrivateTest_*`` (the Kaggle re-pack of FER2013)
take their split from that prefix, otherwise the split is ``"all"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import CANONICAL, FER7, canonical
from .dataset import BadItem, FaceDataset
from .images import is_image_file, read_stack

FER_SPLITS = ("Training", "PublicTest", "PrivateTest")
# Folder/prefix split names -> protocol role.
ROLE_OF_SPLIT = {
    "training": "train",
    "train": "train",
    "publictest": "val",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "privatetest": "test",
    "test": "test",
    "testing": "test",
}


@dataclass
class ClassFolder:
    split: str | None  # None when the layout has no split level
    label: str  # canonical label
    folder: Path
    files: list[Path]


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_folder(folder: Path, split: str | None, bad: list[BadItem], skip_bad: bool) -> ClassFolder | None:
    try:
        label = canonical(folder.name, where=f"class folder {folder}")
    except DataError as exc:
        if not skip_bad:
            raise
        n = sum(1 for _ in folder.iterdir())
        bad.append(BadItem(str(folder), f"unknown class folder name {folder.name!r}; its {n} files were skipped ({exc})"))
        return None
    files, others = [], []
    for f in sorted(folder.iterdir()):
        if f.name.startswith("."):
            continue
        (files if is_image_file(f) else others).append(f)
    for f in others:  # listed, not fatal: a stray README must not abort a load
        bad.append(BadItem(str(f), "ignored: not an image file"))
    return ClassFolder(split, label, folder, files)


def scan_class_folders(root: str | Path, skip_bad: bool = False, bad: list[BadItem] | None = None) -> list[ClassFolder]:
    """Find the class folders of an image-folder dataset (one or two levels deep)."""
    root = Path(root)
    bad = [] if bad is None else bad
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    subdirs = _subdirs(root)
    if not subdirs:
        has_images = any(is_image_file(p) for p in root.iterdir())
        if has_images:
            raise DataError(f"{root}: images but no class folders; expected <root>/<class>/*.png or <root>/<split>/<class>/*.png")
        raise DataError(f"{root}: empty folder (no class folders, no images)")
    nested = [d for d in subdirs if _subdirs(d)]
    if nested and len(nested) != len(subdirs):
        flat = [d.name for d in subdirs if d not in nested]
        raise DataError(
            f"{root}: mixed layout: {[d.name for d in nested]} hold class folders but {flat} do not; "
            "use <root>/<class>/* or <root>/<split>/<class>/* throughout"
        )
    for f in sorted(root.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            bad.append(BadItem(str(f), "ignored: not inside a class folder"))
    out: list[ClassFolder] = []
    if nested:
        for split_dir in subdirs:
            for folder in _subdirs(split_dir):
                cf = _class_folder(folder, split_dir.name, bad, skip_bad)
                if cf:
                    out.append(cf)
    else:
        for folder in subdirs:
            cf = _class_folder(folder, None, bad, skip_bad)
            if cf:
                out.append(cf)
    return out


def split_from_prefix(names: list[str]) -> list[str] | None:
    """FER2013 split of each file name when every name starts with ``<Split>_``, else None."""
    splits = []
    for name in names:
        prefix = name.split("_", 1)[0]
        if prefix not in FER_SPLITS or "_" not in name:
            return None
        splits.append(prefix)
    return splits


def roles_for(splits: list[str]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for split in dict.fromkeys(splits):
        role = ROLE_OF_SPLIT.get(split.lower())
        if role and role not in roles:
            roles[role] = split
    return roles


def choose_label_names(present: set[str]) -> tuple[str, ...]:
    """FER2013's 7 labels when they cover the data, else FER7 + contempt (``load_dataset(labels=)`` re-indexes)."""
    return FER7 if present <= set(FER7) else CANONICAL


CROPS = (None, "face")


def _files(root: Path, skip_bad: bool, bad: list[BadItem]) -> tuple[list[Path], list[str], list[str]]:
    """(files, canonical labels, split names) of a class-folder dataset."""
    folders = scan_class_folders(root, skip_bad, bad)
    files: list[Path] = []
    labels: list[str] = []
    splits: list[str] = []
    for cf in folders:
        files += cf.files
        labels += [cf.label] * len(cf.files)
        if cf.split is not None:
            splits += [cf.split] * len(cf.files)
    if not files:
        raise DataError(f"{root}: no image files in its class folders ({', '.join(str(c.folder.name) for c in folders) or 'none'})")
    if len(splits) != len(files):  # no split level: try the Kaggle file-name prefix
        splits = split_from_prefix([f.name for f in files]) or ["all"] * len(files)
    return files, labels, splits


def read_imagefolder(
    root: str | Path,
    skip_bad: bool = False,
    size: int | None = None,
    name: str | None = None,
    crop: str | None = None,
    detector: str = "yunet",
    margin: float = 0.2,
) -> FaceDataset:
    """Read a class-folder dataset into a gray ``FaceDataset`` (optionally resized to ``size``).

    ``crop="face"`` detects the face in each image and cuts it out as JAFFE does (an image
    without a face is a bad item); the default takes images as already-cropped faces."""
    if crop is not None:
        from .listing import materialize

        return materialize(list_imagefolder(root, skip_bad, size, name, crop, detector, margin), skip_bad)
    root = Path(root)
    bad: list[BadItem] = []
    files, labels, splits = _files(root, skip_bad, bad)
    return _build(name or root.name, root, files, labels, splits, bad, skip_bad, size)


def list_imagefolder(root: str | Path, skip_bad: bool = False, size: int | None = None, name: str | None = None,
                     crop: str | None = None, detector: str = "yunet", margin: float = 0.2):
    """The same dataset as a ``Listing`` (read one face at a time: ``fer-edge data prepare --shards``)."""
    from ..errors import ConfigError
    from .images import read_gray, resize_gray
    from .listing import Item, Listing

    if crop not in CROPS:
        raise ConfigError(f"image-folder crop must be None or 'face', not {crop!r}")
    root = Path(root)
    bad: list[BadItem] = []
    files, labels, splits = _files(root, skip_bad, bad)
    items = [Item(str(f), label, split) for f, label, split in zip(files, labels, splits)]
    info: dict = {}
    if crop == "face":
        from .jaffe import _crop, _detector, _face_spec  # JAFFE's detect-and-cut, shared

        det, spec = _detector(detector), _face_spec(margin, False)
        info = {"crop": "face", "detector": detector, "margin": margin,
                "face": {"margin": float(margin), "align": False, "square": True}}

    def read(item: Item) -> np.ndarray:
        img = read_gray(item.source)
        if crop == "face":
            face = _crop(det, spec, img)
            if face is None:
                raise DataError(f"{item.source}: no face detected")
            img = face
        return resize_gray(img, size) if size else img

    split_list = [it.split for it in items]
    return Listing(name or root.name, str(root), items, choose_label_names(set(labels)), read,
                   roles=roles_for(split_list), skipped=bad, info=info)


def _build(
    name: str,
    root: Path,
    files: list[Path],
    labels: list[str],
    splits: list[str],
    bad: list[BadItem],
    skip_bad: bool,
    size: int | None,
    subjects: list[str] | None = None,
    sequences: list[str] | None = None,
) -> FaceDataset:
    images, keep = read_stack(files, size, bad, skip_bad)
    if not keep.any():
        raise DataError(f"{root}: none of its {len(files)} images could be read")
    names = choose_label_names(set(labels))
    index = {n: i for i, n in enumerate(names)}

    def kept(values: list[str]) -> np.ndarray:
        return np.asarray(values, dtype=str)[keep]

    split_arr = kept(splits)
    return FaceDataset(
        name=name,
        images=images,
        labels=np.asarray([index[label] for label in labels], dtype=np.int64)[keep],
        label_names=names,
        splits=split_arr,
        sources=kept([str(f) for f in files]),
        subjects=None if subjects is None else kept(subjects),
        sequences=None if sequences is None else kept(sequences),
        roles=roles_for(split_arr.tolist()),
        skipped=bad,
        root=str(root),
    )
