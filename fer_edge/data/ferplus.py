"""FER+ (Barsoum et al. 2016): 10 crowd votes per FER2013 image, row-aligned with fer2013.csv.

Votes are turned into labels the way the FER+ reference code does it
(microsoft/FERPlus ``ferplus.py::_process_data``):

* a class with a single vote is an outlier and its vote is removed;
* ``majority``: the top class must hold more than half of the remaining votes,
  otherwise the image has no reliable label and is dropped;
* ``soft``: the vote distribution (after outlier removal) over the 8 emotions; the
  hard label is the majority label where there is one, else -1;
* an image whose top class is "unknown" or "not a face" (NF) is dropped in both
  modes, as are the rows FER+ left without an image name (their votes are all NF).

Labels use ``labels.LABEL_SETS["ferplus8"]`` (FER2013's 7 + contempt).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import LABEL_SETS
from .dataset import BadItem, FaceDataset
from .fer2013 import read_fer2013, read_text

HEADER = ("Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
          "contempt", "unknown", "NF")
EMOTION_COLUMNS = HEADER[2:10]
LABEL_NAMES = LABEL_SETS["ferplus8"]
# FER+ column order -> canonical ferplus8 index.
_TO_CANONICAL = np.array([LABEL_NAMES.index(n) for n in
                          ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")])
MODES = ("majority", "soft")


def read_votes(path: str | Path, skip_bad: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], list[BadItem], int]:
    """Parse ``fer2013new.csv``: (rows, votes (M,10), usage per row, bad rows, number of data rows).

    ``rows`` are 0-based data rows, the same numbering as fer2013.csv.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    reader = csv.reader(io.StringIO(read_text(path)))
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}: empty file")
    if tuple(h.strip() for h in header) != HEADER:
        raise DataError(f"{path}: header is {header}, expected FER+ columns {list(HEADER)}")
    rows, votes, usages, bad = [], [], [], []
    n_rows = 0
    for parts in reader:
        if not parts:
            continue
        row = n_rows
        n_rows += 1
        problem = None
        if len(parts) != len(HEADER):
            problem = f"has {len(parts)} columns, expected {len(HEADER)}"
        else:
            try:
                v = [int(x) for x in parts[2:]]
                if min(v) < 0:
                    problem = "negative vote count"
            except ValueError:
                problem = f"vote counts {parts[2:]} are not all integers"
        if problem:
            bad.append(BadItem(f"{path.name}:row {row} (line {row + 2})", problem))
            continue
        if not parts[1].strip():  # FER+ blanked the name of images that are not faces
            v = [0] * 9 + [10]
        rows.append(row)
        votes.append(v)
        usages.append(parts[0].strip())
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more bad rows; --skip-bad skips them)" if len(bad) > 1 else ""
        raise DataError(f"{bad[0].source}: {bad[0].problem}{more}")
    return np.asarray(rows, np.int64), np.asarray(votes, np.int64).reshape(-1, 10), usages, bad, n_rows


def votes_to_labels(votes: np.ndarray, mode: str = "majority") -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(labels, soft (N,8) float32, keep mask, drop reasons) from raw (N,10) FER+ votes."""
    if mode not in MODES:
        raise DataError(f"FER+ mode must be one of {', '.join(MODES)}, not {mode!r}")
    v = np.where(votes > 1, votes, 0).astype(np.float64)  # single votes are outliers
    total = v.sum(1)
    top = v.argmax(1)
    top_votes = v.max(1)
    has_votes = total > 0
    unknown_or_nf = has_votes & (top >= 8)
    # The top class can tie with unknown/NF; argmax picks the emotion then, so check ties too.
    unknown_or_nf |= has_votes & (np.maximum(v[:, 8], v[:, 9]) >= top_votes)
    majority = has_votes & (top_votes > 0.5 * total) & ~unknown_or_nf
    emotions = v[:, :8]
    em_total = emotions.sum(1, keepdims=True)
    soft = np.zeros((len(v), 8), np.float32)
    soft[:, _TO_CANONICAL] = emotions / np.clip(em_total, 1e-8, None)
    labels = np.full(len(v), -1, np.int64)
    labels[majority] = _TO_CANONICAL[top[majority]]
    if mode == "majority":
        keep = majority
    else:
        keep = has_votes & ~unknown_or_nf & (em_total[:, 0] > 0)
    reasons = {
        "no votes after outlier removal": int((~has_votes).sum()),
        "unknown or not-a-face": int(unknown_or_nf.sum()),
    }
    if mode == "majority":
        reasons["no majority (top class <= half the votes)"] = int((has_votes & ~unknown_or_nf & ~majority).sum())
    return labels, soft, keep, reasons


def read_ferplus(
    fer2013_csv: str | Path | None,
    ferplus_csv: str | Path,
    mode: str = "majority",
    skip_bad: bool = False,
    fer2013: FaceDataset | None = None,
) -> FaceDataset:
    """FER2013 pixels with FER+ labels. Pass an already-read ``fer2013`` dataset to avoid re-reading."""
    if mode not in MODES:
        raise DataError(f"FER+ mode must be one of {', '.join(MODES)}, not {mode!r}")
    if fer2013 is None:
        if fer2013_csv is None:
            raise DataError("FER+ holds only votes; give the fer2013.csv(.gz) with the pixels")
        fer2013 = read_fer2013(fer2013_csv, skip_bad=skip_bad)
    ferplus_csv = Path(ferplus_csv)
    rows, votes, usages, bad, n_rows = read_votes(ferplus_csv, skip_bad)
    fer_name = Path(fer2013.root).name or fer2013.name
    n_fer = len(fer2013) + len(fer2013.skipped)  # every fer2013 data row, read or skipped
    if n_rows != n_fer:  # misaligned files would give wrong labels, even with --skip-bad
        raise DataError(
            f"{ferplus_csv}: has {n_rows} rows but {fer_name} has {n_fer}; FER+ must be row-aligned with fer2013.csv"
        )
    fer_rows = np.array([int(s.rsplit("row ", 1)[1]) for s in fer2013.sources], np.int64)
    pos = np.full(n_fer, -1, np.int64)
    pos[fer_rows] = np.arange(len(fer_rows))
    at = pos[rows]
    for r in rows[at < 0]:  # the pixels of this row were bad and skipped
        bad.append(BadItem(f"{ferplus_csv.name}:row {r}", f"its {fer_name} row was skipped as bad"))
    ok = at >= 0
    rows, votes, at = rows[ok], votes[ok], at[ok]
    usages_arr = np.asarray(usages, dtype=str)[ok]
    mismatch = np.flatnonzero(usages_arr != fer2013.splits[at])
    if len(mismatch):
        i = mismatch[0]
        raise DataError(
            f"{ferplus_csv.name}:row {rows[i]}: Usage {str(usages_arr[i])!r} but {fer_name} row {rows[i]} is "
            f"{str(fer2013.splits[at[i]])!r}; the files are not row-aligned ({len(mismatch)} rows differ)"
        )
    labels, soft, keep, reasons = votes_to_labels(votes, mode)
    idx = at[keep]
    return FaceDataset(
        name="ferplus" if mode == "majority" else "ferplus-soft",
        images=fer2013.images[idx],
        labels=labels[keep],
        label_names=LABEL_NAMES,
        splits=fer2013.splits[idx],
        sources=fer2013.sources[idx],
        soft_labels=soft[keep] if mode == "soft" else None,
        roles=dict(fer2013.roles),
        skipped=list(fer2013.skipped) + bad,
        root=str(ferplus_csv),
        info={"mode": mode, "votes_rows": int(len(rows)), "kept": int(keep.sum()), "dropped": reasons},
    )
