"""CK+48: ``<class>/S###_###_########.png`` (last frames of CK+ sequences, 48x48 crops).

Subject = ``S###``; sequence = ``S###_###``. Each sequence contributes ~3 near-identical
frames, so splits must go by subject (see ``fer_edge.data.splits``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from .dataset import BadItem, FaceDataset
from .imagefolder import _build, scan_class_folders

NAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})\.png$", re.IGNORECASE)


def looks_like_ckplus(names: list[str]) -> bool:
    return bool(names) and all(NAME.match(n) for n in names)


def read_ckplus(root: str | Path, skip_bad: bool = False, size: int | None = None) -> FaceDataset:
    root = Path(root)
    bad: list[BadItem] = []
    folders = scan_class_folders(root, skip_bad, bad)
    if any(cf.split is not None for cf in folders):
        raise DataError(f"{root}: CK+48 has no split folders; expected <root>/<class>/S###_###_########.png")
    files, labels, subjects, sequences = [], [], [], []
    for cf in folders:
        for f in cf.files:
            m = NAME.match(f.name)
            if not m:
                problem = "file name does not match S###_###_########.png (cannot tell the subject)"
                if not skip_bad:
                    raise DataError(f"{f}: {problem}")
                bad.append(BadItem(str(f), problem))
                continue
            files.append(f)
            labels.append(cf.label)
            subjects.append(m.group(1).upper())
            sequences.append(f"{m.group(1).upper()}_{m.group(2)}")
    if not files:
        raise DataError(f"{root}: no CK+48 images (<class>/S###_###_########.png) found")
    return _build(
        "ckplus48", root, files, labels, ["all"] * len(files), bad, skip_bad, size,
        subjects=subjects, sequences=sequences,
    )
