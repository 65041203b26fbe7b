"""Quantization-aware fine-tuning in a separate process (run by fer_edge.export.qat).

tensorflow-model-optimization rejects Keras 3 models, and Keras 3 is usually already
imported in the parent, so this runs with TF_USE_LEGACY_KERAS=1: it rebuilds the model in
tf_keras (Keras 2) from a layer-by-layer spec, copies the weights (set_weights(get_weights())),
checks the rebuild against the Keras 3 outputs, annotates the layers tfmot supports,
fine-tunes on the float model's own probabilities (self-distillation), and converts to a full-integer TFLite model.

    TF_USE_LEGACY_KERAS=1 python -m fer_edge.export.qat_worker WORKDIR
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np


def rebuild(spec: dict, weights: np.lib.npyio.NpzFile):
    import tf_keras

    tensors = {}
    built = {}
    for entry in spec["layers"]:
        name, cls_name = entry["name"], entry["class"]
        if cls_name == "InputLayer":
            tensors[name] = tf_keras.Input(tuple(entry["shape"]), name=name)
            continue
        cls = getattr(tf_keras.layers, cls_name)
        allowed = set(inspect.signature(cls.__init__).parameters) | {"name", "trainable", "dtype"}
        cfg = {k: v for k, v in entry["config"].items() if k in allowed}
        layer = cls(**cfg)
        inputs = [tensors[i] for i in entry["inbound"]]
        tensors[name] = layer(inputs if len(inputs) > 1 or cls_name in ("Concatenate", "Add", "Multiply") else inputs[0])
        built[name] = layer
    model = tf_keras.Model([tensors[n] for n in spec["inputs"]], [tensors[n] for n in spec["outputs"]])
    for name, layer in built.items():
        n = int(weights.get(f"{name}::n", np.array(0)))
        if n:
            layer.set_weights([weights[f"{name}::{i}"] for i in range(n)])
    return model


def faster_range_tracking(ema_decay: float) -> None:
    """tfmot tracks activation ranges with a hard-coded EMA decay of 0.999, starting from [-6, 6]:
    that needs thousands of steps to converge, far more than a short fine-tune on a small CPU
    has. A lower decay (this process only) lets the warm-up below set the ranges in ~50 steps."""
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    original = quant_ops.MovingAvgQuantize

    def moving_avg_quantize(*args, **kwargs):
        kwargs["ema_decay"] = ema_decay
        return original(*args, **kwargs)

    quant_ops.MovingAvgQuantize = moving_avg_quantize


def main(work: Path) -> None:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    spec = json.loads((work / "spec.json").read_text())
    opts = spec["options"]
    weights = np.load(work / "weights.npz")
    data = np.load(work / "data.npz")
    model = rebuild(spec, weights)
    calib = data["calib"].astype(np.float32)
    diff = float(np.abs(model.predict(calib, verbose=0) - data["reference"]).max())
    result: dict = {"rebuild_max_abs_diff": diff}
    if diff > 1e-3:
        raise SystemExit(f"the tf_keras rebuild does not match the Keras 3 model (max |diff| {diff:.2g})")

    # BatchNorm in inference mode throughout: its statistics must not drift with the warm-up and
    # fine-tuning batches (the int8 graph folds the trained statistics).
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.trainable = False
    registry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    skipped = []

    def annotate(layer):
        # BatchNormalization is annotated too: quantize_apply folds Conv/Depthwise+BN(+ReLU) patterns,
        # which matches the folded int8 TFLite graph.
        if registry.supports(layer) or type(layer).__name__ == "BatchNormalization":
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        skipped.append(type(layer).__name__)
        return layer  # stays float in training; the TFLite converter still calibrates it

    annotated = tf_keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    faster_range_tracking(float(opts["ema_decay"]))
    qat = tfmot.quantization.keras.quantize_apply(annotated)
    # Range warm-up: training-mode forward passes over the calibration set update only the
    # activation min/max (frozen BatchNorm stays in inference mode; no weights change).
    for _ in range(int(opts["range_warmup_epochs"])):
        for i in range(0, len(calib), 16):
            qat(calib[i : i + 16], training=True)
    # before any fine-tuning the fake-quantized model should agree with the float one about as
    # well as post-training int8 does; a low value means the rebuild/annotation went wrong
    pre = qat.predict(calib, verbose=0)
    result["prefit_top1_agreement"] = float((pre.argmax(1) == data["reference"].argmax(1)).mean())
    qat.compile(tf_keras.optimizers.Adam(opts["learning_rate"]), "categorical_crossentropy")
    t0 = time.perf_counter()
    hist = qat.fit(data["x"].astype(np.float32), data["soft"], batch_size=opts["batch_size"], epochs=opts["epochs"], verbose=2)
    result.update(fit_seconds=time.perf_counter() - t0, history={k: [float(v) for v in vs] for k, vs in hist.history.items()},
                  float_layers=sorted(set(skipped)))

    conv = tf.lite.TFLiteConverter.from_keras_model(qat)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8 if opts["int8_io"] else tf.float32
    conv.inference_output_type = tf.int8 if opts["int8_io"] else tf.float32
    (work / "model.tflite").write_bytes(conv.convert())
    result["versions"] = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
                          "tensorflow_model_optimization": tfmot.__version__}
    (work / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
