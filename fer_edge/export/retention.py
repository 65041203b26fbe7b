"""Accuracy retention of a converted artifact, measured through fer_edge.runtime (not TensorFlow)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import agreement, classification_metrics


@dataclass
class Reference:
    """The float Keras model's outputs on the test selection, computed once per convert run."""

    images: np.ndarray  # uint8 test faces, as the runtime receives them
    labels: np.ndarray
    label_names: list[str]
    probs: np.ndarray
    metrics: dict[str, Any]
    selector: dict[str, Any]
    source: str

    @classmethod
    def from_keras(cls, model, spec, images, labels, label_names, selector, source, batch: int = 256) -> "Reference":
        x = spec.preprocess(images)
        probs = np.asarray(model.predict(x, batch_size=batch, verbose=0), dtype=np.float32)
        if probs.min() < 0 or not np.allclose(probs.sum(1), 1, atol=1e-3):  # a logits head
            from ..runtime.classifier import softmax

            probs = softmax(probs)
        metrics = classification_metrics(labels, probs.argmax(1), label_names)
        return cls(images, labels, list(label_names), probs, metrics, selector, source)


def evaluate_bundle(folder: Path, ref: Reference, **load_kwargs) -> dict[str, Any]:
    """Run the bundle on the reference's test faces through the runtime and compare."""
    from ..runtime import load

    clf = load(folder, **load_kwargs)
    t0 = time.perf_counter()
    probs = clf.predict_proba(ref.images)
    seconds = time.perf_counter() - t0
    m = classification_metrics(ref.labels, probs.argmax(1), ref.label_names)
    agree = agreement(probs, ref.probs)
    return {
        "n": m["n"],
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "reference_accuracy": ref.metrics["accuracy"],
        "reference_macro_f1": ref.metrics["macro_f1"],
        "accuracy_delta_pp": 100.0 * (m["accuracy"] - ref.metrics["accuracy"]),
        "macro_f1_delta_pp": 100.0 * (m["macro_f1"] - ref.metrics["macro_f1"]),
        **agree,
        "test_data": ref.source,
        "test_selector": ref.selector,
        "runtime": clf.info(),
        "eval_seconds": seconds,
        "per_class": m["per_class"],
        "confusion_matrix": m["confusion_matrix"],
    }


SUMMARY_KEYS = (
    "n", "accuracy", "macro_f1", "reference_accuracy", "reference_macro_f1", "accuracy_delta_pp",
    "macro_f1_delta_pp", "top1_agreement", "mean_abs_prob_diff", "max_abs_prob_diff", "test_data", "test_selector",
)


def summary(ret: dict[str, Any]) -> dict[str, Any]:
    """The part that goes into manifest.metrics (the full result is retention.json)."""
    out = {k: ret[k] for k in SUMMARY_KEYS if k in ret}
    out["backend"] = ret["runtime"]["backend"]
    out["precision_hint"] = ret["runtime"]["precision_hint"]
    return out
