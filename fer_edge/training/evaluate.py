"""A trained Keras model's raw outputs (feature caches, t-SNE) and its float32 twin for export.
Scores and metrics: fer_edge.evaluation."""

from __future__ import annotations

import numpy as np

from ..bundle import InputSpec


def predict(model, x: np.ndarray, spec: InputSpec | None = None, batch: int = 256) -> np.ndarray:
    """Outputs of ``model``, batch by batch: ``x`` uint8 at the model's input size normalized by
    ``spec`` (training arrays), or float32 model input without ``spec``. Scores and metrics come
    from fer_edge.evaluation; this feeds feature caches and t-SNE."""
    def prepared(xb):
        return spec.normalize(xb.astype(np.float32)) if spec is not None else xb

    out = [np.asarray(model(prepared(x[i : i + batch]), training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, *model.output_shape[1:]), np.float32)


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


def features(model, spec: InputSpec, faces: np.ndarray, limit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features, chosen indices) of up to ``limit`` uint8 faces (for t-SNE), each
    preprocessed by ``spec`` (the centre view)."""
    from .models import penultimate

    idx = np.arange(len(faces))
    if len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    from ..evaluation import batch_size_for

    feat = predict(penultimate(model), spec.preprocess(np.asarray(faces[idx])), batch=batch_size_for(spec))
    return feat.reshape(len(idx), -1), idx
