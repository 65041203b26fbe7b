"""The one table of model formats, read by name by convert, bench and the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class ModelFormat:
    name: str
    suffix: str  # main model file suffix
    model_file: str  # file name inside a bundle
    extra_files: tuple[str, ...]  # other files that belong to the model (OpenVINO weights)
    precisions: tuple[str, ...]  # keys of fer_edge.quantization.QUANT_CONFIGS
    exporter: str  # "module:function" that writes the model file (needs export_extra)
    backend: str  # runtime backend name (fer_edge.runtime), "" if not runnable on-device
    export_extra: str  # pip extra needed to export
    runtime_extra: str  # pip extra needed to run it ("" = base install)
    description: str


FORMATS: dict[str, ModelFormat] = {
    "keras": ModelFormat(
        name="keras",
        suffix=".keras",
        model_file="model.keras",
        extra_files=(),
        precisions=("fp32",),
        exporter="",
        backend="keras",
        export_extra="train",
        runtime_extra="train",
        description="Keras 3 model from fer-edge train (the float reference)",
    ),
    "tflite": ModelFormat(
        name="tflite",
        suffix=".tflite",
        model_file="model.tflite",
        extra_files=(),
        precisions=("fp32", "fp16", "dynamic", "int8"),
        exporter="fer_edge.export.tflite:export_tflite",
        backend="litert",
        export_extra="train",
        runtime_extra="",
        description="LiteRT/TFLite flatbuffer (Raspberry Pi, mobile)",
    ),
    "onnx": ModelFormat(
        name="onnx",
        suffix=".onnx",
        model_file="model.onnx",
        extra_files=(),
        precisions=("fp32", "fp16", "int8"),
        exporter="fer_edge.export.onnx:export_onnx",
        backend="onnxruntime",
        export_extra="onnx",
        runtime_extra="onnx",
        description="ONNX for ONNX Runtime (CPU, CUDA, TensorRT)",
    ),
    "openvino": ModelFormat(
        name="openvino",
        suffix=".xml",
        model_file="model.xml",
        extra_files=("model.bin",),
        precisions=("fp32", "fp16", "int8"),
        exporter="fer_edge.export.openvino:export_openvino",
        backend="openvino",
        export_extra="openvino",
        runtime_extra="openvino",
        description="OpenVINO IR (Intel CPUs and GPUs)",
    ),
}

EXPORT_FORMATS = tuple(name for name, fmt in FORMATS.items() if fmt.exporter)


def get_format(name: str) -> ModelFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def check_precision(fmt: str, precision: str) -> None:
    spec = get_format(fmt)
    if precision not in spec.precisions:
        raise ConfigError(
            f"format {fmt!r} does not support precision {precision!r}; it supports {', '.join(spec.precisions)}"
        )


def extras_to_convert(formats: list[str], evaluate: bool = True) -> list[str]:
    """The pip extras converting to ``formats`` needs: train (the Keras source and TensorFlow's
    converter), each format's exporter and, to measure retention, its runtime."""
    extras = ["train"]
    for name in formats:
        fmt = get_format(name)
        extras += [fmt.export_extra, fmt.runtime_extra if evaluate else ""]
    return extras
