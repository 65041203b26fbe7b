"""RAF-DB basic, in its release layout::

    basic/
      EmoLabel/list_patition_label.txt   "train_00001.jpg 5" per line (the file name's typo is RAF-DB's)
      Image/aligned/train_00001_aligned.jpg   100x100 aligned faces (the list names the original file)

Splits come from the name prefix (``train_*`` 12,271 / ``test_*`` 3,068 in the release):
roles train=train, test=test; a recipe carves its validation from training. Labels 1-7 are
in RAF-DB's order and map onto the canonical names by ``RAF_LABELS``. The aligned faces are
already cropped (read as gray, kept at their size unless ``size`` is given). RAF-DB has no
subject ids.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..labels import FER7
from .dataset import BadItem, FaceDataset
from .images import read_gray, resize_gray
from .listing import Item, Listing, fail, materialize

LIST_FILE = Path("EmoLabel") / "list_patition_label.txt"
ALIGNED = Path("Image") / "aligned"
# RAF-DB basic label (1-7) -> canonical name (its README: 1 Surprise, 2 Fear, 3 Disgust,
# 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral).
RAF_LABELS = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}
NAME = re.compile(r"^(train|test)_\d+\.jpg$")


def looks_like_rafdb(root: Path) -> bool:
    return (root / LIST_FILE).is_file()


def aligned_name(listed: str) -> str:
    """``train_00001.jpg`` -> ``train_00001_aligned.jpg`` (the aligned folder's names)."""
    stem, dot, ext = listed.rpartition(".")
    return f"{stem}_aligned{dot}{ext}"


def list_rafdb(root: str | Path, skip_bad: bool = False, size: int | None = None) -> Listing:
    root = Path(root)
    labels_file, aligned = root / LIST_FILE, root / ALIGNED
    if not labels_file.is_file():
        raise DataError(f"{root}: not a RAF-DB basic folder: no {LIST_FILE}")
    if not aligned.is_dir():
        raise DataError(f"{root}: RAF-DB's {ALIGNED} folder is missing (only the aligned faces are read)")
    bad: list[BadItem] = []
    items: list[Item] = []
    for no, line in enumerate(labels_file.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{labels_file}:{no}"
        fields = line.split()
        if len(fields) != 2 or not NAME.match(fields[0]):
            fail(bad, skip_bad, where, f"expected '<train|test>_NNNNN.jpg LABEL', got {line.strip()!r}")
            continue
        name, code = fields
        if code not in {str(k) for k in RAF_LABELS}:
            fail(bad, skip_bad, where, f"label {code!r} of {name} is not one of RAF-DB's 1-7")
            continue
        items.append(Item(str(aligned / aligned_name(name)), RAF_LABELS[int(code)], name.split("_", 1)[0], where))
    missing = [it for it in items if not Path(it.source).is_file()]
    if missing and not skip_bad:
        first = missing[0]
        raise DataError(f"{first.where}: names {Path(first.source).name.replace('_aligned', '')} but "
                        f"{first.source} does not exist ({len(missing)} of {len(items)} listed images are missing)")
    for it in missing:
        bad.append(BadItem(it.where, f"{it.source} does not exist"))
    gone = set(missing)
    items = [it for it in items if it not in gone]
    if not items:
        raise DataError(f"{labels_file}: lists no readable RAF-DB images")

    def read(item: Item):
        img = read_gray(item.source)
        return resize_gray(img, size) if size else img

    return Listing("rafdb", str(root), items, FER7, read, roles={"train": "train", "test": "test"}, skipped=bad,
                   info={"images": str(ALIGNED), "label_map": {str(k): v for k, v in RAF_LABELS.items()}})


def read_rafdb(root: str | Path, skip_bad: bool = False, size: int | None = None) -> FaceDataset:
    """RAF-DB basic's aligned faces as a gray ``FaceDataset`` in the canonical FER7 order."""
    return materialize(list_rafdb(root, skip_bad, size), skip_bad)
