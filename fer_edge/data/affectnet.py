"""AffectNet (manually annotated part), in its release layout::

    AffectNet/
      Manually_Annotated_file_lists/training.csv, validation.csv   (or the csvs directly in the folder)
      Manually_Annotated_Images/<dir>/<file>.jpg                   (paths as in subDirectory_filePath)

csv columns: subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks, expression, valence, arousal; a file may start with that header or
not (the release's validation.csv has none), both are read.

Expression codes 0-7 map onto the canonical names by ``AFFECTNET_LABELS`` (contempt is
kept; ``labels="fer7"`` drops it). Rule for 8-10: rows coded 8 None, 9 Uncertain and
10 No-Face carry no basic emotion, so they are dropped and counted in ``info["dropped"]``.

Each face is cut from its image with the csv's face box, the way the live path cuts a
detected face (``fer_edge.face.crop_face``: box grown by ``margin`` per side, square,
black outside the image), then resized to ``size``; the FaceSpec goes into ``info["face"]``
so a trained bundle crops live faces the same way. A box that is not inside its image is a
bad row. Splits: ``train`` (training.csv) and ``validation`` (validation.csv); the test set
is not public, so as in the papers the validation set takes the test role and a recipe
carves its own validation from training.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DataError
from .dataset import BadItem, FaceDataset
from .images import read_gray, resize_gray
from .imagefolder import choose_label_names
from .listing import Item, Listing, fail, materialize

CSV_FILES = {"training.csv": "train", "validation.csv": "validation"}
LISTS_DIR = "Manually_Annotated_file_lists"
IMAGES_DIR = "Manually_Annotated_Images"
HEADER = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
          "expression", "valence", "arousal")
AFFECTNET_LABELS = {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "angry",
                    7: "contempt"}
DROPPED = {8: "none", 9: "uncertain", 10: "no-face"}


def csv_files(root: Path) -> list[Path]:
    """The AffectNet csvs of ``root`` (in its file-lists folder or directly inside), training first."""
    for folder in (root / LISTS_DIR, root):
        found = [folder / n for n in CSV_FILES if (folder / n).is_file()]
        if found:
            return found
    return []


def looks_like_affectnet(root: Path) -> bool:
    """An AffectNet csv beside/under ``root`` whose first row is the header or a headerless data row."""
    files = csv_files(root)
    if not files:
        return False
    with open(files[0], newline="", errors="replace") as fh:
        first = next(csv.reader(fh), [])
    return bool(first) and (first[0] == HEADER[0] or (len(first) >= 7 and "/" in first[0]))


def _rows(path: Path):
    """(line number, fields) of a csv, without its header when it has one."""
    with open(path, newline="", errors="replace") as fh:
        for no, fields in enumerate(csv.reader(fh), 1):
            if no == 1 and fields and fields[0] == HEADER[0]:
                continue
            if fields:
                yield no, fields


def list_affectnet(root: str | Path, skip_bad: bool = False, size: int = 100, margin: float = 0.2) -> Listing:
    from ..bundle import FaceSpec

    root = Path(root)
    files = csv_files(root)
    if not files:
        raise DataError(f"{root}: not an AffectNet folder: no training.csv or validation.csv "
                        f"(in {LISTS_DIR}/ or the folder itself)")
    images_root = root / IMAGES_DIR if (root / IMAGES_DIR).is_dir() else root
    bad: list[BadItem] = []
    items: list[Item] = []
    dropped = {name: 0 for name in DROPPED.values()}
    for f in files:
        split = CSV_FILES[f.name]
        for no, fields in _rows(f):
            where = f"{f}:{no}"
            if len(fields) < 7:
                fail(bad, skip_bad, where, f"expected {len(HEADER)} columns ({', '.join(HEADER)}), got {len(fields)}")
                continue
            try:
                code = int(fields[6])
                x, y, w, h = (int(round(float(v))) for v in fields[1:5])
            except ValueError:
                fail(bad, skip_bad, where, f"face box {fields[1:5]} or expression {fields[6]!r} is not a number")
                continue
            if code in DROPPED:
                dropped[DROPPED[code]] += 1
                continue
            if code not in AFFECTNET_LABELS:
                fail(bad, skip_bad, where, f"expression {code} is not an AffectNet code (0-10)")
                continue
            if w <= 0 or h <= 0:
                fail(bad, skip_bad, where, f"face box width/height {w}x{h} is not positive")
                continue
            items.append(Item(str(images_root / fields[0]), AFFECTNET_LABELS[code], split, where, (x, y, w, h)))
    missing = [it for it in items if not Path(it.source).is_file()]
    if missing and not skip_bad:
        raise DataError(f"{missing[0].where}: image {missing[0].source} does not exist "
                        f"({len(missing)} of {len(items)} listed images are missing)")
    for it in missing:
        bad.append(BadItem(it.where, f"{it.source} does not exist"))
    gone = set(missing)
    items = [it for it in items if it not in gone]
    if not items:
        raise DataError(f"{root}: no usable AffectNet rows in {', '.join(f.name for f in files)}")
    spec = FaceSpec(margin=float(margin), align=False, square=True)

    def read(item: Item):
        from ..face import crop_face
        from ..face.types import Face

        img = read_gray(item.source)
        x, y, w, h = item.box
        H, W = img.shape
        if x < 0 or y < 0 or x + w > W or y + h > H:
            raise DataError(f"{item.where}: face box x={x} y={y} w={w} h={h} is outside the {W}x{H} image "
                            f"{item.source}")
        return resize_gray(crop_face(img, Face((x, y, w, h), 1.0), spec), size)

    present = {CSV_FILES[f.name] for f in files}
    roles = {role: split for role, split in (("train", "train"), ("test", "validation")) if split in present}
    return Listing("affectnet", str(root), items, choose_label_names({it.label for it in items}), read, roles=roles,
                   skipped=bad, info={"dropped": dropped, "size": [size, size],
                                      "label_map": {str(k): v for k, v in AFFECTNET_LABELS.items()},
                                      "face": {"margin": float(margin), "align": False, "square": True}})


def read_affectnet(root: str | Path, skip_bad: bool = False, size: int = 100, margin: float = 0.2) -> FaceDataset:
    """AffectNet's face crops (expression codes 0-7) as a gray ``FaceDataset``."""
    return materialize(list_affectnet(root, skip_bad, size, margin), skip_bad)
