"""Keras -> float32 ONNX through tf2onnx: the intermediate the ONNX and OpenVINO exporters share
(built once per conversion by ExportContext.onnx_fp32)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError, first_line, require


def keras_to_onnx(model, shape: tuple[int, int, int], input_name: str, path: Path, opset: int) -> None:
    tf = require("tensorflow", "train", "ONNX export")
    tf2onnx = require("tf2onnx", "onnx", "ONNX export")
    import onnx

    spec = (tf.TensorSpec((None, *shape), tf.float32, name=input_name),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as exc:
        raise ModelError(f"tf2onnx cannot convert {model.name} ({first_line(exc)})") from exc
    # Keras's own ONNX export can turn Normalization statistics into graph inputs: insist on one.
    inputs = [i.name for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(inputs) != 1:
        raise ModelError(f"ONNX export of {model.name} has {len(inputs)} inputs {inputs}; expected exactly one image input")
    onnx.save(proto, str(path))
