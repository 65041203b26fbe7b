"""Classification metrics in plain numpy (checked against scikit-learn in the tests)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        bad = (y < 0) | (y >= num_classes)
        if bad.any():  # np.add.at would wrap -1 (FER+ "no hard label") into the last class
            raise ValueError(f"{name} has {int(bad.sum())} labels outside 0..{num_classes - 1} "
                             f"(e.g. {int(y[bad][0])}); drop samples without a hard label first")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Classes with no predictions get precision 0 (scikit-learn's zero_division=0).
    """
    k = len(labels)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    in_true = support > 0
    # Macro-F1 over classes seen in y_true or y_pred, like scikit-learn's default.
    present = in_true | (predicted > 0)
    n = int(cm.sum())
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "balanced_accuracy": float(recall[in_true].mean()) if in_true.any() else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }


def pooled_metrics(confusion_matrices: Sequence[Any], labels: Sequence[str]) -> dict[str, Any]:
    """classification_metrics of several test sets at once (e.g. the folds of leave-one-subject-out),
    from their confusion matrices: every test face counts once."""
    k = len(labels)
    cm = sum(np.asarray(c)[:k, :k] for c in confusion_matrices)
    y_true = np.repeat(np.arange(k), cm.sum(1))
    y_pred = np.concatenate([np.repeat(np.arange(k), cm[i]) for i in range(k)])
    return classification_metrics(y_true, y_pred, labels)


def agreement(probs_a: np.ndarray, probs_b: np.ndarray) -> dict[str, float]:
    """How closely two models' softmax outputs agree (converted vs reference)."""
    a = np.asarray(probs_a, dtype=np.float64)
    b = np.asarray(probs_b, dtype=np.float64)
    return {
        "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
        "mean_abs_prob_diff": float(np.abs(a - b).mean()),
        "max_abs_prob_diff": float(np.abs(a - b).max()),
    }
