"""One evaluation (fer_edge.evaluation): the label mapping and selection on a classifier whose answers
are known, and one score for one model whichever stage asks: `fer-edge eval` on a Keras run, a
TFLite and an ONNX bundle, convert's retention and bench agree on the run's own test selector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bundle import InputSpec
from fer_edge.data import FaceDataset
from fer_edge.evaluation import evaluate, select_faces


class TableClassifier:
    """Answers the class named in each face's first pixel: no model, every expectation exact."""

    def __init__(self, labels):
        self.labels, self.tta = list(labels), "none"
        self.input_spec = InputSpec.from_dict({"size": [4, 4], "color": "gray", "scale": 1.0, "offset": [0.0]})

    def with_tta(self, tta):
        raise AssertionError("no tta asked")

    def predict_proba(self, faces, batch_size=64):
        out = np.zeros((len(faces), len(self.labels)), np.float32)
        out[np.arange(len(faces)), faces[:, 0, 0]] = 1.0
        return out


def _faces(truth, answers, label_names, splits=None):
    images = np.zeros((len(truth), 4, 4), np.uint8)
    images[:, 0, 0] = answers
    n = len(truth)
    return FaceDataset("toy", images, np.asarray(truth, np.int64), tuple(label_names),
                       np.asarray(splits or ["PrivateTest"] * n), np.array([f"row {i}" for i in range(n)]),
                       roles={"test": "PrivateTest", "train": "Training"})


def test_label_orders_unknown_classes_and_missing_labels():
    # Model order (happy, sad, neutral); the dataset's (sad, contempt, happy) lacks neutral and has a
    # class the model cannot name. Rows: (true, model answer index).
    clf = TableClassifier(["happy", "sad", "neutral"])
    truth = [0, 0, 2, 2, 1, -1, 2]  # sad, sad, happy, happy, contempt, no hard label, happy
    answers = [1, 0, 0, 2, 0, 0, 0]  # sad, happy, happy, neutral, happy, happy, happy
    m = evaluate(clf, _faces(truth, answers, ("sad", "contempt", "happy")))
    assert m["n"] == 5  # contempt and the -1 row are not scored
    assert m["dropped_labels"] == ["contempt"]
    assert m["accuracy"] == pytest.approx(3 / 5)  # sad->sad, happy->happy twice
    assert m["labels"] == ["sad", "happy", "neutral"]  # dataset order, then the model-only class
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [0, 0, 0]]
    assert m["per_class"]["happy"]["recall"] == pytest.approx(2 / 3)
    assert m["model_labels"] == ["happy", "sad", "neutral"]


def test_roles_use_the_provenance_subset_and_selector():
    truth = [0, 1] * 10
    ds = _faces(truth, truth, ("happy", "sad"), splits=["PrivateTest"] * 12 + ["Training"] * 8)
    prov = {"subset": {"holdout": {"fraction": 0.5, "seed": 0, "part": "holdout"}}, "test": {"split": "test"}}
    picked = select_faces(ds, "test", prov)
    assert 0 < len(picked) < 12 and set(picked.splits) == {"PrivateTest"}
    m = evaluate(TableClassifier(["happy", "sad"]), ds, "test", provenance=prov)
    assert m["n"] == len(picked) and m["accuracy"] == 1.0
    assert evaluate(TableClassifier(["happy", "sad"]), ds)["n"] == 20
    assert len(select_faces(ds, None, limit=7)) == 7


# ---------------------------------------------------------------- one model, every stage


@pytest.fixture(scope="module")
def run_and_artifacts(small_run, tmp_path_factory):
    """The convert tests' small trained Keras run, converted to int8 TFLite and float ONNX (each
    scored by convert's retention)."""
    from fer_edge.export.pipeline import convert

    run = small_run
    out = tmp_path_factory.mktemp("eval-artifacts")
    arts, ref = {}, None
    for fmt, precision in (("tflite", "int8"), ("onnx", "fp32")):
        report = convert(run, fmt=fmt, precision=precision, calib_size=100, out=out, reference=ref)
        (art,), ref = report.artifacts, report.float_reference
        assert art.status == "ok", art.error
        arts[fmt] = art
    return run, arts


def _eval_json(model, data, *options) -> dict:
    from fer_edge.cli.main import main as cli

    res = CliRunner().invoke(cli, ["eval", str(model), "--data", str(data), "--json", *options])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout[res.stdout.index("{"):])


def test_eval_retention_and_bench_agree(run_and_artifacts, fer2013_csv):
    from convert_helpers import TEST_SELECTOR
    from fer_edge.bench.core import BenchOptions, run_bench
    from fer_edge.data import load_dataset, select

    run, arts = run_and_artifacts
    n = len(select(load_dataset(fer2013_csv, "fer2013"), TEST_SELECTOR))  # the run's test selector, by hand
    keras_run = _eval_json(run, fer2013_csv)
    assert keras_run["n"] == n and keras_run["selection"] == TEST_SELECTOR
    for fmt, art in arts.items():
        ret = art.retention
        assert ret["n"] == n and ret["test_selector"] == TEST_SELECTOR
        assert keras_run["accuracy"] == pytest.approx(ret["reference_accuracy"], abs=1e-12), fmt
        got = _eval_json(art.path, fer2013_csv)
        assert (got["n"], got["accuracy"], got["macro_f1"]) == pytest.approx(
            (n, ret["accuracy"], ret["macro_f1"]), abs=1e-12), fmt
    (row,) = run_bench([str(arts["tflite"].path)], BenchOptions(threads=1, warmup=1, runs=3, batch=4)).results
    assert row.status == "ok", row.error
    assert (row.eval_n, row.accuracy) == pytest.approx((n, arts["tflite"].retention["accuracy"]), abs=1e-12)
    # int8 really differs from float somewhere, so the equalities above compare different models
    assert np.abs(np.array(arts["tflite"].retention["confusion_matrix"])
                  - np.array(arts["onnx"].retention["confusion_matrix"])).sum() > 0


def test_convert_returns_the_float_reference_and_reuses_only_a_matching_one(run_and_artifacts, tmp_path, monkeypatch):
    import dataclasses

    from fer_edge.errors import ConfigError
    from fer_edge.export import retention
    from fer_edge.export.pipeline import convert

    run, _ = run_and_artifacts
    first = convert(run, fmt="onnx", precision="fp32", out=tmp_path / "a", workdir=tmp_path / "work")
    ref = first.float_reference
    assert ref is not None and (ref.metrics["accuracy"], ref.metrics["n"]) == (first.reference["accuracy"], first.reference["n"])
    assert "float_reference" not in first.to_dict()
    monkeypatch.setattr(retention.Reference, "from_keras", classmethod(lambda *a: pytest.fail("float model re-scored")))
    again = convert(run, fmt="onnx", precision="fp32", out=tmp_path / "b", workdir=tmp_path / "work", reference=ref)
    assert again.float_reference is ref
    assert again.artifacts[0].retention["accuracy"] == first.artifacts[0].retention["accuracy"]
    other_test = dataclasses.replace(ref, data={**ref.data, "test": {"split": "val"}})
    with pytest.raises(ConfigError, match="another model or test data"):
        convert(run, fmt="onnx", precision="fp32", out=tmp_path / "c", reference=other_test)
    assert not (tmp_path / "c").exists()


def test_eval_of_a_converted_bundle_on_another_dataset(run_and_artifacts, ckplus_dir, tmp_path):
    """Any format on a dataset it was not trained on: labels the model lacks are left out and said so."""
    _, arts = run_and_artifacts
    from fer_edge.cli.main import main as cli

    res = CliRunner().invoke(cli, ["eval", str(arts["tflite"].path), "--data", str(ckplus_dir), "--json",
                                   "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout[res.stdout.index("{"):])
    assert s["dropped_labels"] == ["contempt"] and s["selection"] == "all" and s["n"] > 800
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "no t-SNE plot" in report and (tmp_path / "ev" / "plots" / "confusion_test.png").stat().st_size > 1000


# ---------------------------------------------------------------- plain-file options, --tta

SHIPPED_TFLITE = Path(__file__).resolve().parents[1] / "fer_edge" / "assets" / "models" / "tflite-int8"


@pytest.mark.parametrize("option", [["--labels", "fer7"], ["--input-norm", "unit"], ["--color", "gray"],
                                    ["--interpolation", "area"]])
def test_eval_refuses_plain_file_options_for_a_bundle(option, tmp_path):
    """A bundle's manifest states its labels and preprocessing: an option that would describe them
    is refused by name, before any data is read, rather than ignored."""
    from fer_edge.cli.main import main as cli

    res = CliRunner().invoke(cli, ["eval", str(SHIPPED_TFLITE), "--data", str(tmp_path / "none.csv"), *option])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and len(res.stderr.strip().splitlines()) == 1
    assert option[0] in res.stderr and "manifest.json" in res.stderr


def test_eval_applies_plain_file_options(tmp_path, small_fer_csv):
    from convert_helpers import build_small_cnn
    from fer_edge.training.evaluation_cmd import evaluate_model

    path = tmp_path / "three.keras"
    build_small_cnn(k=3).save(path)
    res = evaluate_model(path, small_fer_csv, labels="happy,sad,neutral", input_norm="unit", interpolation="bilinear")
    assert res["input"]["scale"] == pytest.approx(1 / 255) and res["input"]["interpolation"] == "bilinear"
    assert res["input"]["color"] == "gray"  # from the model's one input channel
    m = res["test"]
    assert m["model_labels"] == ["happy", "sad", "neutral"] and set(m["dropped_labels"]) == {"angry", "disgust", "fear", "surprise"}
    from fer_edge.data import load_dataset, select

    test = select(load_dataset(small_fer_csv), {"split": "test"})
    assert m["n"] == int(np.isin(test.labels, [test.label_names.index(n) for n in ("happy", "sad", "neutral")]).sum())


def test_eval_tta_overrides_the_bundle_views(small_fer_csv):
    from fer_edge.data import load_dataset
    from fer_edge.runtime import load

    flip = _eval_json(SHIPPED_TFLITE, small_fer_csv, "--tta", "flip")
    assert flip["tta"] == "flip" and flip["selection"] == {"split": "test"}
    clf = load(SHIPPED_TFLITE)
    assert clf.tta == "none"
    want = evaluate(clf, load_dataset(small_fer_csv), {"split": "test"}, tta="flip")
    assert (flip["n"], flip["accuracy"], flip["macro_f1"]) == (want["n"], want["accuracy"], want["macro_f1"])
    assert _eval_json(SHIPPED_TFLITE, small_fer_csv)["tta"] == "none"


def test_eval_text_names_its_selection_and_the_classes_left_out(ckplus_dir):
    from fer_edge import shipped
    from fer_edge.cli.main import main

    bundle = str(shipped.shipped_bundle())
    res = CliRunner().invoke(main, ["eval", bundle, "--data", str(ckplus_dir)])
    assert res.exit_code == 0, res.output
    # CK+'s contempt is not a FER2013 class: its faces are left out, and the line says so
    assert f"{bundle} on {ckplus_dir} [all]: accuracy " in res.stdout
    assert res.stdout.rstrip().endswith("; left out: contempt (not among the model's labels)")
    res = CliRunner().invoke(main, ["eval", bundle, "--data", str(ckplus_dir), "--json"])
    doc = json.loads(res.stdout)
    assert doc["dropped_labels"] == ["contempt"] and doc["n"] == 927
