"""Which bundles a bench run measures, and what their manifests say about validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..bundle import MANIFEST, Manifest, read_bundle
from ..errors import ModelError
from ..formats import FORMATS


@dataclass
class Target:
    path: str  # as the user gave it (or the expanded child folder)
    folder: Path | None = None
    manifest: Manifest | None = None
    role: str = "model"  # model | baseline
    error: str = ""  # why it could not be read (the row is "failed")

    @property
    def ok(self) -> bool:
        return self.manifest is not None

    @property
    def size_bytes(self) -> int:
        """The model's own files (model + weights), as listed in the manifest."""
        assert self.folder is not None and self.manifest is not None
        return sum((self.folder / name).stat().st_size for name in self.manifest.files)


def expand(paths: list[str]) -> list[str]:
    """A bundle folder stays; a folder of bundles (runs/x/export) becomes its bundles."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.name == MANIFEST or (path / MANIFEST).is_file() or not path.is_dir():
            out.append(p)
            continue
        children = sorted(m.parent for m in path.glob(f"*/{MANIFEST}"))
        if not children:
            children = sorted(m.parent for m in path.glob(f"export/*/{MANIFEST}"))
        out.extend(str(c) for c in children) if children else out.append(p)
    return out


def read_targets(paths: list[str], role: str = "model") -> list[Target]:
    targets = []
    for p in expand(paths):
        try:
            b = read_bundle(p, verify=True)
        except ModelError as exc:
            targets.append(Target(path=p, role=role, error=str(exc)))
            continue
        if b.manifest.format not in FORMATS:
            targets.append(Target(path=p, role=role, error=f"{b.folder}: unknown format {b.manifest.format!r}"))
            continue
        targets.append(Target(path=p, folder=b.folder, manifest=b.manifest, role=role))
    return targets


def validation_failure(manifest: Manifest) -> str:
    """Why the converter's own accuracy check failed ('' when it passed or was not recorded).

    fer-edge convert writes ``metrics = {"status": "ok" | "failed_validation", "max_drop_pp": float,
    "retention": {"accuracy_delta_pp": float, ...}}``.
    """
    m = manifest.metrics or {}
    if m.get("status") not in ("failed_validation", "exported-but-failed-validation"):
        return ""
    ret = m.get("retention") or {}
    delta, limit = ret.get("accuracy_delta_pp"), m.get("max_drop_pp")
    if delta is not None and limit is not None:
        return f"conversion validation failed: accuracy drops {-delta:.2f} pp > --max-drop {limit} pp"
    return "conversion validation failed"


def convert_reference(manifest: Manifest) -> dict | None:
    """The float reference accuracy convert measured on the full test split, if recorded."""
    ret = (manifest.metrics or {}).get("retention") or {}
    if ret.get("reference_accuracy") is None:
        return None
    return {"accuracy": ret["reference_accuracy"], "macro_f1": ret.get("reference_macro_f1"), "n": ret.get("n")}
