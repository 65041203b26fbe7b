"""Where the datasets and pretrained files live.

Nothing here is downloaded or copied into the repository (several datasets forbid
redistribution). Locations come from environment variables, defaulting to a
``shared/`` folder beside the checkout (the development and CI layout).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

ENV_SHARED = "FER_EDGE_SHARED"
ENV_DATA = "FER_EDGE_DATA"
ENV_WEIGHTS = "FER_EDGE_WEIGHTS"
# How a bundle's provenance names a dataset under the data root, so that it resolves on any machine.
DATA_ROOT_TOKEN = f"${ENV_DATA}"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    starts = [Path.cwd().resolve(), here]
    out: list[Path] = []
    for start in starts:
        for parent in [start, *start.parents]:
            out.append(parent / "shared")
            out.append(parent.parent / "shared")
    return out


def shared_root() -> Path | None:
    """The shared folder (datasets + weights), or None when there is none."""
    env = os.environ.get(ENV_SHARED)
    if env:
        return Path(env)
    for cand in _candidates():
        if (cand / "README.md").is_file() and ((cand / "data").is_dir() or (cand / "weights").is_dir()):
            return cand
    return None


def data_root() -> Path | None:
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env)
    root = shared_root()
    return root / "data" if root else None


def data_root_source() -> str | None:
    """Where ``data_root()`` comes from (None when there is no data root)."""
    if os.environ.get(ENV_DATA):
        return ENV_DATA
    if data_root() is None:
        return None
    return ENV_SHARED if os.environ.get(ENV_SHARED) else "a shared/ folder beside the working directory or the package"


def portable_data_path(path: str | Path) -> str:
    """``path`` as provenance records it: "$FER_EDGE_DATA/fer2013/fer2013.csv.gz" when it lies under the data
    root (a shipped or copied bundle then finds its dataset wherever that root is), else absolute."""
    root = data_root()
    # as written first (a root of symlinks stays the root), then with every link resolved
    for p, r in ((Path(os.path.abspath(path)), root and Path(os.path.abspath(root))),
                 (Path(path).resolve(), root and root.resolve())):
        if r is not None and p.is_relative_to(r):
            rel = p.relative_to(r)
            return DATA_ROOT_TOKEN if rel == Path(".") else f"{DATA_ROOT_TOKEN}/{rel.as_posix()}"
    return str(Path(path).resolve())


def expand_data_path(path: str | Path) -> Path:
    """A path from provenance on this machine: "$FER_EDGE_DATA/..." under this machine's data root."""
    text = str(path)
    if text != DATA_ROOT_TOKEN and not text.startswith(DATA_ROOT_TOKEN + "/"):
        return Path(text)
    rel = text[len(DATA_ROOT_TOKEN) + 1:]
    root = data_root()
    if root is None:
        raise DataError(f"{text}: no data root here; set {ENV_DATA} (or {ENV_SHARED}) to the folder that holds {rel}")
    return root / rel if rel else root


def weights_root() -> Path | None:
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        return Path(env)
    root = shared_root()
    return root / "weights" if root else None


def data_path(*parts: str, required: bool = True) -> Path | None:
    """A path under the data root; raises a DataError with set-up advice when absent."""
    return _under(data_root(), ENV_DATA, parts, required)


def weights_path(*parts: str, required: bool = True) -> Path | None:
    """A path under the weights root; raises a DataError with set-up advice when absent."""
    return _under(weights_root(), ENV_WEIGHTS, parts, required)


def _under(root: Path | None, env: str, parts: tuple[str, ...], required: bool) -> Path | None:
    rel = "/".join(parts)
    if root is not None and (root / rel).exists():
        return root / rel
    if not required:
        return None
    where = f"{root}/{rel}" if root else rel
    raise DataError(
        f"{where} not found; set {env} (or {ENV_SHARED}) to the folder that holds {rel}"
    )
