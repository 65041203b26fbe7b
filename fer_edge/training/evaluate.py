"""Predictions and metrics for a trained model on prepared arrays."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..metrics import classification_metrics


def predict(model, x_uint8: np.ndarray, scale: tuple[float, tuple[float, ...]], batch: int = 256) -> np.ndarray:
    """Softmax probabilities for uint8 model-input pixels."""
    out = []
    s, off = scale
    offv = np.asarray(off, np.float32)
    for i in range(0, len(x_uint8), batch):
        xb = x_uint8[i : i + batch].astype(np.float32)
        if s != 1.0:
            xb *= np.float32(s)
        if np.any(offv != 0):
            xb -= offv
        out.append(np.asarray(model(xb, training=False)))
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def metrics_for(probs: np.ndarray, y: np.ndarray, labels: Sequence[str], model_labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics in the dataset's label order; the model's label order may differ (cross-dataset)."""
    model_labels = list(model_labels or labels)
    pred_names = np.asarray(model_labels)[probs.argmax(1)]
    # Predictions of a class the dataset lacks (e.g. "neutral" on CK+) count as errors.
    names = list(labels) + [n for n in model_labels if n not in labels]
    index = {n: i for i, n in enumerate(names)}
    y_pred = np.array([index[n] for n in pred_names], dtype=np.int64)
    m = classification_metrics(y, y_pred, names)
    m["model_labels"] = model_labels
    return m


def features(model, x_uint8: np.ndarray, scale, limit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features, chosen indices) of up to ``limit`` samples (for t-SNE)."""
    from .models import penultimate

    idx = np.arange(len(x_uint8))
    if len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    feat = predict(penultimate(model), x_uint8[idx], scale)
    return feat.reshape(len(idx), -1), idx
