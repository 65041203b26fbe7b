"""`fer-edge convert` on the command line: the table, --max-drop, and bad input (clear error, nothing left behind)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bundle import read_bundle
from fer_edge.cli.main import main


def _invoke(*args):
    result = CliRunner().invoke(main, ["convert", *map(str, args)])
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_cli_table_json_and_next_commands(small_run, tmp_path):
    result, text = _invoke(small_run, "--format", "tflite", "--dynamic", "--out", tmp_path)
    assert result.exit_code == 0, text
    assert "tflite-dynamic" in text and "float Keras reference" in text
    assert f"fer-edge bench {tmp_path / 'tflite-dynamic'}" in text
    result, text = _invoke(small_run, "--format", "tflite", "--dynamic", "--out", tmp_path, "--json")
    assert result.exit_code == 2 and "already exists" in text  # never overwritten silently
    result, _ = _invoke(small_run, "--format", "tflite", "--dynamic", "--out", tmp_path, "--json", "--overwrite")
    report = json.loads(result.stdout)
    assert report["ok"] and report["artifacts"][0]["retention"]["top1_agreement"] > 0.95


def test_max_drop_fails_but_keeps_marked_artifact(small_run, tmp_path):
    # one black calibration image: the int8 ranges are wrong, so accuracy drops
    calib = tmp_path / "calib"
    calib.mkdir()
    cv2.imwrite(str(calib / "black.png"), np.zeros((48, 48), np.uint8))
    out = tmp_path / "out"
    result, text = _invoke(small_run, "--format", "tflite", "--int8", "--calib", calib, "--max-drop", "0.5", "--out", out)
    assert result.exit_code == 3, text
    assert "FAILED validation" in text
    m = read_bundle(out / "tflite-int8").manifest
    assert m.metrics["status"] == "failed_validation" and m.metrics["max_drop_pp"] == 0.5
    assert m.metrics["retention"]["accuracy_delta_pp"] < -0.5
    assert m.quantization["calibration"]["source"] == str(calib)


def _assert_clean_error(result, text, out, *needles):
    assert result.exit_code != 0
    assert "error:" in text and "Traceback" not in text
    for needle in needles:
        assert needle in text, text
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_not_a_model(tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    out = tmp_path / "out"
    result, text = _invoke(fake, "--format", "tflite", "--out", out)
    _assert_clean_error(result, text, out, "not a Keras model")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    result, text = _invoke(other, "--format", "onnx", "--out", out)
    _assert_clean_error(result, text, out, "notes.txt")


def test_unsupported_layer(tmp_path):
    import keras

    inp = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    out = tmp_path / "out"
    result, text = _invoke(path, "--format", "tflite", "--out", out)
    _assert_clean_error(result, text, out, "unsupported layer", "Lambda")


def test_empty_calibration_folder(small_run, tmp_path):
    calib = tmp_path / "calib"
    (calib / "happy").mkdir(parents=True)
    (calib / "happy" / "broken.png").write_bytes(b"not a png")
    (calib / "readme.txt").write_text("no images here")
    out = tmp_path / "out"
    result, text = _invoke(small_run, "--format", "all", "--int8", "--calib", calib, "--out", out)
    _assert_clean_error(result, text, out, "no usable images", "1 files could not be read")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--format", "onnx", "--dynamic"], "does not support precision 'dynamic'"),
        (["--format", "all", "--dynamic"], "does not support precision 'dynamic'"),
        (["--format", "tflite", "--fp16", "--int8-io"], "--int8-io needs --int8"),
        (["--format", "onnx", "--int8", "--int8-io"], "--int8-io applies to --format tflite only"),
        (["--format", "tflite", "--fp16", "--int8"], "choose one precision flag"),
        (["--format", "tflite", "--fp16", "--calib", "x"], "--calib is only used by --int8"),
    ],
)
def test_bad_combinations(small_run, tmp_path, args, needle):
    out = tmp_path / "out"
    result, text = _invoke(small_run, *args, "--out", out)
    _assert_clean_error(result, text, out, needle)


@pytest.mark.slow
def test_qat_int8_tflite(small_run, tmp_path):
    """Experimental QAT (library only): fine-tuning in a TF_USE_LEGACY_KERAS=1 subprocess, then int8 TFLite."""
    from fer_edge.errors import ConfigError
    from fer_edge.export.pipeline import convert

    with pytest.raises(ConfigError, match="int8 TFLite"):
        convert(small_run, fmt="onnx", precision="int8", qat=True)
    out = tmp_path / "out"
    report = convert(small_run, fmt="tflite", precision="int8", qat=True, calib_size=100, out=out)
    assert report.ok, report.artifacts[0].error
    m = read_bundle(out / "tflite-int8-qat").manifest
    qat = m.quantization["profile"]["qat"]
    assert qat["rebuild_max_abs_diff"] < 1e-4  # the tf_keras rebuild equals the Keras 3 model
    assert qat["float_layers"] == ["Rescaling"] and qat["history"]["loss"]
    assert qat["prefit_top1_agreement"] > 0.9  # fake-quant ranges warmed up, BatchNorm frozen
    assert m.metrics["retention"]["top1_agreement"] > 0.9  # self-distilled: stays close to the float model


def test_efficientnet_like_int8_risk_is_detected(small_run):
    import keras

    from fer_edge.export.source import int8_risk, load_source

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="swish")(inp)
    se = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = keras.layers.Conv2D(8, 1, activation="sigmoid")(se)
    x = keras.layers.Multiply()([x, se])
    x = keras.layers.GlobalAveragePooling2D()(x)
    risky = keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x))
    warning = int8_risk(risky)
    assert warning and "EfficientNet-Lite0" in warning and "--fp16" in warning
    assert int8_risk(load_source(small_run).model) is None  # ReLU CNN: no warning
