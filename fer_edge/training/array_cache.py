"""Arrays that take minutes to compute, kept on disk under a key of everything they depend on.

One owner for the training caches: a frozen backbone's features (``cache_features`` recipes), the
teachers' probabilities of a distillation run and offline-augmented copies (JAFFE). A changed input
is a new key, never a stale hit; a file is written to a temporary name and renamed, so a kill leaves
no half array behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..atomic import atomic_file


def array_key(*parts: Any) -> str:
    """16 hex digits over ``parts``: numpy arrays by their bytes, shape and dtype, anything else as JSON."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
            h.update(f"{part.shape}{part.dtype}".encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def cached_array(folder: Path | None, name: str, compute: Callable[[], np.ndarray],
                 log: Callable[[str], None] | None = None) -> np.ndarray:
    """``folder/name.npy`` when it exists, else ``compute()`` saved there (no folder: just compute)."""
    if folder is None:
        return compute()
    path = Path(folder) / f"{name}.npy"
    if path.is_file():
        if log:
            log(f"{name}: read from {path}")
        return np.load(path)
    arr = compute()
    with atomic_file(path, "wb") as fh:  # creates the folder
        np.save(fh, arr)
    return arr
