"""`import fer_edge.runtime` stays light: no TensorFlow, Keras, torch, onnx or nncf (nor a backend)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "tf_keras", "torch", "onnx", "nncf", "tf2onnx")
BACKENDS = ("ai_edge_litert", "tflite_runtime", "onnxruntime", "openvino")


def test_runtime_import_is_light():
    code = (
        "import sys, json; import fer_edge.runtime; from fer_edge.runtime import load, Classifier, Prediction; "
        f"print(json.dumps([m for m in {HEAVY + BACKENDS!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_litert_backend_never_imports_tensorflow():
    # the Pi path: the LiteRT interpreter module is imported, TensorFlow & co. are not
    code = (
        "import sys, json; import fer_edge.runtime.litert_backend as b; b._interpreter_module(); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
