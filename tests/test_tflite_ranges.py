"""Percentile activation ranges for TFLite int8: narrower than min/max, never for the input, always
containing 0, and the MLIR quantizer accepts the result."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")
keras = pytest.importorskip("keras")

from fer_edge.export.tflite_ranges import percentile_ranges  # noqa: E402


def _ranges(flat: bytes) -> dict[int, tuple[float, float]]:
    from tensorflow.lite.tools import flatbuffer_utils

    g = flatbuffer_utils.convert_bytearray_to_object(bytearray(flat)).subgraphs[0]
    return {i: (float(t.quantization.min[0]), float(t.quantization.max[0])) for i, t in enumerate(g.tensors)
            if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x))
    saved = tmp_path_factory.mktemp("ranges") / "saved"
    model.export(str(saved), verbose=False)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (64, 16, 16, 1)).astype(np.float32)
    images[0] = 255.0  # one extreme image: the outlier percentile ranges are meant to ignore
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([images[i : i + 1]] for i in range(len(images)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv._experimental_calibrate_only = True
    return conv.convert(), images


def test_ranges_narrow_keep_the_input_and_contain_zero(calibrated):
    flat, images = calibrated
    out, info = percentile_ranges(flat, images, 99.0)
    before, after = _ranges(flat), _ranges(out)
    assert before.keys() == after.keys() and info["tensors"] >= 3 and info["images"] == 64
    from tensorflow.lite.tools import flatbuffer_utils

    inputs = set(flatbuffer_utils.convert_bytearray_to_object(bytearray(flat)).subgraphs[0].inputs)
    narrower = 0
    for i, (lo, hi) in after.items():
        blo, bhi = before[i]
        if i in inputs:
            assert (lo, hi) == (blo, bhi)  # raw pixels keep their exact range
            continue
        assert lo <= 0.0 <= hi and min(blo, 0.0) <= lo and hi <= bhi  # quantized ranges hold 0 anyway
        narrower += (hi - lo) < (bhi - blo)
    assert narrower >= 1 and 0 < info["mean_range_kept"] < 1


def test_narrowed_model_quantizes_and_runs(calibrated):
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import convert as tflite_convert

    flat, images = calibrated
    out, _ = percentile_ranges(flat, images, 99.999)
    quantized = tflite_convert.mlir_quantize(out, False, input_data_type=tf.float32, output_data_type=tf.float32)
    it = Interpreter(model_content=quantized)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], images[1:2])
    it.invoke()
    probs = it.get_tensor(it.get_output_details()[0]["index"])
    assert probs.shape == (1, 7) and abs(float(probs.sum()) - 1) < 0.05


def test_rejects_a_bad_percentile(calibrated):
    with pytest.raises(ValueError, match="percentile"):
        percentile_ranges(calibrated[0], calibrated[1], 40.0)
