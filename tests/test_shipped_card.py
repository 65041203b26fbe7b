"""MODEL_CARD.md: describes exactly the shipped bundles, and its numbers regenerate (benchmarks/model_card.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fer_edge.bundle import read_bundle
from fer_edge.shipped import shipped_bundles

REPO = Path(__file__).resolve().parent.parent
CARD_JSON = REPO / "benchmarks" / "results" / "model_card.json"
TOL = 0.002  # accuracy regenerates within 0.2 points (int8 kernels are deterministic; float may differ in the last bits)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return mod


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(CARD_JSON.read_text())


def test_card_describes_the_shipped_bundles(card):
    models = card["models"]
    for fmt, folder in shipped_bundles().items():
        row = models[f"{fmt}-int8"]
        assert row["sha256"] == read_bundle(folder).manifest.files, f"{fmt}: card was made from other model files"
        src = read_bundle(folder).manifest.provenance["source_model"]["sha256"]
        assert src == card["training"]["model_sha256"]
    assert {"float", "peer-tflite-dynamic"} <= set(models)
    for row in models.values():
        assert set(row["results"]) == {"fer2013_privatetest", "ckplus48", "jaffe"}
    assert card["eval_sets"]["fer2013_privatetest"]["n"] == 3589
    assert card["eval_sets"]["ckplus48"]["n"] == 927  # 981 minus 54 contempt
    assert card["eval_sets"]["jaffe"]["n"] == 213
    assert card["bench"]["results"], "the card has latency rows"


def test_model_card_md_is_rendered_from_the_json(card):
    render = _script("card_render")
    assert (REPO / "MODEL_CARD.md").read_text() == render.render_card(card)
    assert (REPO / "benchmarks" / "results" / "model_card.md").read_text() == render.render_results(card)


def test_tflite_accuracy_regenerates(card, fer2013_csv):
    """The default model's PrivateTest accuracy, recomputed now by the card's scorer (fer_edge.evaluation)."""
    from fer_edge.data import load_dataset
    from fer_edge.evaluation import evaluate
    from fer_edge.runtime import load

    met = evaluate(load(shipped_bundles()["tflite"]), load_dataset(fer2013_csv, "fer2013"), {"split": "test"})
    want = card["models"]["tflite-int8"]["results"]["fer2013_privatetest"]
    assert abs(met["accuracy"] - want["accuracy"]) <= TOL
    assert abs(met["macro_f1"] - want["macro_f1"]) <= TOL


@pytest.mark.slow
def test_every_card_accuracy_regenerates(card, fer2013_csv, ckplus_dir, jaffe_dir, peer_dir):
    """All models x all evaluation sets (no latency), against the committed JSON."""
    float_run = REPO / card["training"]["run"]
    if not (float_run / "manifest.json").is_file():
        pytest.skip(f"{float_run} (the float source model, not committed) is not here")
    mc = _script("model_card")
    fresh = mc.build(float_run, runs=1, bench=False, say=lambda m: None)
    for key, row in card["models"].items():
        for set_name, want in row["results"].items():
            got = fresh["models"][key]["results"][set_name]
            assert abs(got["accuracy"] - want["accuracy"]) <= TOL, (key, set_name)
            assert abs(got["macro_f1"] - want["macro_f1"]) <= TOL, (key, set_name)
