"""Named quantization configs; each maps one-to-one to a `fer-edge convert` flag."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class QuantConfig:
    name: str
    flag: str
    needs_calibration: bool
    description: str


QUANT_CONFIGS: dict[str, QuantConfig] = {
    "fp32": QuantConfig("fp32", "--fp32", False, "float32 weights and activations (reference)"),
    "fp16": QuantConfig("fp16", "--fp16", False, "float16 weights, float compute on most CPUs; half the size"),
    "dynamic": QuantConfig("dynamic", "--dynamic", False, "int8 weights, float activations (no calibration)"),
    "int8": QuantConfig("int8", "--int8", True, "full integer: int8 weights and activations, calibrated"),
}


def get_quant(name: str) -> QuantConfig:
    try:
        return QUANT_CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown precision {name!r}; choose one of {', '.join(QUANT_CONFIGS)}") from None
