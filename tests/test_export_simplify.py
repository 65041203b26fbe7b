"""The export-time fold of the gray->RGB expansion into the first convolution is exact, and only
applies to the graph shape it is written for."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.errors import ModelError
from fer_edge.export.simplify import GRAY_TO_RGB, simplify_for_export

keras = pytest.importorskip("keras")
layers = keras.layers


def _model(expand: str = "same", scale=1 / 127.5, after=None):
    inp = keras.Input((24, 24, 1), name="image")
    other = layers.Rescaling(2.0)(inp)
    parts = {"same": [inp, inp, inp], "different": [inp, other, inp]}[expand]
    x = layers.Concatenate(name=GRAY_TO_RGB)(parts)
    x = layers.Rescaling(scale, offset=-1.0, name="pre_tanh")(x)
    if after is not None:
        x = after(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="first_conv")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(7, activation="softmax")(x))


def _faces(n=16):
    return np.random.default_rng(1).uniform(0, 255, (n, 24, 24, 1)).astype(np.float32)


def test_fold_is_exact_and_drops_the_expansion():
    keras.utils.set_random_seed(0)
    model = _model()
    # non-trivial BN statistics so the check is not on an identity-like network
    bn = next(l for l in model.layers if isinstance(l, layers.BatchNormalization))
    g, b, m, v = bn.get_weights()
    bn.set_weights([g * 1.5, b + 0.1, m + 0.2, v * 2.0])
    folded, rewrites = simplify_for_export(model)
    assert [r["layers"] for r in rewrites] == [[GRAY_TO_RGB, "first_conv"]]
    assert not any(isinstance(l, layers.Concatenate) for l in folded.layers)
    assert folded.get_layer("first_conv").get_weights()[0].shape == (3, 3, 1, 8)
    x = _faces()
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    # the source model is left as it was
    assert model.get_layer("first_conv").get_weights()[0].shape == (3, 3, 3, 8)


@pytest.mark.parametrize("variant", ["no_expansion", "different_inputs", "per_channel_layer"])
def test_fold_does_not_apply_to_other_graphs(variant):
    if variant == "no_expansion":
        inp = keras.Input((24, 24, 1))
        model = keras.Model(inp, layers.Dense(7)(layers.Flatten()(layers.Conv2D(4, 3)(inp))))
    elif variant == "different_inputs":
        model = _model(expand="different")
    else:  # a depthwise conv treats the three copies differently: they are no longer one channel
        model = _model(after=layers.DepthwiseConv2D(3, padding="same", name="per_channel"))
    out, rewrites = simplify_for_export(model)
    assert out is model and rewrites == []


def test_fold_refuses_when_outputs_change(monkeypatch):
    from fer_edge.export import simplify

    model = _model()
    monkeypatch.setattr(simplify, "_max_output_diff", lambda a, b: 0.5)
    with pytest.raises(ModelError, match="changed the outputs"):
        simplify_for_export(model)


def test_fold_can_be_applied_again_to_the_same_source():
    """convert builds one export context per format: each must find the same rewrite."""
    model = _model()
    first = simplify_for_export(model)[1]
    second = simplify_for_export(model)[1]
    assert first and second == first
