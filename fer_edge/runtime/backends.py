"""The runtime backends by name; each module is imported only when used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class BackendEntry:
    name: str
    target: str  # "module:class"
    formats: tuple[str, ...]  # bundle formats this backend can run
    description: str


BACKENDS: dict[str, BackendEntry] = {
    "litert": BackendEntry(
        "litert", "fer_edge.runtime.litert_backend:LiteRTBackend", ("tflite",),
        "LiteRT interpreter (ai-edge-litert; tflite-runtime as a fallback on a Pi)",
    ),
    "onnxruntime": BackendEntry(
        "onnxruntime", "fer_edge.runtime.onnxruntime_backend:OnnxRuntimeBackend", ("onnx",),
        "ONNX Runtime with configurable execution providers",
    ),
    "keras": BackendEntry(
        "keras", "fer_edge.runtime.keras_backend:KerasBackend", ("keras",),
        "Keras 3 on TensorFlow: the float reference of a training run (needs fer-edge[train])",
    ),
    "openvino": BackendEntry(
        "openvino", "fer_edge.runtime.openvino_backend:OpenVINOBackend", ("openvino", "onnx"),
        "OpenVINO runtime (CPU), with an explicit INFERENCE_PRECISION_HINT",
    ),
}


def backend_class(name: str, fmt: str):
    """The backend class for ``name``; it must be able to run bundle format ``fmt``."""
    try:
        entry = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None
    if fmt not in entry.formats:
        able = [n for n, e in BACKENDS.items() if fmt in e.formats]
        raise ConfigError(
            f"backend {name!r} cannot run a {fmt!r} bundle; use {' or '.join(able) if able else 'another format'}"
        )
    module, attr = entry.target.split(":")
    return getattr(importlib.import_module(module), attr)


def run_in_fixed_batches(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int) -> np.ndarray:
    """``run`` for a graph with a static batch size: consecutive slices of ``batch`` rows, the last
    one padded by repeating its final row (padded outputs are dropped)."""
    outs = []
    for start in range(0, len(x), batch):
        part = x[start : start + batch]
        n = len(part)
        if n < batch:
            part = np.concatenate([part, np.repeat(part[-1:], batch - n, axis=0)])
        outs.append(run(part)[:n])
    return np.concatenate(outs)
