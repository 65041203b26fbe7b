"""Keras -> ONNX: float32 via tf2onnx, fp16 via onnxruntime's float16 converter,
int8 via quant_pre_process + quantize_static (QDQ, per-channel, uint8 activations)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..errors import ModelError, first_line, require
from .context import ExportContext, ExportResult


def export_onnx(ctx: ExportContext, out_dir: Path) -> ExportResult:
    import onnx
    import onnxruntime as ort

    import tf2onnx

    fp32 = ctx.onnx_fp32()
    target = out_dir / "model.onnx"
    prof = dict(ctx.profile)
    versions = {"onnx": onnx.__version__, "onnxruntime": ort.__version__, "tf2onnx": tf2onnx.__version__}
    if ctx.precision == "fp32":
        shutil.copyfile(fp32, target)
    elif ctx.precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=bool(prof.get("keep_io_types", True)))
        onnx.save(model, str(target))
    elif ctx.precision == "int8":
        pre = _quantize_static(ctx, fp32, target, prof)
        if prof.get("bias_correction"):
            from .onnx_bias import correct_qdq_biases

            try:
                prof["bias_correction"] = correct_qdq_biases(target, pre, ctx.calibration().x, ctx.input_name)
            except ModelError:
                raise
            except Exception as exc:
                raise ModelError(f"{ctx.source.path}: ONNX int8 bias correction failed ({first_line(exc)})") from exc
    else:  # formats.check_precision rejects this before we get here
        raise ModelError(f"ONNX has no {ctx.precision} path")
    meta = ctx.embedded_metadata("onnx", {"output_kind": ctx.output_kind()})
    set_metadata(target, meta)
    return ExportResult(["model.onnx"], versions=versions, settings={"converter": "tf2onnx.convert.from_keras", **prof})


def _quantize_static(ctx: ExportContext, fp32: Path, target: Path, prof: dict[str, Any]) -> Path:
    """Write the int8 QDQ model to ``target``; return the pre-processed float model it was made from."""
    require("sympy", "onnx", "ONNX quant_pre_process")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = ctx.workdir / "fp32_deploy.pre.onnx"
    if not pre.exists():
        quant_pre_process(str(fp32), str(pre))
    try:
        quantize_static(
            str(pre),
            str(target),
            ctx.calibration().onnx_reader(ctx.input_name),
            quant_format=getattr(QuantFormat, prof["quant_format"]),
            activation_type=getattr(QuantType, prof["activation_type"]),
            weight_type=getattr(QuantType, prof["weight_type"]),
            per_channel=bool(prof["per_channel"]),
            reduce_range=bool(prof.get("reduce_range", False)),
            calibrate_method=getattr(CalibrationMethod, prof.get("calibrate_method", "MinMax")),
        )
    except Exception as exc:
        raise ModelError(f"{ctx.source.path}: ONNX int8 quantization failed ({first_line(exc)})") from exc
    return pre


def set_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Write the manifest essentials into ModelProto.metadata_props (string key/values)."""
    import json

    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key = f"fer_edge.{key}"
        entry.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    model.producer_name = model.producer_name or "fer-edge"
    onnx.save(model, str(path))


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
