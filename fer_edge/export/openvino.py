"""Keras -> OpenVINO IR: fp32 (compress_to_fp16=False), fp16-compressed, int8 via nncf.quantize.

Converted from the same SavedModel as TFLite. The manifest essentials go into rt_info.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelError, first_line, require
from .context import ExportContext, ExportResult


def export_openvino(ctx: ExportContext, out_dir: Path) -> ExportResult:
    ov = require("openvino", "openvino", "OpenVINO export")
    prof = dict(ctx.profile)
    h, w, c = ctx.source.input.shape
    try:
        model = ov.convert_model(str(ctx.saved_model()), input=[(-1, h, w, c)])
    except Exception as exc:
        raise ModelError(f"{ctx.source.path}: OpenVINO conversion failed ({first_line(exc)})") from exc
    versions = {"openvino": ov.get_version()}
    if ctx.precision == "int8":
        nncf = require("nncf", "openvino", "OpenVINO int8 quantization")
        calib = ctx.calibration()
        float_model = model
        try:
            model = nncf.quantize(
                float_model.clone(),
                calib.nncf_dataset(),
                preset=getattr(nncf.QuantizationPreset, prof.get("preset", "mixed").upper()),
                subset_size=len(calib),
                fast_bias_correction=bool(prof.get("fast_bias_correction", True)),
                **_advanced(prof),
            )
        except Exception as exc:
            raise ModelError(f"{ctx.source.path}: NNCF int8 quantization failed ({first_line(exc)})") from exc
        if prof.get("empirical_bias_correction"):
            from .openvino_bias import correct_ov_biases

            try:
                prof["empirical_bias_correction"] = correct_ov_biases(model, float_model, calib.x)
            except ModelError:
                raise
            except Exception as exc:
                raise ModelError(f"{ctx.source.path}: OpenVINO int8 bias correction failed ({first_line(exc)})") from exc
        versions["nncf"] = nncf.__version__
    model.output(0).get_tensor().set_names({"probabilities"})
    for key, value in ctx.embedded_metadata("openvino", {"output_kind": ctx.output_kind()}).items():
        model.set_rt_info(value if isinstance(value, str) else ctx.metadata_json(value), ["fer_edge", key])
    ov.save_model(model, str(out_dir / "model.xml"), compress_to_fp16=bool(prof["compress_to_fp16"]))
    return ExportResult(["model.xml", "model.bin"], versions=versions, settings={"converter": "openvino.convert_model", **prof})


def _advanced(prof: dict[str, Any]) -> dict[str, Any]:
    """nncf.quantize's advanced_parameters from the profile (only what the profile sets)."""
    name = prof.get("activations_range")
    if not name:
        return {}
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    estimator = getattr(RangeEstimatorParametersSet, str(name).upper(), None)
    if estimator is None:
        raise ModelError(f"openvino profile: unknown activations_range {name!r} (an nncf RangeEstimatorParametersSet name)")
    return {"advanced_parameters": AdvancedQuantizationParameters(activations_range_estimator_params=estimator)}


def read_metadata(path: str | Path) -> dict[str, Any]:
    ov = require("openvino", "openvino", "reading OpenVINO metadata")
    model = ov.Core().read_model(str(path))
    info = model.get_rt_info()
    out = {}
    if "fer_edge" in info:
        for key, value in info["fer_edge"].items():
            out[key] = value.astype(str) if hasattr(value, "astype") else str(value)
    return out
