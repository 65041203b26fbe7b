"""A small real model for the bench tests: a tiny ReLU CNN trained for two epochs on
3,000 FER2013 training images, exported to float32 and full-int8 TFLite bundles.

Built once per test session (module cache) and shared by the test_bench_* files.
Holds no tests itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

_CACHE: dict[str, dict[str, Path]] = {}


def _data_provenance(csv: Path) -> dict:
    return {"path": str(csv), "kind": "fer2013", "labels": "fer7",
            "train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}}


def tiny_bundles(fer2013, csv: Path, root_factory) -> dict[str, Path]:
    """{"fp32": folder, "int8": folder} of TFLite bundles of one tiny trained CNN.

    ``root_factory`` is pytest's tmp_path_factory (so pytest cleans up the folders).
    """
    if "b" in _CACHE:
        return _CACHE["b"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import keras

    from fer_edge.atomic import atomic_dir
    from fer_edge.bundle import InputSpec, Manifest, write_bundle

    train = fer2013.split("train")
    idx = np.random.default_rng(0).permutation(len(train))[:3000]
    x = train.images[idx][..., None].astype(np.float32)
    y = train.labels[idx]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((48, 48, 1)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(7, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)

    root = Path(root_factory.mktemp("tiny-bundles"))
    saved = root / "saved"
    model.export(str(saved), verbose=False)

    def representative():
        for i in range(0, 200, 10):
            yield [x[i : i + 10][:1]]

    out: dict[str, Path] = {}
    for precision in ("fp32", "int8"):
        conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        quant: dict = {}
        if precision == "int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        blob = conv.convert()
        if precision == "int8":
            from ai_edge_litert.interpreter import Interpreter

            it = Interpreter(model_content=blob)
            (si, zi), (so, zo) = it.get_input_details()[0]["quantization"], it.get_output_details()[0]["quantization"]
            quant = {"input": {"scale": float(si), "zero_point": int(zi), "dtype": "int8"},
                     "output": {"scale": float(so), "zero_point": int(zo), "dtype": "int8"},
                     "output_kind": "probabilities"}
        folder = root / f"tflite-{precision}"
        with atomic_dir(folder) as tmp:
            (tmp / "model.tflite").write_bytes(blob)
            manifest = Manifest(
                name="tiny-cnn", format="tflite", precision=precision, model_file="model.tflite",
                labels=list(fer2013.label_names), input=InputSpec(size=(48, 48), color="gray"),
                quantization=quant, provenance={"data": _data_provenance(csv), "recipe": "bench test tiny CNN"},
            )
            write_bundle(tmp, manifest, ["model.tflite"])
        out[precision] = folder
    _CACHE["b"] = out
    return out
