"""benchmarks/int8_size_breakdown.py: its byte breakdown of a model file accounts for every byte."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from fer_edge.bundle import read_bundle
from fer_edge.shipped import shipped_bundles

REPO = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("int8_size_breakdown", REPO / "benchmarks" / "int8_size_breakdown.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_breakdown_of_shipped_int8_model_adds_up(fmt):
    if fmt == "tflite":
        pytest.importorskip("tensorflow", reason="the TFLite flatbuffer schema comes with tensorflow")
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="needs the onnx package")
    mod = _script()
    bundle = read_bundle(shipped_bundles()[fmt])
    parts = {"tflite": mod.tflite_parts, "onnx": mod.onnx_parts, "openvino": mod.openvino_parts}[fmt](bundle.model_path)
    files = sum((bundle.folder / name).stat().st_size for name in bundle.manifest.files)
    assert sum(parts.values()) == files, parts
    # int8 weights are the bulk; per-channel quantization parameters are there but much smaller
    assert parts["weights"] > 0.75 * files
    assert 0 < parts["quantization params"] < 0.2 * files
    assert all(v >= 0 for v in parts.values()), parts
