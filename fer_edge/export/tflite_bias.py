"""Empirical bias correction for full-integer TFLite models.

The TFLiteConverter only sets min/max ranges; rounding the weights shifts each output channel's mean.
This measures that shift layer by layer on the calibration images (int8 output, dequantized, minus the
same tensor of the float32 TFLite model) and folds it into the layer's int32 bias, front to back, so
each layer is corrected given the already-corrected layers before it (as NNCF's bias correction does).

Measured on the edge model with the converter's min/max ranges: PublicTest agreement with float
93.1% -> 96.5% (one pass); with percentile ranges (tflite_ranges.py) 94.3% -> 98.1%.
benchmarks/results/int8_calibration_study.md has every variant.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import ModelError
from .bias_correction import ChannelMeans, corrected_int32_bias, summary

_CORRECTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def correct_biases(quantized: bytes, float_model: bytes, images: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """``quantized`` with its conv/FC int32 biases corrected on ``images`` (preprocessed float inputs)."""
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    def interpreter(flat: bytes):
        with warnings.catch_warnings():  # preserve_all_tensors "is for debugging": reading them is the point here
            warnings.simplefilter("ignore", UserWarning)
            it = Interpreter(model_content=flat, experimental_preserve_all_tensors=True, num_threads=2)
        it.allocate_tensors()
        return it

    ref = interpreter(float_model)
    ref_index = {d["name"]: d["index"] for d in ref.get_tensor_details()}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(quantized))
    graph = model.subgraphs[0]
    wanted = {getattr(schema.BuiltinOperator, name) for name in _CORRECTED_OPS}
    layers = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = graph.tensors[op.outputs[0]].name.decode()
        if builtin in wanted and len(op.inputs) > 2 and op.inputs[2] >= 0 and name in ref_index:
            layers.append((op, name))
    if not layers:
        raise ModelError("bias correction found no conv/fully-connected layer shared by the int8 and float models")

    ref_out = _channel_means(ref, images, [ref_index[name] for _, name in layers])
    shifts = []
    for op, name in layers:
        q = interpreter(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
        out = op.outputs[0]
        scale, zero = q.get_tensor_details()[out]["quantization"]
        got = (_channel_means(q, images, [out])[out] - zero) * scale
        want = ref_out[ref_index[name]]
        if got.shape != want.shape:
            continue  # a layer the converter laid out differently: leave it
        err = got - want
        bias_tensor = graph.tensors[op.inputs[2]]
        buf = model.buffers[bias_tensor.buffer]
        bias = corrected_int32_bias(np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), np.int32), err,
                                    np.asarray(bias_tensor.quantization.scale, np.float64))
        if bias is None:
            continue
        buf.data = np.frombuffer(bias.tobytes(), np.uint8)
        shifts.append(float(np.abs(err).mean()))
    flat = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    return flat, summary("empirical per-channel bias correction vs float32 TFLite, sequential", shifts, len(images))


def _channel_means(it, images: np.ndarray, tensors: list[int]) -> dict[int, np.ndarray]:
    """Per-channel (last axis) means of ``tensors`` over every image, one image per invoke (the
    converted batch size is 1)."""
    det = it.get_input_details()[0]
    scale, zero = det["quantization"]
    means = ChannelMeans()
    for k in range(len(images)):
        x = images[k : k + 1]
        if np.dtype(det["dtype"]).kind in "iu":  # int8 I/O: quantize the input as the runtime would
            info = np.iinfo(det["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(det["dtype"])
        it.set_tensor(det["index"], x)
        it.invoke()
        for t in tensors:
            means.add(t, it.get_tensor(t), axis=-1)
    return means.means()
