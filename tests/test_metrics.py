"""fer_edge.metrics against scikit-learn on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.metrics import agreement, classification_metrics, confusion_matrix

sk = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed,k,n,drop", [(0, 7, 500, None), (1, 4, 60, 2), (2, 7, 30, 1), (3, 3, 10, None)])
def test_matches_sklearn(seed, k, n, drop):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, n))
    if drop is not None:  # a class never predicted (precision 0 by zero_division=0) and never true
        y_pred[y_pred == drop] = (drop + 1) % k
        y_true[y_true == drop] = (drop + 1) % k
    labels = [f"c{i}" for i in range(k)]
    m = classification_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=range(k), zero_division=0)
    for i, name in enumerate(labels):
        assert m["per_class"][name]["precision"] == pytest.approx(p[i])
        assert m["per_class"][name]["recall"] == pytest.approx(r[i])
        assert m["per_class"][name]["f1"] == pytest.approx(f[i])
        assert m["per_class"][name]["support"] == s[i]
    assert m["confusion_matrix"] == sk.confusion_matrix(y_true, y_pred, labels=range(k)).tolist()
    assert m["n"] == n


def test_known_values():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["c"]["recall"] == pytest.approx(0.5)
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_agreement():
    a = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = np.array([[0.6, 0.4], [0.7, 0.3]])
    g = agreement(a, b)
    assert g["top1_agreement"] == 0.5
    assert g["max_abs_prob_diff"] == pytest.approx(0.5)


def test_labels_outside_the_classes_are_refused():
    # Regression: -1 (FER+ soft mode's "no hard label") used to wrap into the last class: accuracy 1.0.
    import pytest

    from fer_edge.metrics import classification_metrics

    with pytest.raises(ValueError, match="y_true has 1 labels outside 0..1"):
        classification_metrics([0, 1, -1], [0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="y_pred"):
        classification_metrics([0, 1], [0, 2], ["a", "b"])


def test_popcount_matches_a_bit_loop():
    import numpy as np

    from fer_edge.compat import popcount

    a = np.random.default_rng(0).integers(0, 2**63, 50, dtype=np.uint64)
    assert popcount(a).tolist() == [bin(int(v)).count("1") for v in a]


def test_popcount_without_numpy2(monkeypatch):
    import numpy as np

    from fer_edge.compat import popcount

    a = np.random.default_rng(1).integers(0, 2**63, 50, dtype=np.uint64)
    want = popcount(a).tolist()
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # NumPy 1.x has none
    assert popcount(a).tolist() == want


def test_pooled_metrics_count_every_test_face_once():
    # two folds' confusion matrices pooled = the metrics of their predictions concatenated
    from fer_edge.metrics import pooled_metrics

    labels = ["a", "b", "c"]
    y1, p1 = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    y2, p2 = np.array([1, 1, 2]), np.array([1, 0, 0])
    cms = [classification_metrics(y, p, labels)["confusion_matrix"] for y, p in ((y1, p1), (y2, p2))]
    want = classification_metrics(np.concatenate([y1, y2]), np.concatenate([p1, p2]), labels)
    got = pooled_metrics(cms, labels)
    assert got == want and got["n"] == 7 and got["accuracy"] == pytest.approx(4 / 7)
