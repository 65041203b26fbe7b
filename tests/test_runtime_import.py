"""The light paths stay light: each import below pulls in no TensorFlow, Keras, torch, onnx or nncf
(and the runtime itself no backend until one is used). One parametrized test, one fresh process each."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "tf_keras", "torch", "onnx", "nncf", "tf2onnx")
BACKENDS = ("ai_edge_litert", "tflite_runtime", "onnxruntime", "openvino")

CASES = {
    # import fer_edge.runtime: a Pi's whole install is numpy + one interpreter
    "runtime": ("import fer_edge.runtime; from fer_edge.runtime import load, Classifier, Prediction", HEAVY + BACKENDS),
    # the Pi path: the LiteRT interpreter module is imported, TensorFlow & co. are not
    "litert backend": ("import fer_edge.runtime.litert_backend as b; b._interpreter_module()", HEAVY),
    "face detection": ("import fer_edge.face", HEAVY),
    # one evaluation for every stage (numpy + the classifier it is given); `fer-edge eval` of a TFLite bundle
    "evaluation and eval": ("import fer_edge.evaluation, fer_edge.training.evaluation_cmd", HEAVY + BACKENDS),
    "live and its server": ("import fer_edge.live, fer_edge.live.server, fer_edge.cli.live_cmd", HEAVY),
    "bench orchestration": ("import fer_edge.bench.core, fer_edge.bench.remote, fer_edge.bench.report, "
                            "fer_edge.cli.bench_cmd", HEAVY + ("onnxruntime", "openvino")),
    "cli --help": ("from click.testing import CliRunner; from fer_edge.cli import main; "
                   "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output", HEAVY),
}


@pytest.mark.parametrize("name", list(CASES))
def test_import_stays_light(name):
    statement, forbidden = CASES[name]
    code = f"import sys, json; {statement}; print(json.dumps([m for m in {forbidden!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], name
