"""Small RAF-DB basic and AffectNet folders in their exact release layouts (holds no tests).

Faces are real FER2013 test faces from ../shared/data when present, else seeded noise (the
readers never look at what the pixels show). Each builder returns what it wrote, so tests
can check every sample against its file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from fer_edge import paths


def faces(n: int, seed: int = 0) -> np.ndarray:
    """(n, 48, 48) uint8 faces."""
    root = paths.data_root()
    folder = root / "fer2013_test_images" if root else None
    if folder is not None and folder.is_dir():
        files = sorted(folder.glob("*/*.jpg"))
        pick = np.random.default_rng(seed).choice(len(files), n, replace=False)
        return np.stack([cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE) for i in pick])
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def make_rafdb(root: Path, n_train: int = 14, n_test: int = 7, seed: int = 0) -> dict:
    """``root``/EmoLabel/list_patition_label.txt + Image/aligned (100x100 RGB) + Image/original.

    Labels cycle through RAF-DB's codes 1-7. Returns {"root", "rows": [(name, code)]}.
    """
    (root / "EmoLabel").mkdir(parents=True)
    (root / "Image" / "aligned").mkdir(parents=True)
    (root / "Image" / "original").mkdir(parents=True)
    names = [f"train_{i:05d}.jpg" for i in range(1, n_train + 1)] + [f"test_{i:04d}.jpg" for i in range(1, n_test + 1)]
    rows = [(name, i % 7 + 1) for i, name in enumerate(names)]
    for (name, _), face in zip(rows, faces(len(rows), seed)):
        rgb = cv2.cvtColor(cv2.resize(face, (100, 100), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg")), rgb)
        cv2.imwrite(str(root / "Image" / "original" / name), cv2.copyMakeBorder(rgb, 30, 30, 40, 40, cv2.BORDER_REFLECT))
    (root / "EmoLabel" / "list_patition_label.txt").write_text("".join(f"{n} {c}\n" for n, c in rows))
    return {"root": root, "rows": rows}


def make_affectnet(root: Path, codes_train=tuple(range(11)) * 2, codes_val=tuple(range(8)), ext: str = "jpg",
                   seed: int = 0) -> dict:
    """``root``/Manually_Annotated_file_lists/{training,validation}.csv + Manually_Annotated_Images.

    Each image is a noisy canvas with a 64x64 face pasted at its csv box; training.csv has the
    header, validation.csv (as released) none. Returns {"root", "rows": [(csv, line, relpath, box, code, face64)]}.
    """
    lists, images = root / "Manually_Annotated_file_lists", root / "Manually_Annotated_Images"
    lists.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    pool = faces(len(codes_train) + len(codes_val), seed)
    out: list = []
    k = 0
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
              "expression", "valence", "arousal"]
    for name, codes, with_header in (("training.csv", codes_train, True), ("validation.csv", codes_val, False)):
        with open(lists / name, "w", newline="") as fh:
            w = csv.writer(fh)
            line = 0
            if with_header:
                w.writerow(header)
                line += 1
            for code in codes:
                H, W = int(rng.integers(100, 140)), int(rng.integers(100, 160))
                x, y = int(rng.integers(0, W - 64)), int(rng.integers(0, H - 64))
                canvas = rng.integers(0, 256, (H, W), dtype=np.uint8)
                face = cv2.resize(pool[k], (64, 64), interpolation=cv2.INTER_CUBIC)
                canvas[y:y + 64, x:x + 64] = face
                rel = f"{k % 3 + 1}/{k:040x}.{ext}"
                (images / rel).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(images / rel), cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
                marks = ";".join(f"{v:.2f}" for v in rng.uniform(0, 64, 136))
                w.writerow([rel, x, y, 64, 64, marks, code, f"{rng.uniform(-1, 1):.4f}", f"{rng.uniform(-1, 1):.4f}"])
                line += 1
                out.append((name, line, rel, (x, y, 64, 64), code, face))
                k += 1
    return {"root": root, "rows": out}
