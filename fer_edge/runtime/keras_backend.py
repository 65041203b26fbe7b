"""Keras backend: runs a `fer-edge train` run's model.keras (the float reference) through the same
Classifier as every other format, so bench, eval and the model card share one inference path.
``keras_classifier`` wraps a model already in memory (the trainer's, convert's float source) the
same way. Needs the ``train`` extra (TensorFlow); never imported on the light runtime path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ModelError, require


def output_kind(model) -> str:
    """"probabilities" when the last layer is a softmax, else "logits" (the runtime then applies softmax)."""
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    name = getattr(act, "__name__", "")
    if name == "softmax" or type(last).__name__ == "Softmax":
        return "probabilities"
    return "logits"


class KerasBackend:
    name = "keras"
    input_dtype = np.dtype(np.float32)

    def __init__(self, model_path: Path | None, threads: int | None, precision_hint: str | None = None,
                 device: str | None = "cpu", model: Any = None, **_: object):
        if device == "cpu":
            os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # a cpu run never silently uses a GPU
        tf = require("tensorflow", "train", "the keras backend")
        keras = require("keras", "train", "the keras backend")
        self.package, self.version = "keras", keras.__version__
        self.precision_hint = None
        self.threads = threads
        if threads is not None:
            try:  # only possible before TensorFlow's first op in this process (a bench worker's case)
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                self.threads = tf.config.threading.get_intra_op_parallelism_threads() or None
        if model is None:
            try:
                model = keras.models.load_model(model_path, compile=False)
            except Exception as exc:  # keras raises many types for unreadable files
                raise ModelError(f"{model_path}: Keras cannot load this model ({exc})") from exc
        self.model = model
        self._softmax = output_kind(model) == "logits"
        self._tf = tf
        # None: where TensorFlow places it (a model in memory stays on the trainer's device).
        self._device = {"gpu": "/GPU:0", "cpu": "/CPU:0"}.get(device or "")
        # A traced graph, as deployment would use; eager calls add tens of ms per image.
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        self._fn = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self._device is None:
            out = self._fn(x)
        else:
            with self._tf.device(self._device):
                out = self._fn(x)
        out = np.asarray(out, dtype=np.float32)
        if self._softmax:  # a logits head: every backend hands the classifier probabilities
            from ..tensor_io import softmax

            out = softmax(out)
        return out


def keras_classifier(model, spec, labels: Sequence[str], folder: str | Path = ".", name: str = "keras model",
                     provenance: dict | None = None, tta: str | None = None):
    """A Classifier over a Keras model in memory: the bundle's preprocessing, views and scoring
    without saving it first (``spec``: its ``InputSpec``)."""
    from ..bundle import Bundle, Manifest
    from .classifier import Classifier

    manifest = Manifest(name=name, format="keras", precision="fp32", model_file="model.keras", labels=list(labels),
                        input=spec, provenance=dict(provenance or {}))
    backend = KerasBackend(None, threads=None, device=None, model=model)
    return Classifier(Bundle(Path(folder), manifest), backend, "keras", tta=tta)
