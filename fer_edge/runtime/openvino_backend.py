"""OpenVINO backend (CPU). INFERENCE_PRECISION_HINT is always set explicitly: on CPUs
with bf16 support OpenVINO would otherwise run "fp32" models in bf16 and change results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelError, require
from .backends import run_in_fixed_batches

HINTS = ("f32", "f16", "bf16")


class OpenVINOBackend:
    name = "openvino"

    def __init__(
        self, model_path: Path, threads: int, precision_hint: str | None = None, device: str = "CPU", **_: object
    ):
        ov = require("openvino", "openvino", "the openvino backend")
        self.package, self.version = "openvino", ov.get_version()
        hint = precision_hint or "f32"
        if hint not in HINTS:
            raise ConfigError(f"OpenVINO precision hint must be one of {', '.join(HINTS)}, not {hint!r}")
        self.threads, self.precision_hint, self.device = threads, hint, device
        core = ov.Core()
        if device not in core.available_devices:
            raise ConfigError(f"OpenVINO device {device!r} not available here (available: {core.available_devices})")
        try:
            model = core.read_model(str(model_path))
            self._compiled = core.compile_model(
                model, device, {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": int(threads)}
            )
        except RuntimeError as exc:
            raise ModelError(f"{model_path}: OpenVINO cannot load this model ({exc})") from exc
        # Read back what the plugin actually uses, so reports show the real precision.
        used = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision_hint = used.to_string() if hasattr(used, "to_string") else str(used)
        if len(self._compiled.inputs) != 1 or len(self._compiled.outputs) != 1:
            raise ModelError(f"{model_path}: expected one input and one output")
        self.input_dtype = np.dtype(self._compiled.inputs[0].get_element_type().to_dtype())
        self._request = self._compiled.create_infer_request()
        batch = self._compiled.inputs[0].get_partial_shape()[0]
        self._fixed_batch = None if batch.is_dynamic else batch.get_length()

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        if self._fixed_batch is not None and len(x) != self._fixed_batch:  # a static-batch IR
            return run_in_fixed_batches(self._run, x, self._fixed_batch)
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        self._request.infer({0: x})
        return self._request.get_output_tensor(0).data.copy()
