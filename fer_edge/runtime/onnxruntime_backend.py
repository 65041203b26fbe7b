"""ONNX Runtime backend; execution providers are configurable (CPU by default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, MissingExtraError, ModelError, require
from .backends import run_in_fixed_batches

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        threads: int,
        precision_hint: str | None = None,
        providers: list | None = None,
        **_: object,
    ):
        ort = require("onnxruntime", "onnx", "the onnxruntime backend")
        self.package, self.version = "onnxruntime", ort.__version__
        self.threads = threads
        self.precision_hint = None
        providers = list(providers) if providers else ["CPUExecutionProvider"]
        available = ort.get_available_providers()
        missing = [p if isinstance(p, str) else p[0] for p in providers]
        missing = [p for p in missing if p not in available]
        if missing:
            raise MissingExtraError(
                f"ONNX Runtime execution provider(s) {missing} not available here (available: {available}); "
                "for CUDA/TensorRT install onnxruntime-gpu"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._sess = ort.InferenceSession(str(model_path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise ModelError(f"{model_path}: ONNX Runtime cannot load this model ({exc})") from exc
        self.providers = self._sess.get_providers()
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{model_path}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
        self._in_name, self._out_name = inputs[0].name, outputs[0].name
        if inputs[0].type not in _DTYPES:
            raise ConfigError(f"{model_path}: unsupported input type {inputs[0].type}")
        self.input_dtype = np.dtype(_DTYPES[inputs[0].type])
        batch = inputs[0].shape[0] if inputs[0].shape else None
        self._fixed_batch = batch if isinstance(batch, int) and batch > 0 else None

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        if self._fixed_batch is not None and len(x) != self._fixed_batch:  # a static-batch graph
            return run_in_fixed_batches(self._run, x, self._fixed_batch)
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._sess.run([self._out_name], {self._in_name: x})[0]
