"""A small real model for the convert/runtime tests, built once per test session.

A ReLU CNN on 48x48 gray FER2013 (expanded to 3 channels inside the model), trained 3 epochs on 3,000 training images: small
and fast, but really trained, so int8 agreement numbers mean something. It is written
as a `fer-edge train`-style keras bundle whose provenance names its data selectors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_edge.atomic import atomic_dir
from fer_edge.bundle import InputSpec, Manifest, write_bundle
from fer_edge.data import select
from fer_edge.labels import FER7
from fer_edge.paths import portable_data_path

TRAIN_SELECTOR = {"split": "train", "holdout": {"fraction": 0.105, "seed": 1, "part": "holdout"}}
# a stratified ~10% of PrivateTest keeps the retention evaluation in the tests fast
TEST_SELECTOR = {"split": "test", "holdout": {"fraction": 0.1, "seed": 0, "part": "holdout"}}


def build_small_cnn(input_shape=(48, 48, 1), k=7):
    import keras
    from keras import layers

    inp = keras.Input(input_shape, name="image")
    # gray -> 3 channels like fer-edge's ImageNet-backbone models, so every conversion test also
    # goes through the export-time fold of this expansion (fer_edge/export/simplify.py)
    x = layers.Concatenate(name="pre_gray_to_rgb")([inp, inp, inp])
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(64, activation="relu")(x)
    out = layers.Dense(k, activation="softmax")(x)
    return keras.Model(inp, out, name="small_cnn")


def small_model_bundle(root: str, csv_path: str) -> Path:
    """Train and write the keras bundle under ``root`` (kept: a second call returns it); returns its folder.
    Tests get it from conftest's session fixture ``small_run``."""
    import keras

    from fer_edge.data import load_dataset

    folder = Path(root) / "small_run"
    if (folder / "manifest.json").exists():
        return folder
    keras.utils.set_random_seed(0)
    ds = load_dataset(csv_path, "fer2013")  # the loader keeps it for the conversions
    train = select(ds, TRAIN_SELECTOR)
    x = train.images[..., None].astype(np.float32)
    model = build_small_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, train.labels, epochs=3, batch_size=32, verbose=0)
    with atomic_dir(folder) as tmp:
        model.save(tmp / "model.keras")
        manifest = Manifest(
            name="small_cnn",
            format="keras",
            precision="fp32",
            model_file="model.keras",
            labels=list(FER7),
            input=InputSpec(size=(48, 48), color="gray"),
            provenance={
                "recipe": "test_small_cnn",
                # the path as train writes it ("$FER_EDGE_DATA/..." under the data root)
                "data": {"path": portable_data_path(csv_path), "kind": "fer2013", "labels": "fer7",
                         "train": TRAIN_SELECTOR, "val": {"split": "val"}, "test": TEST_SELECTOR},
            },
        )
        write_bundle(tmp, manifest, ["model.keras"])
    return folder


if __name__ == "__main__":  # build a dev bundle: python tests/convert_helpers.py OUT_ROOT CSV
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(small_model_bundle(sys.argv[1], sys.argv[2]))


# (format, precision, int8_io) -> every artifact the tests check
COMBOS = [
    ("tflite", "fp32", False), ("tflite", "fp16", False), ("tflite", "dynamic", False), ("tflite", "int8", False),
    ("tflite", "int8", True),
    ("onnx", "fp32", False), ("onnx", "fp16", False), ("onnx", "int8", False),
    ("openvino", "fp32", False), ("openvino", "fp16", False), ("openvino", "int8", False),
]


def converted(run: Path) -> dict:
    """Convert the small model to every format x precision; -> {(fmt, prec, io): ArtifactReport}.
    Tests get it from conftest's session fixture ``small_artifacts``."""
    from fer_edge.export.pipeline import convert

    out: dict = {}
    jobs = [("all", "fp32", False), ("all", "fp16", False), ("all", "int8", False),
            ("tflite", "dynamic", False), ("tflite", "int8", True)]
    ref = None  # the float model's test outputs, computed by the first conversion
    for fmt, precision, io in jobs:
        report = convert(run, fmt=fmt, precision=precision, int8_io=io, calib_size=100, workdir=run.parent / "work",
                         reference=ref)
        ref = report.float_reference
        for art in report.artifacts:
            out[(art.format, art.precision, art.int8_io)] = art
    return out
