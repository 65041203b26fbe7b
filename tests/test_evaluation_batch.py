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
