"""FER2013 (`fer2013.csv` or `.csv.gz`: emotion, pixels, Usage) with its official splits."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import FER7
from .dataset import BadItem, FaceDataset

COLUMNS = ("emotion", "pixels", "Usage")
SPLITS = ("Training", "PublicTest", "PrivateTest")
ROLES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
SIDE = 48


def read_text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:  # gzip raises both for truncated files
        raise DataError(f"{path}: cannot read ({exc})") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text csv ({exc})") from exc


def read_fer2013(path: str | Path, skip_bad: bool = False) -> FaceDataset:
    """Read the Kaggle FER2013 csv. Takes a few seconds for the full 35,887 rows.

    Every row is checked: label 0..6, 2,304 pixels in 0..255, a known Usage. A bad
    row raises a DataError naming the row, or is skipped and listed with ``skip_bad``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    lines = read_text(path).splitlines()
    if not lines:
        raise DataError(f"{path}: empty file")
    header = [c.strip() for c in lines[0].split(",")]
    if sorted(header) != sorted(COLUMNS):
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        what = "; ".join(x for x in (f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "") if x)
        raise DataError(f"{path}: header is {header}, expected columns {list(COLUMNS)} ({what or 'duplicates'})")
    # Kaggle's icml_face_data.csv has the same columns in another order ("emotion, Usage, pixels").
    e_col, p_col, u_col = (header.index(c) for c in COLUMNS)

    emotions, pixels, usages, rows, bad = [], [], [], [], []
    row = -1
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row += 1  # 0-based data row, as FER+ and provenance.csv count them
        parts = line.split(",")
        problem = None
        if len(parts) != 3:
            problem = f"has {len(parts)} columns, expected 3"
        elif parts[e_col].strip() not in {"0", "1", "2", "3", "4", "5", "6"}:
            problem = f"emotion {parts[e_col]!r} is not a label 0..6"
        elif parts[u_col].strip() not in SPLITS:
            problem = f"Usage {parts[u_col]!r} is not one of {', '.join(SPLITS)}"
        elif parts[p_col].count(" ") != SIDE * SIDE - 1:  # fast check; extra whitespace is allowed
            n_values = len(parts[p_col].split())
            if n_values != SIDE * SIDE:
                problem = f"pixels has {n_values} values, expected {SIDE * SIDE}"
        if problem:
            bad.append(BadItem(f"{path.name}:row {row} (line {lineno})", problem))
            continue
        emotions.append(int(parts[e_col]))
        pixels.append(parts[p_col])
        usages.append(parts[u_col].strip())
        rows.append(row)

    images = _parse_pixels(path, pixels, rows, bad)
    if bad and not skip_bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more bad rows; --skip-bad skips them)" if len(bad) > 1 else ""
        raise DataError(f"{first.source}: {first.problem}{more}")
    keep = np.ones(len(rows), dtype=bool) if images is None else images[1]
    imgs = images[0] if images is not None else np.zeros((0, SIDE, SIDE), np.uint8)
    rows_arr = np.asarray(rows, dtype=np.int64)[keep]
    if len(rows_arr) == 0:
        raise DataError(f"{path}: no usable rows")
    return FaceDataset(
        name="fer2013",
        images=imgs,
        labels=np.asarray(emotions, dtype=np.int64)[keep],
        label_names=FER7,
        splits=np.asarray(usages, dtype=object)[keep].astype(str),
        sources=np.array([f"{path.name}:row {r}" for r in rows_arr]),
        subjects=None,
        roles=dict(ROLES),
        skipped=bad,
        root=str(path),
        info={"csv_rows": row + 1},  # FER+ votes are aligned with the full csv's data rows
    )


CHUNK_ROWS = 2048  # rows parsed per numpy call: bounded memory, same speed as one big call


def _parse_pixels(path: Path, pixels: list[str], rows: list[int], bad: list[BadItem]):
    """Parse the pixel strings chunk by chunk, falling back per row to name bad values.

    Values are parsed as int64: C's strtol saturates instead of wrapping, so a huge
    value can never turn into a plausible pixel (int16/int32 parsing wraps 65636 -> 100).
    """
    if not pixels:
        return None
    n = len(pixels)
    out = np.zeros((n, SIDE * SIDE), dtype=np.uint8)
    keep = np.ones(n, dtype=bool)
    for start in range(0, n, CHUNK_ROWS):
        chunk = pixels[start:start + CHUNK_ROWS]
        values = _fast_parse(chunk)
        if values is None:  # a token that is not an integer somewhere in this chunk
            values = np.zeros((len(chunk), SIDE * SIDE), dtype=np.int64)
            for i, text in enumerate(chunk):
                try:
                    values[i] = [int(v) for v in text.split()]
                except ValueError:
                    keep[start + i] = False
                    bad.append(BadItem(f"{path.name}:row {rows[start + i]}", "pixels contains a value that is not an integer"))
        in_range = ((values >= 0) & (values <= 255)).all(1)
        for i in np.flatnonzero(~in_range & keep[start:start + len(chunk)]):
            keep[start + i] = False
            bad.append(BadItem(f"{path.name}:row {rows[start + i]}", "pixels has a value outside 0..255"))
        out[start:start + len(chunk)] = np.where(in_range[:, None], values, 0).astype(np.uint8)
    return out[keep].reshape(-1, SIDE, SIDE), keep


def _fast_parse(chunk: list[str]) -> np.ndarray | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            flat = np.fromstring(" ".join(chunk), dtype=np.int64, sep=" ")  # noqa: NPY201 - text mode is supported
        except ValueError:  # numpy >= 2.3 raises on a token that does not parse
            return None
    if flat.size != len(chunk) * SIDE * SIDE:  # older numpy stops early instead
        return None
    return flat.reshape(len(chunk), SIDE * SIDE)
