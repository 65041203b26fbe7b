"""benchmarks/onnx_saturation.py's weight rewrites: uint8 weights dequantize to the same floats; 7-bit weights
stay in -64..63 (no int16 pair sum of U8S8 can saturate), within one 7-bit step of the 8-bit ones, biases kept."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

from fer_edge import shipped  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sat(monkeypatch):
    spec = importlib.util.spec_from_file_location("onnx_saturation_under_test", REPO / "benchmarks" / "onnx_saturation.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


def _model():
    return onnx.load(str(shipped.shipped_bundle("onnx") / "model.onnx"))


def _dequantized(model) -> dict[str, np.ndarray]:
    """Every DequantizeLinear of an initializer, as float: (q - zero point) * scale, per channel on axis."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits:
            continue
        q = inits[n.input[0]].astype(np.float64)
        s = inits[n.input[1]].astype(np.float64)
        zp = inits[n.input[2]].astype(np.float64) if len(n.input) > 2 else np.zeros_like(s)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if s.ndim:
            shape[axis] = -1
        out[n.input[0]] = (q - zp.reshape(shape)) * s.reshape(shape)
    return out


def test_uint8_weights_dequantize_to_the_same_floats(sat):
    model = _model()
    before = _dequantized(model)
    assert sat.to_uint8_weights(model) == 9  # the v4 net's 8 convolutions and its dense layer
    after = _dequantized(model)
    assert not sat.weight_dequantizers(model)  # no int8 weights left
    for name, w in before.items():
        np.testing.assert_array_equal(after[name], w)


def test_7bit_weights_cannot_saturate_and_stay_close(sat):
    model = _model()
    before = _dequantized(model)
    assert sat.to_7bit_weights(model) == 9
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    after = _dequantized(model)
    for node in sat.weight_dequantizers(model):
        q = inits[node.input[0]]
        assert q.min() >= -64 and q.max() <= 63, node.name
        # 255 * 64 * 2 = 32640 < 32767: a pair of uint8 x 7-bit products fits int16
        step = inits[node.input[1]].astype(np.float64)
        shape = [1] * q.ndim
        shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = -1
        assert np.all(np.abs(after[node.input[0]] - before[node.input[0]]) <= step.reshape(shape) / 2 + 1e-9)
    biases = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
              and inits[n.input[0]].dtype == np.int32]
    assert len(biases) == 9
    for node in biases:  # int32 biases: the same floats, to within half a step of their new scale
        step = inits[node.input[1]].astype(np.float64)
        assert np.all(np.abs(after[node.input[0]] - before[node.input[0]]) <= step / 2 + 1e-12), node.name
