"""Empirical bias correction for NNCF-quantized OpenVINO models.

NNCF's own bias correction works on its statistics of the model; what the CPU plugin then runs
(integer kernels, fused FakeQuantize) still shifts each output channel's mean a little. As for
TFLite and ONNX (``tflite_bias``, ``onnx_bias``), this measures that shift on the calibration images
with the compiled int8 model, layer by layer, front to back, against the same tensor of the float
model, and subtracts it from the layer's float bias constant (a Convolution/GroupConvolution/MatMul
followed by an Add of a constant).

``float_model`` must be the model that was passed to ``nncf.quantize`` (NNCF keeps its node names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError
from .bias_correction import ChannelMeans, summary

_LINEAR = ("Convolution", "GroupConvolution", "MatMul")
_PASS_THROUGH = ("Clamp", "Relu")  # activations between the bias Add and the output FakeQuantize


@dataclass
class _Layer:
    add: str  # friendly name of the bias Add
    bias_port: int  # which Add input holds the constant
    measured: str  # node whose output is the int8 model's version of the tensor
    reference: str  # node of the float model with the float tensor


def correct_ov_biases(quantized, float_model, images: np.ndarray, batch: int = 100) -> dict[str, Any]:
    """Correct ``quantized`` (an in-memory ov.Model) in place; return what was done."""
    import openvino as ov

    core = ov.Core()
    layers = _layers(quantized)
    float_ops = {op.get_friendly_name() for op in float_model.get_ops()}
    layers = [l for l in layers if l.reference in float_ops]
    if not layers:
        raise ModelError("OpenVINO bias correction found no Conv/MatMul + bias Add shared by the int8 and float models")
    ref = _channel_means(core, float_model, [l.reference for l in layers], images, batch)
    shifts = []
    for layer in layers:
        got = _channel_means(core, quantized, [layer.measured], images, batch)[layer.measured]
        want = ref[layer.reference]
        if got.shape != want.shape:
            raise ModelError(f"OpenVINO bias correction: {layer.measured} has {got.size} channels, the float model {want.size}")
        err = got - want
        if _subtract(quantized, layer, err):
            shifts.append(float(np.abs(err).mean()))
    return summary("empirical per-channel bias correction vs the float OpenVINO model (CPU plugin, f32 hint), sequential",
                   shifts, len(images))


def _layers(model) -> list[_Layer]:
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in _LINEAR:
            continue
        nxt = _single_consumer(op)
        if nxt is None or nxt.get_type_name() != "Add":
            continue
        port = next((i for i, inp in enumerate(nxt.inputs())
                     if inp.get_source_output().get_node().get_type_name() == "Constant"), None)
        if port is None:
            continue
        last = nxt
        while True:
            following = _single_consumer(last)
            if following is not None and following.get_type_name() in _PASS_THROUGH:
                last = following
                continue
            break
        measured = following.get_friendly_name() if following is not None and following.get_type_name() == "FakeQuantize" else last.get_friendly_name()
        out.append(_Layer(add=nxt.get_friendly_name(), bias_port=port, measured=measured, reference=last.get_friendly_name()))
    return out


def _single_consumer(op):
    targets = list(op.output(0).get_target_inputs())
    return targets[0].get_node() if len(targets) == 1 else None


def _subtract(model, layer: _Layer, err: np.ndarray) -> bool:
    import openvino.opset13 as ops

    add = next(op for op in model.get_ops() if op.get_friendly_name() == layer.add)
    const = add.input(layer.bias_port).get_source_output().get_node()
    values = np.array(const.get_data(), dtype=np.float32)
    if values.size != err.size:
        return False  # a scalar or otherwise shaped constant: not a per-channel bias
    new = ops.constant((values.reshape(-1) - err.astype(np.float32)).reshape(values.shape))
    new.set_friendly_name(const.get_friendly_name())
    add.input(layer.bias_port).replace_source_output(new.output(0))
    return True


def _channel_means(core, model, names: list[str], images: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """Per-channel (axis 1) means of the named nodes' outputs over all images, from the compiled
    model (f32 inference hint)."""
    m = model.clone()
    by_name = {op.get_friendly_name(): op for op in m.get_ops()}
    m.add_outputs([by_name[n].output(0) for n in names])
    compiled = core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    first = len(model.outputs)
    means = ChannelMeans()
    for start in range(0, len(images), batch):
        res = compiled(images[start : start + batch])
        for k, n in enumerate(names):
            means.add(n, res[compiled.outputs[first + k]], axis=1)
    return means.means()
