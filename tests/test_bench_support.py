"""TFLite bundles for the bench tests: the convert tests' small trained CNN (conftest's ``small_run``)
exported to float32 and full-int8 (int8 I/O) TFLite with the plain TFLite converter, each with
manifest data selectors of whole FER2013 splits.

Built once per test session by conftest's ``tflite_bundles`` fixture. Holds no tests itself.
"""

from __future__ import annotations

import os
from pathlib import Path


def _data_provenance(csv: Path) -> dict:
    return {"path": str(csv), "kind": "fer2013", "labels": "fer7",
            "train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}}


def tflite_bundles(run: Path, fer2013, csv: Path, root: Path) -> dict[str, Path]:
    """{"fp32": folder, "int8": folder} of TFLite bundles of the Keras model in ``run``, under ``root``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import keras

    from fer_edge.atomic import atomic_dir
    from fer_edge.bundle import InputSpec, Manifest, write_bundle

    model = keras.models.load_model(run / "model.keras", compile=False)
    x = fer2013.split("train").images[:200][..., None].astype("float32")  # int8 calibration faces
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
                name="small-cnn", format="tflite", precision=precision, model_file="model.tflite",
                labels=list(fer2013.label_names), input=InputSpec(size=(48, 48), color="gray"),
                quantization=quant, provenance={"data": _data_provenance(csv), "recipe": "bench test small CNN"},
            )
            write_bundle(tmp, manifest, ["model.tflite"])
        out[precision] = folder
    return out
