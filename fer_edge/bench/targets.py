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
    """Why the converter's own check failed ('' when it passed or was not recorded).

    convert records ``metrics["validation"] = {"passed": bool, "reason"/"message": str, ...}``.
    """
    v = manifest.metrics.get("validation") if manifest.metrics else None
    if isinstance(v, dict) and v.get("passed") is False:
        why = v.get("reason") or v.get("message") or v.get("error") or ""
        return f"conversion validation failed: {why}".rstrip(": ")
    if manifest.metrics.get("status") in ("failed-validation", "exported-but-failed-validation"):
        return "conversion validation failed"
    return ""
