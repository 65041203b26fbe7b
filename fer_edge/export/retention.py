"""Accuracy retention of a converted artifact: the float model and the artifact scored by
fer_edge.evaluation on the same test faces, and how closely their outputs agree."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data import FaceDataset
from ..evaluation import evaluate
from ..metrics import agreement


@dataclass
class Reference:
    """The float Keras model's outputs on the test selection: ``convert`` computes it (once per
    call) and returns it in its report; pass it back to convert the same model again without
    re-scoring the float model."""

    faces: FaceDataset  # the test faces, as the runtime receives them
    probs: np.ndarray
    metrics: dict[str, Any]
    selector: dict[str, Any]
    source: str
    model_sha256: str = ""  # what it was computed for: this model file ...
    data: dict[str, Any] = field(default_factory=dict)  # ... and its provenance["data"] (path, subset, selectors)

    @classmethod
    def from_keras(cls, source, faces: FaceDataset, data: dict[str, Any]) -> "Reference":
        """``source``: the convert's SourceModel (its Keras model in memory, its input spec and labels);
        ``faces``: its test faces; ``data``: its provenance["data"]."""
        from ..runtime.keras_backend import keras_classifier

        clf = keras_classifier(source.model, source.input, source.labels, source.run_dir or source.path.parent)
        metrics, probs = evaluate(clf, faces, return_probs=True)  # the batch size the artifacts get
        return cls(faces, probs, metrics, data.get("test"), str(data["path"]), source.sha256, dict(data))

    def matches(self, source) -> bool:
        return self.model_sha256 == source.sha256 and self.data == source.data


def evaluate_bundle(folder: Path, ref: Reference, **load_kwargs) -> dict[str, Any]:
    """Score the bundle on the reference's test faces through the runtime and compare."""
    from ..runtime import load

    clf = load(folder, **load_kwargs)
    t0 = time.perf_counter()
    m, probs = evaluate(clf, ref.faces, return_probs=True)
    seconds = time.perf_counter() - t0
    return {
        "n": m["n"],
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "reference_accuracy": ref.metrics["accuracy"],
        "reference_macro_f1": ref.metrics["macro_f1"],
        "accuracy_delta_pp": 100.0 * (m["accuracy"] - ref.metrics["accuracy"]),
        "macro_f1_delta_pp": 100.0 * (m["macro_f1"] - ref.metrics["macro_f1"]),
        **agreement(probs, ref.probs),
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
