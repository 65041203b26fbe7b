"""The evaluation set a bundle is scored on: its own test selector, same data for peers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Manifest
from ..errors import DataError

DEFAULT_SELECTOR = {"split": "test"}


@dataclass
class EvalSet:
    images: np.ndarray  # (N,H,W) gray or (N,H,W,3) RGB uint8 faces
    labels: np.ndarray  # (N,) indices into label_names
    label_names: tuple[str, ...]
    description: str  # "fer2013.csv.gz {'split': 'test'} n=3589"

    def __len__(self) -> int:
        return len(self.labels)

    def for_labels(self, model_labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Images and true indices in the model's label order, keeping samples the model can name."""
        unknown = [n for n in self.label_names if n not in model_labels]
        keep = np.ones(len(self), dtype=bool)
        if unknown:
            drop = [self.label_names.index(n) for n in unknown]
            keep = ~np.isin(self.labels, drop)
        if not keep.any():
            raise DataError(
                f"the evaluation set ({self.description}) has none of the model's labels {model_labels}"
            )
        to_model = np.array([model_labels.index(n) if n in model_labels else -1 for n in self.label_names])
        return self.images[keep], to_model[self.labels[keep]]

    def save(self, path: Path) -> Path:
        np.savez(path, images=self.images, labels=self.labels, label_names=np.array(self.label_names),
                 description=np.array(self.description))
        return path

    @classmethod
    def load(cls, path: Path) -> "EvalSet":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["images"], z["labels"], tuple(str(s) for s in z["label_names"]), str(z["description"]))


def provenance_data(manifest: Manifest | None) -> dict[str, Any]:
    data = manifest.provenance.get("data") if manifest is not None and manifest.provenance else None
    return data if isinstance(data, dict) else {}


def eval_set_for(manifest: Manifest | None, data: str | Path | None, limit: int | None) -> EvalSet:
    """The test split the bundle's provenance names (or ``data`` with that selector)."""
    prov = provenance_data(manifest) if manifest else {}
    path = data or prov.get("path")
    if not path:
        where = f"bundle {manifest.name!r}" if manifest else "this run"
        raise DataError(f"{where} names no evaluation data in its provenance; pass --data PATH")
    from ..data import load_dataset, select, select_role

    if not Path(path).exists():
        raise DataError(f"{path}: evaluation data not found (pass --data PATH)")
    same = not data or Path(data).resolve() == Path(prov.get("path", "")).resolve()
    selector = prov.get("test") or DEFAULT_SELECTOR
    if same:  # the bundle's own data: its quick-run subset and test selector, exactly as train reported
        ds = load_dataset(path, prov.get("kind"))
        test = select_role(ds, prov, "test")
    else:  # another dataset (kind detected): the same test selector
        ds = load_dataset(path)
        test = select(ds, selector)
    if test.labels.min() < 0:
        test = test.subset(test.labels >= 0)
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be >= 1, got {limit}")
        if limit < len(test):
            # A fixed random subset keeps the class mix; sorted so the order stays the dataset's.
            idx = np.sort(np.random.default_rng(0).permutation(len(test))[:limit])
            test = test.subset(idx)
    desc = f"{Path(path).name} {selector} n={len(test)}"
    return EvalSet(np.asarray(test.images), test.labels.astype(np.int64), tuple(test.label_names), desc)
