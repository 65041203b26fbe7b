"""Evaluation batches shrink with the model input: a 256-face batch at 224 px was killed for memory."""

from __future__ import annotations

from fer_edge.bundle import InputSpec
from fer_edge.evaluation import PIXELS_PER_CALL, batch_size_for


def _spec(size, crop=None, color="gray"):
    return InputSpec.from_dict({"size": list(size), "color": color, "scale": 1 / 127.5, "offset": [-1.0],
                                **({"crop": list(crop)} if crop else {})})


def test_small_faces_keep_the_full_batch_and_large_ones_shrink():
    assert batch_size_for(_spec((48, 48))) == 256
    assert batch_size_for(_spec((48, 48), crop=(44, 44))) == 256
    assert batch_size_for(_spec((224, 224))) == PIXELS_PER_CALL // (224 * 224) == 20
    assert batch_size_for(_spec((224, 224), color="rgb")) == 6
    assert batch_size_for(_spec((4096, 4096))) == 1


def test_test_time_views_keep_the_batch():
    # the runtime runs each view as its own call of batch_size inputs (Classifier._proba)
    ten_crop = InputSpec.from_dict({**_spec((48, 48), crop=(44, 44)).to_dict(), "tta": "ten_crop"})
    assert batch_size_for(ten_crop) == 256


def test_evaluate_uses_the_input_sized_batch_unless_told():
    import numpy as np

    from fer_edge.data import FaceDataset
    from fer_edge.evaluation import evaluate

    class Recorder:  # a classifier that records the batch size it is called with
        labels = ["a", "b"]
        tta = "none"

        def __init__(self, spec):
            self.input_spec, self.calls = spec, []

        def predict_proba(self, faces, batch_size=64):
            self.calls.append(batch_size)
            return np.tile([[0.9, 0.1]], (len(faces), 1)).astype(np.float32)

    faces = FaceDataset("t", np.zeros((5, 224, 224), np.uint8), np.array([0, 1, 0, 0, 1]), ("a", "b"),
                        np.array(["all"] * 5), np.array([f"face {i}" for i in range(5)]))
    clf = Recorder(_spec((224, 224)))
    assert evaluate(clf, faces)["accuracy"] == 0.6
    assert evaluate(clf, faces, batch_size=3)["n"] == 5
    assert clf.calls == [20, 3]
