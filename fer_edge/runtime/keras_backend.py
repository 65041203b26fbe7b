"""Keras backend: runs a `fer-edge train` run's model.keras (the float reference) through the same
Classifier as every other format, so bench, eval and the model card share one inference path.
Needs the ``train`` extra (TensorFlow); never imported on the light runtime path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ModelError, require


class KerasBackend:
    name = "keras"
    input_dtype = np.dtype(np.float32)

    def __init__(self, model_path: Path, threads: int, precision_hint: str | None = None,
                 device: str = "cpu", **_: object):
        if device == "cpu":
            os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # a cpu run never silently uses a GPU
        tf = require("tensorflow", "train", "the keras backend")
        keras = require("keras", "train", "the keras backend")
        self.package, self.version = "keras", keras.__version__
        self.precision_hint = None
        self.threads = threads
        try:  # only possible before TensorFlow's first op in this process (a bench worker's case)
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            self.threads = tf.config.threading.get_intra_op_parallelism_threads() or None
        try:
            self._model = keras.models.load_model(model_path, compile=False)
        except Exception as exc:  # keras raises many types for unreadable files
            raise ModelError(f"{model_path}: Keras cannot load this model ({exc})") from exc
        self._tf = tf
        self._device = "/GPU:0" if device == "gpu" else "/CPU:0"
        # A traced graph, as deployment would use; eager calls add tens of ms per image.
        spec = tf.TensorSpec([None, *self._model.input_shape[1:]], tf.float32)
        self._fn = tf.function(lambda x: self._model(x, training=False), input_signature=[spec])

    def run(self, x: np.ndarray) -> np.ndarray:
        with self._tf.device(self._device):
            return np.asarray(self._fn(np.asarray(x, dtype=np.float32)), dtype=np.float32)
