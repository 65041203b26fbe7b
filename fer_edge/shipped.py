"""The model bundles and sample image that ship inside the package (fer_edge/assets/).

After ``pip install fer-edge`` these need no data, no training and no download:

    from fer_edge.shipped import shipped_bundle, sample_image
    from fer_edge.runtime import load
    clf = load(shipped_bundle())            # tflite int8, runs on the base install
    shipped_bundles()                       # {"tflite": Path, "onnx": Path, ...} for what ships

Standard library only (the CLI and `fer_edge.live` import this at start-up).
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ConfigError, ModelError
from .formats import EXPORT_FORMATS

ASSETS = Path(__file__).resolve().parent / "assets"
MODELS_DIR = ASSETS / "models"
SAMPLES_DIR = ASSETS / "samples"
SHIPPED_PRECISION = "int8"
DEFAULT_FORMAT = "tflite"  # the base install's runtime (ai-edge-litert)
SAMPLE_IMAGE = "astronaut.jpg"


def bundle_dir(format: str = DEFAULT_FORMAT, precision: str = SHIPPED_PRECISION) -> Path:
    """Where the shipped bundle of this format lives (whether or not it ships in this build)."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"no shipped model can have format {format!r}; formats: {', '.join(EXPORT_FORMATS)}")
    return MODELS_DIR / f"{format}-{precision}"


def shipped_bundles() -> dict[str, Path]:
    """{format: bundle folder} for every shipped bundle, in fer_edge.formats order."""
    out = {}
    for fmt in EXPORT_FORMATS:
        folder = bundle_dir(fmt)
        if (folder / "manifest.json").is_file():
            out[fmt] = folder
    return out


def shipped_bundle(format: str = DEFAULT_FORMAT) -> Path:
    """The shipped int8 bundle of ``format``; ModelError (saying what to do) when it does not ship."""
    folder = bundle_dir(format)
    if (folder / "manifest.json").is_file():
        return folder
    have = ", ".join(shipped_bundles()) or "none"
    raise ModelError(
        f"{folder}: no shipped {format} model in this installation (shipped formats: {have}); "
        "pass --model BUNDLE (a folder made by `fer-edge convert`, e.g. runs/edge/export/tflite-int8)"
    )


def describe_shipped() -> list[dict]:
    """One row per shipped bundle: format, folder, size and the metrics its manifest records."""
    rows = []
    for fmt, folder in shipped_bundles().items():
        manifest = json.loads((folder / "manifest.json").read_text())
        size = sum((folder / name).stat().st_size for name in manifest.get("files", {}))
        retention = manifest.get("metrics", {}).get("retention", {})
        rows.append({
            "format": fmt,
            "precision": manifest.get("precision"),
            "path": str(folder),
            "name": manifest.get("name"),
            "size_bytes": size,
            "labels": manifest.get("labels"),
            "accuracy": retention.get("accuracy"),
            "macro_f1": retention.get("macro_f1"),
            "test_selector": retention.get("test_selector"),
        })
    return rows


def sample_image(name: str = SAMPLE_IMAGE) -> Path:
    """A public-domain face photo shipped for demos and tests (see assets/samples/README.md)."""
    path = SAMPLES_DIR / name
    if not path.is_file():
        have = sorted(p.name for p in SAMPLES_DIR.glob("*.jpg")) if SAMPLES_DIR.is_dir() else []
        raise ModelError(f"{path}: no such sample image in this installation (samples: {', '.join(have) or 'none'})")
    return path
