"""Shared by the int8 studies: a run's validation and test splits with the float model's predictions,
and argmax predictions of a TFLite flatbuffer. Scripts in benchmarks/ import it as a sibling module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("val", "test")  # PublicTest (choose settings), PrivateTest (report)


@dataclass
class EvalSplits:
    src: Any  # fer_edge.export.source.Source
    dataset: Any
    x: dict[str, np.ndarray] = field(default_factory=dict)  # preprocessed exactly as at inference
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    float_pred: dict[str, np.ndarray] = field(default_factory=dict)  # the float Keras model's argmax

    def role(self, name: str):
        from fer_edge.data import select_role

        return select_role(self.dataset, self.src.data, name)

    def accuracy(self, name: str, pred: np.ndarray) -> float:
        return float(np.mean(pred == self.labels[name]))

    def agreement(self, name: str, pred: np.ndarray) -> float:
        return float(np.mean(pred == self.float_pred[name]))


def load_eval_splits(model_dir: str) -> EvalSplits:
    from fer_edge.data import provenance_dataset
    from fer_edge.export.source import load_source

    src = load_source(model_dir)
    out = EvalSplits(src=src, dataset=provenance_dataset(src.data, src.run_dir))
    for name in SPLITS:
        part = out.role(name)
        out.x[name] = src.input.preprocess(part.images)
        out.labels[name] = part.labels
        out.float_pred[name] = src.model.predict(out.x[name], batch_size=256, verbose=0).argmax(1)
    return out


def tflite_argmax(flat: bytes, x: np.ndarray, threads: int = 2) -> np.ndarray:
    """Top-1 class of each image, one image per invoke (as deployed)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flat, num_threads=threads)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = np.empty(len(x), int)
    for k in range(len(x)):
        it.set_tensor(i, x[k : k + 1])
        it.invoke()
        out[k] = it.get_tensor(o).argmax()
    return out
