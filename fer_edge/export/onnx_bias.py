"""Empirical bias correction for ONNX Runtime's static int8 (QDQ) models.

The same idea as ``tflite_bias``: quantize_static only picks activation ranges, and rounding the
weights shifts each output channel's mean. For every Conv/Gemm whose bias is an int32 initializer
behind a DequantizeLinear, this measures the mean per-channel error of its quantized output
(what ONNX Runtime's fused integer kernel produces, dequantized) against the same tensor of the
float model that was quantized, and folds it into the int32 bias, front to back, so each layer is
corrected given the already-corrected layers before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .bias_correction import ChannelMeans, corrected_int32_bias, summary

_CORRECTED_OPS = ("Conv", "Gemm")


@dataclass
class _Layer:
    node: Any  # the Conv/Gemm NodeProto
    float_name: str  # its float output (the same name in the float model)
    quant_name: str  # the QuantizeLinear output that follows it (what the fused kernel writes)
    out_scale: np.ndarray
    out_zero: np.ndarray
    bias: Any  # the int32 TensorProto initializer
    bias_scale: np.ndarray


def correct_qdq_biases(quantized: Path, float_model: Path, images: np.ndarray, input_name: str,
                       batch: int = 100) -> dict[str, Any]:
    """Rewrite ``quantized`` (a QDQ .onnx) in place with corrected biases; return what was done.

    ``float_model`` must be the float graph that was quantized (after quant_pre_process), so the
    layer outputs share their names; ``images`` are preprocessed float inputs (the calibration set).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(quantized))
    layers = _layers(model)
    if not layers:
        raise ModelError(f"{quantized}: bias correction found no Conv/Gemm with an int32 bias behind a QuantizeLinear")
    ref = _channel_means(onnx.load(str(float_model)), [l.float_name for l in layers], images, input_name, batch)
    shifts = []
    for layer in layers:
        q = _channel_means(model, [layer.quant_name], images, input_name, batch)[layer.quant_name]
        got = (q - layer.out_zero.reshape(-1)) * layer.out_scale.reshape(-1)  # per-tensor params broadcast
        want = ref[layer.float_name]
        if got.shape != want.shape:
            raise ModelError(f"{quantized}: {layer.node.name} has {got.size} output channels, the float model {want.size}")
        err = got - want
        bias = corrected_int32_bias(numpy_helper.to_array(layer.bias), err, layer.bias_scale)
        if bias is None:
            continue
        layer.bias.CopyFrom(numpy_helper.from_array(bias, layer.bias.name))
        shifts.append(float(np.abs(err).mean()))
    onnx.save(model, str(quantized))
    return summary("empirical per-channel bias correction vs the float ONNX model, sequential", shifts, len(images))


def _layers(model) -> list[_Layer]:
    from onnx import numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = []
    for node in g.node:
        if node.op_type not in _CORRECTED_OPS or len(node.input) < 3:
            continue
        dq = producer.get(node.input[2])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        bias = inits[dq.input[0]]
        if bias.data_type != 6:  # TensorProto.INT32
            continue
        nexts = consumers.get(node.output[0], [])
        if len(nexts) != 1 or nexts[0].op_type != "QuantizeLinear":
            continue
        qnode = nexts[0]
        if qnode.input[1] not in inits or len(qnode.input) < 3 or qnode.input[2] not in inits:
            continue
        out.append(_Layer(node=node, float_name=node.output[0], quant_name=qnode.output[0],
                          out_scale=numpy_helper.to_array(inits[qnode.input[1]]).astype(np.float32),
                          out_zero=numpy_helper.to_array(inits[qnode.input[2]]).astype(np.float32),
                          bias=bias, bias_scale=numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)))
    return out


def _channel_means(model, names: list[str], images: np.ndarray, input_name: str, batch: int) -> dict[str, np.ndarray]:
    """Per-channel (axis 1) means of the tensors ``names`` over all images, run with ORT's full graph
    optimizations (the fused integer kernels a deployed model runs)."""
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for name in names:
        if name not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=name))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    means = ChannelMeans()
    for start in range(0, len(images), batch):
        for n, v in zip(names, sess.run(names, {input_name: images[start : start + batch]})):
            means.add(n, v, axis=1)
    return means.means()
