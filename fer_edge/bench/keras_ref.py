"""Run a Keras-format bundle (the float reference, or a peer's .hdf5) like a runtime Classifier.

Keras bundles have no on-device runtime (fer_edge.formats: backend ""); the bench
still measures them so every converted model has its float reference in the
same table. Needs the ``train`` extra.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..bundle import read_bundle
from ..errors import ModelError, require


class KerasClassifier:
    def __init__(self, bundle_path: str | os.PathLike, threads: int | None = None, device: str = "cpu"):
        if device == "cpu":
            # Hide GPUs so a "cpu" row never silently runs on one.
            os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
        tf = require("tensorflow", "train", "running a Keras bundle")
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        keras = require("keras", "train", "running a Keras bundle")
        self.bundle = read_bundle(bundle_path, verify=True)
        self.manifest = self.bundle.manifest
        self.input_spec = self.manifest.input
        self.labels = list(self.manifest.labels)
        self.threads = threads
        self._tf = tf
        try:
            self._model = keras.models.load_model(self.bundle.model_path, compile=False)
        except Exception as exc:  # keras raises many types for unreadable files
            raise ModelError(f"{self.bundle.model_path}: Keras cannot load this model ({exc})") from exc
        self._device = "/GPU:0" if device == "gpu" else "/CPU:0"
        self._version = keras.__version__
        # A traced graph, as deployment would use; eager calls add tens of ms per image.
        spec = tf.TensorSpec([None, *self.input_spec.shape], tf.float32)
        self._fn = tf.function(lambda x: self._model(x, training=False), input_signature=[spec])

    def run(self, x: np.ndarray) -> np.ndarray:
        with self._tf.device(self._device):
            out = self._fn(np.asarray(x, dtype=np.float32))
        out = np.asarray(out, dtype=np.float32).reshape(len(x), -1)
        if self.manifest.quantization.get("output_kind") == "logits":
            out = np.exp(out - out.max(1, keepdims=True))
            out /= out.sum(1, keepdims=True)
        return out

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        return self.input_spec.preprocess(np.asarray(faces))

    def predict_proba(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(faces), len(self.labels)), np.float32)
        for start in range(0, len(faces), batch_size):
            out[start : start + batch_size] = self.run(self.preprocess(faces[start : start + batch_size]))
        return out

    def info(self) -> dict[str, Any]:
        return {
            "backend": "keras",
            "backend_package": "keras",
            "backend_version": self._version,
            "threads": self.threads,
            "precision_hint": None,
            "model_file": str(self.bundle.model_path),
            "format": self.manifest.format,
            "precision": self.manifest.precision,
        }
