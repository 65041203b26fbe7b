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


def predict_views(model, spec, x_resized: np.ndarray, scale, tta: str = "none", batch: int = 256) -> np.ndarray:
    """Probabilities for resized uint8 faces, averaged over the test-time views of ``tta``
    (``InputSpec.views``: the runtime averages the same views)."""
    views = spec.views(x_resized, tta)
    return np.mean([predict(model, np.ascontiguousarray(v), scale, batch) for v in views], axis=0)


def float32_model(model):
    """The same model with every layer in float32 (a mixed-precision model's weights are float32
    already; its bfloat16 compute is a layer setting). Exported artifacts start from this."""
    import keras

    def plain(node):
        if isinstance(node, dict):
            # "FloatDTypePolicy" and a bare "mixed_..." dtype string: older Keras 3 releases
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
                return {**node, "config": {**node.get("config", {}), "name": "float32"}}
            return {k: ("float32" if k == "dtype" and str(v).startswith("mixed_") else plain(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node

    config = model.get_config()
    fixed = plain(config)
    if fixed == config:
        return model
    # Built under a float32 global policy: layers whose config names no dtype (input layers,
    # nested models) would otherwise take the caller's mixed policy.
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clean = keras.Model.from_config(fixed)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    clean.set_weights(model.get_weights())
    return clean


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
