"""The runtime backends by name; each module is imported only when used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

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
