"""Every format x precision converts, runs through fer_edge.runtime and keeps the model's behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convert_helpers import COMBOS
from fer_edge.bundle import read_bundle, sha256_file
from fer_edge.labels import FER7

pytestmark = pytest.mark.needs_data

# Minimum top-1 agreement with the float Keras model on ~360 test faces, by precision.
AGREEMENT = {"fp32": 0.999, "fp16": 0.98, "dynamic": 0.97, "int8": 0.95}
MEAN_PROB_DIFF = {"fp32": 1e-5, "fp16": 1e-3, "dynamic": 5e-3, "int8": 1e-2}


def _ids(combo):
    fmt, precision, io = combo
    return f"{fmt}-{precision}" + ("-io" if io else "")


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_artifact_retention_through_runtime(small_artifacts, combo):
    art = small_artifacts[combo]
    assert art.status == "ok", art.error
    ret = art.retention
    precision = combo[1]
    assert ret["n"] > 300
    assert ret["runtime"]["backend"] == {"tflite": "litert", "onnx": "onnxruntime", "openvino": "openvino"}[combo[0]]
    assert ret["top1_agreement"] >= AGREEMENT[precision], ret["top1_agreement"]
    assert ret["mean_abs_prob_diff"] <= MEAN_PROB_DIFF[precision], ret["mean_abs_prob_diff"]
    assert abs(ret["accuracy_delta_pp"]) <= (0.5 if precision in ("fp32", "fp16") else 3.0)
    # the reference model is really trained (better than always answering the majority class)
    assert ret["reference_macro_f1"] > 0.08


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_manifest_contents(small_artifacts, small_run, combo):
    fmt, precision, io = combo
    art = small_artifacts[combo]
    b = read_bundle(art.path)  # verifies sha256 of every listed file
    m = b.manifest
    src = read_bundle(small_run).manifest
    assert (m.format, m.precision) == (fmt, precision)
    assert m.labels == list(FER7) and m.input == src.input
    assert m.files[m.model_file] == sha256_file(art.path / m.model_file)
    if fmt == "openvino":
        assert set(m.files) == {"model.xml", "model.bin"}
    assert m.provenance["source_model"]["sha256"] == src.files["model.keras"]
    assert m.provenance["data"]["test"] == src.provenance["data"]["test"]
    assert m.quantization["output_kind"] == "probabilities"
    assert m.quantization["profile"]  # the tool settings actually used
    if precision == "int8":
        calib = m.quantization["calibration"]
        assert calib["size"] == 100 and calib["stratified"] and "train" in calib["source"]
        assert sum(calib["per_class"].values()) == 100
    if io:
        for key in ("input", "output"):
            q = m.quantization[key]
            assert q["dtype"] == "int8" and q["scale"] > 0
    else:
        assert "input" not in m.quantization
    assert m.metrics["status"] == "ok"
    assert m.metrics["retention"]["top1_agreement"] == art.retention["top1_agreement"]
    full = json.loads((art.path / "retention.json").read_text())
    assert full["n"] == art.retention["n"] and len(full["confusion_matrix"]) == 7
    assert m.versions["fer_edge"] and any(k in m.versions for k in ("tensorflow", "onnxruntime", "openvino"))


def test_int8_is_about_4x_smaller_than_fp32(small_artifacts):
    for fmt in ("tflite", "onnx", "openvino"):
        fp32 = small_artifacts[(fmt, "fp32", False)].size_bytes
        int8 = small_artifacts[(fmt, "int8", False)].size_bytes
        # this model is tiny, so graph overhead weighs more than on the edge model (~4x there)
        assert fp32 / int8 > (2.5 if fmt == "tflite" else 1.7), (fmt, fp32, int8)
    assert small_artifacts[("tflite", "fp16", False)].size_bytes < 0.6 * small_artifacts[("tflite", "fp32", False)].size_bytes


def test_embedded_metadata(small_artifacts, small_run):
    from fer_edge.export import onnx as onnx_export
    from fer_edge.export import openvino as ov_export
    from fer_edge.export import tflite as tflite_export

    src_sha = read_bundle(small_run).manifest.files["model.keras"]
    meta = json.loads(tflite_export.read_metadata(small_artifacts[("tflite", "int8", True)].path / "model.tflite"))
    assert meta["labels"] == list(FER7) and meta["precision"] == "int8" and meta["source_sha256"] == src_sha
    assert meta["quantization"]["input"]["dtype"] == "int8"
    assert meta["input"]["size"] == [48, 48]

    props = onnx_export.read_metadata(small_artifacts[("onnx", "int8", False)].path / "model.onnx")
    assert json.loads(props["fer_edge.labels"]) == list(FER7)
    assert props["fer_edge.precision"] == "int8" and props["fer_edge.source_sha256"] == src_sha

    info = ov_export.read_metadata(small_artifacts[("openvino", "fp16", False)].path / "model.xml")
    assert json.loads(info["labels"]) == list(FER7) and info["precision"] == "fp16"


def test_onnx_int8_weights_are_7_bit(small_artifacts):
    # reduce_range: no pair of uint8 x int8 products can saturate onnxruntime's int16 sums on x86 without VNNI
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(small_artifacts[("onnx", "int8", False)].path / "model.onnx"))
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer]
    weights = [w for w in weights if w.dtype == np.int8 and w.ndim >= 2]
    assert weights and all(w.min() >= -64 and w.max() <= 64 for w in weights)


def test_onnx_int8_uses_uint8_activations_and_per_channel_weights(small_artifacts):
    import onnx

    model = onnx.load(str(small_artifacts[("onnx", "int8", False)].path / "model.onnx"))
    inits = {t.name: t for t in model.graph.initializer}
    zp_types = set()
    per_channel = False
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            zp_types.add(inits[node.input[2]].data_type)
        if node.op_type == "DequantizeLinear" and node.input[1] in inits and len(inits[node.input[1]].dims) == 1:
            per_channel |= inits[node.input[1]].dims[0] > 1
    assert onnx.TensorProto.UINT8 in zp_types  # QUInt8 activations
    assert per_channel
    assert len([i for i in model.graph.input if i.name not in inits]) == 1


@pytest.mark.parametrize("io", [False, True], ids=["float-io", "int8-io"])
def test_tflite_int8_biases_are_corrected(small_artifacts, io):
    m = read_bundle(small_artifacts[("tflite", "int8", io)].path).manifest
    info = m.quantization["profile"]["bias_correction"]
    # every conv/dense of the small CNN (3 conv + 2 dense), on the calibration set, the profile's passes
    assert info["layers"] == 5 and info["images"] == 100
    assert info["passes"] == 1 and len(info["mean_abs_shift_per_pass"]) == 1
    ranges = m.quantization["profile"]["activation_ranges"]  # percentile ranges, then the MLIR quantizer
    assert ranges["method"].startswith("percentile 99.999") and ranges["images"] == 100
    assert ranges["tensors"] >= 8 and 0 < ranges["mean_range_kept"] <= 1


@pytest.mark.parametrize("fmt,key", [("onnx", "bias_correction"), ("openvino", "empirical_bias_correction")])
def test_onnx_and_openvino_int8_biases_are_corrected(small_artifacts, fmt, key):
    info = read_bundle(small_artifacts[(fmt, "int8", False)].path).manifest.quantization["profile"][key]
    assert info["layers"] == 5 and info["images"] == 100 and info["mean_abs_shift"] > 0


def test_gray_expansion_is_folded_in_every_artifact(small_artifacts):
    """The exported graphs take the 1-channel input straight into a 1-channel first convolution."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    for combo, art in small_artifacts.items():
        rewrites = read_bundle(art.path).manifest.provenance["graph_rewrites"]
        assert len(rewrites) == 1 and rewrites[0]["layers"][0] == "pre_gray_to_rgb", combo
        assert rewrites[0]["max_abs_output_diff"] <= 1e-4
    model = flatbuffer_utils.read_model(str(small_artifacts[("tflite", "fp32", False)].path / "model.tflite"))
    codes = {max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes}
    assert schema.BuiltinOperator.CONCATENATION not in codes
    first_conv = next(op for op in model.subgraphs[0].operators
                      if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                             model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == schema.BuiltinOperator.CONV_2D)
    assert model.subgraphs[0].tensors[first_conv.inputs[1]].shape[-1] == 1  # OHWI kernel, one input channel


def test_bias_correction_brings_int8_closer_to_float(small_run):
    """On a trained model and real faces: the corrected model's outputs are closer to float than before."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from fer_edge.export.calibration import build_calibration
    from fer_edge.export.source import load_source
    from fer_edge.export.tflite_bias import correct_biases

    src = load_source(small_run)
    calib = build_calibration(src, None, 100)
    saved = small_run.parent / "bias_test_saved_model"
    src.model.export(str(saved), verbose=False)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = calib.representative_dataset
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    plain = conv.convert()
    fixed, info = correct_biases(plain, tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert(), calib.x)
    assert fixed != plain and info["layers"] >= 3

    from fer_edge.data import provenance_dataset, select_role

    test = select_role(provenance_dataset(src.data, src.run_dir), src.data, "test")
    x = src.input.preprocess(test.images[:200])  # held-out faces, not the calibration images
    want = src.model.predict(x, verbose=0)

    def probs(flat):
        it = Interpreter(model_content=flat)
        it.allocate_tensors()
        i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        out = []
        for k in range(len(x)):
            it.set_tensor(i, x[k : k + 1])
            it.invoke()
            out.append(it.get_tensor(o)[0])
        return np.array(out)

    assert np.abs(probs(fixed) - want).mean() <= np.abs(probs(plain) - want).mean()
