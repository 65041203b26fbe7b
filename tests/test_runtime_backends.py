"""fer_edge.runtime: each backend equals its engine run directly; preprocessing, batching, int8 I/O, errors."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from fer_edge.errors import ConfigError, MissingExtraError, ModelError
from fer_edge.runtime import Classifier, Prediction, load

pytestmark = pytest.mark.needs_data


@pytest.fixture(scope="session")
def faces(fer2013):
    test = fer2013.split("test")
    return test.images[:24]  # uint8 (N,48,48) gray


def _direct(fmt: str, path, x: np.ndarray) -> np.ndarray:
    """The engine called directly, without fer_edge.runtime."""
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        out = []
        it = Interpreter(model_path=str(path / "model.tflite"))
        it.allocate_tensors()
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        for row in x:
            it.set_tensor(i["index"], row[None])
            it.invoke()
            out.append(it.get_tensor(o["index"])[0].copy())
        return np.stack(out)
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    import openvino as ov

    compiled = ov.Core().compile_model(str(path / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x)[0]


@pytest.mark.parametrize("combo", [("tflite", "int8"), ("tflite", "fp32"), ("onnx", "int8"), ("openvino", "int8")],
                         ids=lambda c: "-".join(c))
def test_runtime_equals_engine(small_artifacts, faces, combo):
    path = small_artifacts[(*combo, False)].path
    clf = load(path)
    x = clf.input_spec.preprocess(faces)
    assert x.shape == (len(faces), 48, 48, 1) and x.dtype == np.float32
    got = clf.predict_proba(faces)
    want = _direct(combo[0], path, x)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(clf.run(x), got, atol=1e-6)


def test_int8_io_quantizes_with_manifest_params(small_artifacts, faces):
    path = small_artifacts[("tflite", "int8", True)].path
    clf = load(path)
    assert clf.backend.input_dtype == np.int8
    q = clf.manifest.quantization["input"]
    x = clf.input_spec.preprocess(faces)
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path / "model.tflite"))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    assert (q["scale"], q["zero_point"]) == pytest.approx(i["quantization"])
    it.set_tensor(i["index"], np.clip(np.round(x[:1] / q["scale"]) + q["zero_point"], -128, 127).astype(np.int8))
    it.invoke()
    oq = clf.manifest.quantization["output"]
    want = (it.get_tensor(o["index"]).astype(np.float32) - oq["zero_point"]) * oq["scale"]
    np.testing.assert_allclose(clf.predict_proba(faces[:1]), want, atol=1e-6)
    # and it agrees with the float-I/O int8 model
    other = load(small_artifacts[("tflite", "int8", False)].path).predict_proba(faces)
    assert (clf.predict_proba(faces).argmax(1) == other.argmax(1)).mean() >= 0.95


def test_predict_single_list_sizes_and_rgb(small_artifacts, faces):
    import cv2

    clf = load(small_artifacts[("onnx", "fp32", False)].path, threads=1)
    batch = clf.predict_proba(faces[:5])
    np.testing.assert_allclose(batch.sum(1), 1.0, atol=1e-4)
    # a list of faces of different sizes and colour: the manifest's resize/gray conversion applies
    big = cv2.resize(faces[0], (96, 96), interpolation=cv2.INTER_CUBIC)
    rgb = cv2.cvtColor(faces[1], cv2.COLOR_GRAY2RGB)
    listed = clf.predict_proba([big, rgb, faces[2]])
    np.testing.assert_allclose(listed[1:], batch[1:3], atol=1e-5)
    assert listed.shape == (3, 7)
    pred = clf.predict(faces[3])
    assert isinstance(pred, Prediction) and isinstance(clf, Classifier)
    assert pred.label == clf.labels[int(batch[3].argmax())]
    assert pred.score == pytest.approx(float(batch[3].max()), abs=1e-5)
    assert list(pred.scores) == clf.labels


def test_litert_batches_by_resizing(small_artifacts, faces):
    clf = load(small_artifacts[("tflite", "fp16", False)].path, threads=2)
    one_by_one = np.concatenate([clf.predict_proba(faces[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(clf.predict_proba(faces[:6]), one_by_one, atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(faces[:3]), one_by_one[:3], atol=1e-5)


def test_info_threads_and_openvino_precision_hint(small_artifacts):
    clf = load(small_artifacts[("openvino", "fp32", False)].path, threads=1)
    info = clf.info()
    assert info["backend"] == "openvino" and info["precision_hint"] == "f32" and info["threads"] == 1
    assert info["format"] == "openvino" and info["precision"] == "fp32" and info["backend_version"]
    assert info["model_file"].endswith("model.xml")
    assert load(small_artifacts[("onnx", "fp32", False)].path).info()["precision_hint"] is None


def test_openvino_runs_onnx_bundle_and_backend_mismatch_errors(small_artifacts, faces):
    path = small_artifacts[("onnx", "fp32", False)].path
    a = load(path).predict_proba(faces)
    b = load(path, backend="openvino").predict_proba(faces)
    np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(ConfigError, match="cannot run a 'onnx' bundle"):
        load(path, backend="litert")
    with pytest.raises(ConfigError, match="unknown backend"):
        load(path, backend="tensorrt")
    with pytest.raises(ConfigError, match="openvino backend only"):
        load(path, precision_hint="f16")


def test_sha256_and_manifest_mismatch_refused(small_artifacts, tmp_path):
    src = small_artifacts[("tflite", "int8", True)].path
    tampered = tmp_path / "tampered"
    shutil.copytree(src, tampered)
    data = bytearray((tampered / "model.tflite").read_bytes())
    data[-10] ^= 0xFF
    (tampered / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load(tampered)
    # a manifest that lost the int8 input parameters no longer matches its model
    wrong = tmp_path / "wrong"
    shutil.copytree(src, wrong)
    manifest = json.loads((wrong / "manifest.json").read_text())
    del manifest["quantization"]["input"]
    (wrong / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="quantization.input"):
        load(wrong)


def test_missing_backend_package_names_the_install(small_artifacts, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'fer-edge\[onnx\]'"):
        load(small_artifacts[("onnx", "fp32", False)].path)
    for mod in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(MissingExtraError, match="pip install ai-edge-litert"):
        load(small_artifacts[("tflite", "fp32", False)].path)


def test_keras_bundle_runs_on_the_keras_backend_or_names_the_extra(small_run, monkeypatch):
    folder = small_run
    clf = load(folder, threads=1)
    assert clf.backend_name == "keras"
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    probs = clf.predict_proba(faces)
    assert probs.shape == (3, len(clf.labels)) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # a runtime-only install
    with pytest.raises(MissingExtraError, match=r"pip install 'fer-edge\[train\]'"):
        load(folder)


def test_run_in_fixed_batches_pads_the_last_slice():
    """A static batch of 4 and 10 inputs: three calls of exactly 4 rows, outputs in order, padding dropped."""
    import numpy as np

    from fer_edge.runtime.backends import run_in_fixed_batches

    calls = []

    def run(part):
        assert len(part) == 4
        calls.append(len(part))
        return part.sum(axis=(1, 2)) * 2

    x = np.arange(10 * 2 * 3, dtype=np.float32).reshape(10, 2, 3)
    out = run_in_fixed_batches(run, x, 4)
    assert calls == [4, 4, 4]
    np.testing.assert_array_equal(out, x.sum(axis=(1, 2)) * 2)
