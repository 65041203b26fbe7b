"""Keras -> LiteRT/TFLite: fp32, fp16, dynamic-range and full-integer int8 (float or int8 I/O).

Always through ``model.export()`` + ``TFLiteConverter.from_saved_model``: converting from
concrete functions leaves the weights as variables (LiteRT returns NaN, int8 fails).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, first_line
from .context import ExportContext, ExportResult

METADATA_NAME = "fer_edge_manifest"


def export_tflite(ctx: ExportContext, out_dir: Path) -> ExportResult:
    import tensorflow as tf

    prof = ctx.profile
    conv = tf.lite.TFLiteConverter.from_saved_model(str(ctx.saved_model()))
    conv.optimizations = [getattr(tf.lite.Optimize, o) for o in prof.get("optimizations", [])]
    if prof.get("supported_types"):
        conv.target_spec.supported_types = [getattr(tf, t) for t in prof["supported_types"]]
    settings: dict[str, Any] = {"converter": "TFLiteConverter.from_saved_model", **prof}
    if ctx.precision == "int8":
        calib = ctx.calibration()
        conv.representative_dataset = calib.representative_dataset
        conv.target_spec.supported_ops = [getattr(tf.lite.OpsSet, o) for o in prof["supported_ops"]]
        io_type = tf.int8 if ctx.int8_io else tf.float32
        conv.inference_input_type = io_type
        conv.inference_output_type = io_type
        settings["io_type"] = "int8" if ctx.int8_io else "float32"
    try:
        if ctx.precision == "int8" and prof.get("activation_ranges", "minmax") != "minmax":
            flat, settings["activation_ranges"] = _convert_with_ranges(conv, prof, ctx, io_type)
        else:
            flat = conv.convert()
        if ctx.precision == "int8" and prof.get("bias_correction"):
            from .tflite_bias import correct_biases

            reference = tf.lite.TFLiteConverter.from_saved_model(str(ctx.saved_model())).convert()
            passes = []
            for _ in range(int(prof.get("bias_correction_passes", 1))):
                flat, info = correct_biases(flat, reference, ctx.calibration().x)
                passes.append(info)
            settings["bias_correction"] = {**passes[-1], "passes": len(passes),
                                           "mean_abs_shift_per_pass": [p["mean_abs_shift"] for p in passes]}
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"{ctx.source.path}: TFLite {ctx.precision} conversion failed ({first_line(exc)})") from exc

    quant = io_quantization(flat) if ctx.int8_io else {}
    meta = ctx.embedded_metadata("tflite", {**quant, "output_kind": ctx.output_kind()})
    flat = add_metadata(flat, METADATA_NAME, ctx.metadata_json(meta).encode())
    (out_dir / "model.tflite").write_bytes(flat)
    return ExportResult(["model.tflite"], quantization=quant, versions={"tensorflow": tf.__version__}, settings=settings)


def _convert_with_ranges(conv, prof: dict[str, Any], ctx: ExportContext, io_type) -> tuple[bytes, dict[str, Any]]:
    """Calibrate only, narrow the activation ranges (tflite_ranges), then quantize with the MLIR
    quantizer: the same steps conv.convert() takes, with the ranges changed in between."""
    from tensorflow.lite.python import convert as tflite_convert

    from .tflite_ranges import percentile_ranges

    method = prof["activation_ranges"]
    if method != "percentile":
        raise ModelError(f"tflite profile: unknown activation_ranges {method!r}; choose minmax or percentile")
    conv._experimental_calibrate_only = True  # the path TensorFlow's QuantizationDebugger takes
    calibrated = conv.convert()
    calibrated, info = percentile_ranges(calibrated, ctx.calibration().x, float(prof.get("percentile", 99.999)))
    flat = tflite_convert.mlir_quantize(calibrated, False, input_data_type=io_type, output_data_type=io_type)
    return flat, info


def io_quantization(flat: bytes) -> dict[str, Any]:
    """Scale/zero point of the int8 input and output, read back from the converted model."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=flat)
    out = {}
    for key, det in (("input", interp.get_input_details()[0]), ("output", interp.get_output_details()[0])):
        scale, zero = det["quantization"]
        if np.dtype(det["dtype"]).kind not in "iu" or scale == 0:
            raise ModelError(f"expected a quantized {key} tensor, got {det['dtype']} scale {scale}")
        out[key] = {"dtype": np.dtype(det["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}
    return out


def add_metadata(flat: bytes, name: str, payload: bytes) -> bytes:
    """Append a named metadata buffer (TFLite Model.metadata) holding ``payload``."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flat))
    buf = schema.BufferT()
    buf.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers.append(buf)
    meta = schema.MetadataT()
    meta.name = name
    meta.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != name.encode() and m.name != name] + [meta]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(path: str | Path, name: str = METADATA_NAME) -> bytes | None:
    """The named metadata buffer of a .tflite file (used by tests and `fer-edge` tooling)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    for m in model.metadata or []:
        mname = m.name.decode() if isinstance(m.name, bytes) else m.name
        if mname == name:
            return bytes(np.asarray(model.buffers[m.buffer].data, dtype=np.uint8))
    return None
