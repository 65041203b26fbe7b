"""LiteRT (TFLite) interpreter backend. Never uses tf.lite, so no TensorFlow on a Pi."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingExtraError, ModelError
from .backends import run_in_fixed_batches


def _interpreter_module():
    """ai-edge-litert first; tflite-runtime is what older Pi images have."""
    try:
        from ai_edge_litert import interpreter as mod

        import ai_edge_litert

        return mod, "ai-edge-litert", getattr(ai_edge_litert, "__version__", "unknown")
    except ImportError as first:
        try:
            from tflite_runtime import interpreter as mod

            import tflite_runtime

            return mod, "tflite-runtime", getattr(tflite_runtime, "__version__", "unknown")
        except ImportError:
            raise MissingExtraError(
                f"no TFLite interpreter installed ({first}); install one with: pip install ai-edge-litert "
                "(or: pip install tflite-runtime on a Raspberry Pi with an older Python)"
            ) from first


class LiteRTBackend:
    name = "litert"

    def __init__(self, model_path: Path, threads: int, precision_hint: str | None = None, **_: object):
        mod, package, version = _interpreter_module()
        self.package, self.version = package, version
        self.threads = threads
        self.precision_hint = None
        try:
            self._interp = mod.Interpreter(model_path=str(model_path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_path}: LiteRT cannot load this model ({exc})") from exc
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{model_path}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
        self._in, self._out = inputs[0], outputs[0]
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])
        self.input_quantization = self._in["quantization"]
        self.output_quantization = self._out["quantization"]
        self._batch = self._native = int(self._in["shape"][0])
        self._static = False  # set when the graph cannot be resized to another batch size

    def _resize(self, n: int) -> bool:
        """Input batch -> n (once per new size; the interpreter keeps the allocation). False: static batch."""
        if n == self._batch:
            return True
        if self._static:
            return False
        shape = list(self._in["shape"])
        try:
            self._interp.resize_tensor_input(self._in["index"], [n, *shape[1:]], strict=False)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError):
            self._static, n = True, self._native
            self._interp.resize_tensor_input(self._in["index"], [n, *shape[1:]], strict=False)
            self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = n
        return not self._static

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        if not self._resize(len(x)):
            return run_in_fixed_batches(self._invoke, x, self._native)
        return self._invoke(x)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"]).copy()
