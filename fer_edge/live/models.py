"""Which bundle live/predict run, and loading it once."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelError

ENV_MODEL = "FER_EDGE_MODEL"
# Where a model shipped inside the package will live (issue 7): fer_edge/assets/default_model/.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "default_model"


def default_bundle() -> Path:
    """The bundle used when --model is not given: $FER_EDGE_MODEL, else the model shipped in the
    package. Raises a ModelError saying what to do while no model ships."""
    env = os.environ.get(ENV_MODEL)
    if env:
        return Path(env)
    if (DEFAULT_MODEL_DIR / "manifest.json").is_file():
        return DEFAULT_MODEL_DIR
    raise ModelError(
        "no model given and no default model ships with this version yet; pass --model BUNDLE "
        f"(a folder made by `fer-edge convert`, e.g. runs/edge/export/tflite-int8) or set {ENV_MODEL}"
    )


def load_classifier(model: str | os.PathLike | None, backend: str | None = None, threads: int | None = None):
    """fer_edge.runtime.load on the given bundle (or the default one); built once per run."""
    from ..runtime import load

    path = Path(model) if model else default_bundle()
    return load(path, backend=backend, threads=threads)
