"""Which bundle live/predict run, and loading it once."""

from __future__ import annotations

import os
from pathlib import Path

from ..shipped import DEFAULT_FORMAT, bundle_dir, shipped_bundle

ENV_MODEL = "FER_EDGE_MODEL"
# The model shipped inside the package (fer_edge.shipped): fer_edge/assets/models/tflite-int8/.
DEFAULT_MODEL_DIR = bundle_dir(DEFAULT_FORMAT)


def default_bundle() -> Path:
    """The bundle used when --model is not given: $FER_EDGE_MODEL, else the int8 TFLite model
    shipped in the package (a ModelError saying what to do if this build ships none)."""
    env = os.environ.get(ENV_MODEL)
    if env:
        return Path(env)
    return shipped_bundle()


def load_classifier(model: str | os.PathLike | None, backend: str | None = None, threads: int | None = None,
                    tta: str | None = None):
    """fer_edge.runtime.load on the given bundle (or the default one); built once per run.
    ``tta``: test-time views to average (default: the bundle's own)."""
    from ..errors import ModelError
    from ..runtime import load

    path = Path(model) if model else default_bundle()
    try:
        return load(path, backend=backend, threads=threads, tta=tta)
    except ModelError as exc:
        if model or not os.environ.get(ENV_MODEL):
            raise
        raise ModelError(f"${ENV_MODEL}: {exc}") from None  # the user did not type this path: say where it came from
