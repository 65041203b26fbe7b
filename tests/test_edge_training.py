"""The edge-model training levers (issue 13): a bfloat16 plain-CNN run exports float32/int8
artifacts that predict like its float model; random crops, erasing and test-time views do
what they say; FER+ votes and teachers become soft targets without leaking test faces.

Runs train on ~300 real FER2013 rows (``small_fer_csv``), one epoch each: seconds, not minutes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_edge.bundle import InputSpec, read_bundle
from fer_edge.errors import ConfigError, DataError, ModelError
from fer_edge.training.recipes import load_recipe, with_overrides


def _quick(name: str = "edge_plain44", **train_changes):
    r = with_overrides(load_recipe(name), epochs=1, batch_size=32)
    r.data["report"] = {"tsne_samples": 60}
    r.data["train"].update(train_changes)
    return r


@pytest.fixture(scope="module")
def bf16_run(small_fer_csv, tmp_path_factory) -> Path:
    from fer_edge.training.trainer import train

    out = tmp_path_factory.mktemp("edge") / "plain44"
    train(_quick(), small_fer_csv, out, log=lambda s: None)
    return out


@pytest.fixture(scope="module")
def bf16_tflite(bf16_run) -> dict[str, Path]:
    from fer_edge.export.pipeline import convert

    work = bf16_run.parent / "work"
    for precision in ("fp32", "int8"):
        convert(bf16_run, "tflite", precision, evaluate=False, workdir=work)
    return {p: bf16_run / "export" / f"tflite-{p}" for p in ("fp32", "int8")}


def _test_faces(small_fer_csv):
    from fer_edge.data.fer2013 import read_fer2013

    ds = read_fer2013(small_fer_csv)
    return ds.images[ds.splits == "PrivateTest"]


# ---------------------------------------------------------------- bf16 training -> float32 artifacts


def test_bf16_run_saves_a_float32_model(bf16_run):
    import keras

    b = read_bundle(bf16_run)
    assert b.manifest.metrics["precision"] == "mixed_bfloat16"
    assert b.manifest.input.crop == (44, 44) and b.manifest.input.shape == (44, 44, 1)
    assert keras.mixed_precision.global_policy().name == "float32"  # training restored the policy
    model = keras.models.load_model(bf16_run / "model.keras", compile=False)
    policies = {layer.dtype_policy.name for layer in model.layers}
    assert policies == {"float32"}, policies
    hist = (bf16_run / "history.csv").read_text()
    assert "images_per_second" in hist.splitlines()[0]
    metrics = json.loads((bf16_run / "metrics.json").read_text())
    assert set(metrics["tta"]) == {"none", "flip", "ten_crop"}
    assert metrics["tta"]["none"]["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_bf16_run_exports_artifacts_that_match_the_float_model(bf16_run, bf16_tflite, small_fer_csv):
    import keras

    from fer_edge.runtime import load

    faces = _test_faces(small_fer_csv)
    model = keras.models.load_model(bf16_run / "model.keras", compile=False)
    spec = read_bundle(bf16_run).manifest.input
    ref = np.asarray(model(spec.preprocess(faces), training=False))
    fp32 = load(bf16_tflite["fp32"], threads=1).predict_proba(faces)
    assert np.abs(fp32 - ref).max() < 1e-4
    int8 = load(bf16_tflite["int8"], threads=1)
    assert int8.manifest.input.crop == (44, 44)
    q = int8.predict_proba(faces)
    assert (q.argmax(1) == ref.argmax(1)).mean() >= 0.9
    assert np.abs(q - ref).mean() < 0.05


# ---------------------------------------------------------------- test-time augmentation


def _manual_views(resized: np.ndarray, h: int, w: int, mode: str) -> list[np.ndarray]:
    H, W = resized.shape[1:3]
    t, c = (H - h) // 2, (W - w) // 2
    crops = [resized[:, t : t + h, c : c + w]]
    if mode == "ten_crop":
        crops += [resized[:, :h, :w], resized[:, :h, W - w :], resized[:, H - h :, :w], resized[:, H - h :, W - w :]]
    return crops + [np.flip(v, axis=2) for v in crops]


@pytest.mark.parametrize("mode", ["flip", "ten_crop"])
def test_runtime_tta_equals_a_manual_average(bf16_tflite, small_fer_csv, mode):
    from fer_edge.runtime import load

    faces = _test_faces(small_fer_csv)[:12]
    clf = load(bf16_tflite["fp32"], threads=1, tta=mode)
    assert clf.tta == mode and clf.info()["tta"] == mode
    resized = faces.astype(np.float32)[..., None]  # FER2013 faces are 48x48 already: resize is a no-op
    views = _manual_views(resized, 44, 44, mode)
    assert len(views) == {"flip": 2, "ten_crop": 10}[mode]
    want = np.mean([clf.run(np.ascontiguousarray(v)) for v in views], axis=0)
    got = clf.predict_proba(faces)
    np.testing.assert_allclose(got, want, atol=1e-5)
    centre = load(bf16_tflite["fp32"], threads=1).predict_proba(faces)
    assert np.abs(got - centre).max() > 1e-6  # the views were really averaged
    one = clf.predict(faces[0])
    np.testing.assert_allclose([one.scores[n] for n in clf.labels], want[0], atol=1e-5)


def test_flip_views_of_a_bundle_without_a_crop_are_normalized_once(tmp_path):
    # Regression: without a crop the centre view was the resized batch itself and the mirror a
    # view of it, so in-place normalization scaled the mirror twice (a peer's x/127.5 - 1 input).
    from fer_edge.bundle import Bundle, Manifest
    from fer_edge.runtime.classifier import Classifier

    class Backend:
        input_dtype = np.dtype(np.float32)

    spec = InputSpec.from_dict({"size": [8, 8], "scale": 2 / 255, "offset": [1.0]})
    m = Manifest(name="m", format="tflite", precision="fp32", model_file="model.tflite", labels=["a", "b"], input=spec)
    clf = Classifier(Bundle(tmp_path, m), Backend(), "litert", tta="flip")
    faces = np.random.default_rng(0).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    centre, mirror = clf.views(faces)
    want = spec.preprocess(faces)
    np.testing.assert_allclose(centre, want, atol=1e-6)
    np.testing.assert_allclose(mirror, want[:, :, ::-1], atol=1e-6)


def test_tta_and_crop_are_validated():
    with pytest.raises(ModelError, match="ten_crop"):
        InputSpec.from_dict({"size": [48, 48], "tta": "ten_crop"})
    with pytest.raises(ModelError, match="tta"):
        InputSpec.from_dict({"size": [48, 48], "crop": [44, 44], "tta": "five"})
    with pytest.raises(ModelError, match="crop"):
        InputSpec.from_dict({"size": [48, 48], "crop": [50, 44]})
    spec = InputSpec.from_dict({"size": [48, 48], "crop": [44, 44], "tta": "flip"})
    assert InputSpec.from_dict(spec.to_dict()) == spec
    img = np.arange(48 * 48, dtype=np.uint8).reshape(1, 48, 48)
    np.testing.assert_array_equal(spec.preprocess(img)[0, ..., 0], img[0, 2:46, 2:46])


# ---------------------------------------------------------------- augmentation


def test_crop_and_erasing_augmentation():
    import tensorflow as tf

    from fer_edge.training.augment import build_augmenter

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 48, 48, 1)).astype(np.float32)
    centre = build_augmenter({}, 0, (44, 44))(tf.constant(x)).numpy()
    np.testing.assert_array_equal(centre, x[:, 2:46, 2:46])
    rand = build_augmenter({"random_crop": True}, 0, (44, 44))(tf.constant(x)).numpy()
    offsets = set()
    for i in range(len(x)):  # each output is an exact 44x44 window of its input
        hits = [(t, c) for t in range(5) for c in range(5) if np.array_equal(rand[i], x[i, t : t + 44, c : c + 44])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 3
    erased = build_augmenter({"erasing": 1.0}, 0, None)(tf.constant(x)).numpy()
    changed = (erased != x)[..., 0]
    assert changed.any(axis=(1, 2)).all()
    for m in changed:  # one rectangle per image, 2-25% of its area
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        assert 0.02 * 48 * 48 * 0.5 <= box <= 0.25 * 48 * 48 * 1.5
    with pytest.raises(ConfigError, match="random_crop needs"):
        build_augmenter({"random_crop": True}, 0, None)
    with pytest.raises(ConfigError, match="erasing"):
        build_augmenter({"erasing": 2.0}, 0, None)


def test_bad_precision_is_rejected(small_fer_csv, tmp_path):
    from fer_edge.training.trainer import train

    with pytest.raises(ConfigError, match="precision"):
        train(_quick(precision="bfloat16"), small_fer_csv, tmp_path / "run", log=lambda s: None)


# ---------------------------------------------------------------- soft targets


def test_ferplus_votes_never_come_from_test_rows(ferplus_csv):
    from fer_edge.training.soft_targets import ferplus_distribution

    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    dist, mask = ferplus_distribution(ferplus_csv, np.array([0, 1, 2]), labels, csv_rows=35887)
    assert mask.sum() >= 2
    np.testing.assert_allclose(dist[mask].sum(1), 1.0, atol=1e-6)
    with pytest.raises(DataError, match="not Training rows"):
        ferplus_distribution(ferplus_csv, np.array([0, 28709]), labels, csv_rows=35887)  # 28709: first PublicTest row
    with pytest.raises(DataError, match="aligned with the full"):
        ferplus_distribution(ferplus_csv, np.array([0]), labels, csv_rows=300)


def test_distilled_run_records_its_teachers(bf16_run, small_fer_csv, tmp_path):
    from fer_edge.bundle import sha256_file
    from fer_edge.training.trainer import train

    # the student's own seed differs from the teacher's, so the recorded seed must be the teacher's
    r = with_overrides(load_recipe("edge_plain44"), epochs=1, batch_size=32, teachers=[str(bf16_run)], seed=7)
    r.data["report"] = {"tsne_samples": 60}
    out = tmp_path / "student"
    train(r, small_fer_csv, out, log=lambda s: None)
    m = read_bundle(out).manifest
    distill = m.provenance["soft_targets"]["distill"]
    assert distill["weight"] == 0.5 and distill["temperature"] == 2.0
    (teacher,) = distill["teachers"]
    assert teacher["path"] == str(bf16_run.resolve())
    assert teacher["model_sha256"] == sha256_file(bf16_run / "model.keras")
    assert teacher["recipe"] == "edge_plain44"
    seed = read_bundle(bf16_run).manifest.provenance["seed"]
    assert seed != 7 and teacher["seed"] == seed  # two teachers of one recipe differ by their seed
    assert m.provenance["recipe_data"]["overrides"]["teachers"] == [str(bf16_run)]
    ens = json.loads((out / "metrics.json").read_text())["teacher_ensemble"]
    # One teacher: its "ensemble" is the teacher itself, averaged over the same (flip) views
    own = json.loads((bf16_run / "metrics.json").read_text())["tta"]["flip"]
    for split in ("val", "test"):
        assert ens[split]["accuracy"] == pytest.approx(own[split]["accuracy"])


def test_teacher_probabilities_are_kept_for_a_resume(bf16_run, monkeypatch, tmp_path):
    # A resumed distillation run reads the teachers' probabilities from its checkpoints instead of
    # predicting again; a changed face set (or teacher, or views) is a new key, never a stale hit.
    from types import SimpleNamespace

    from fer_edge.training import soft_targets

    m = json.loads((bf16_run / "manifest.json").read_text())
    sel, labels = m["provenance"]["data"], m["labels"]
    faces = SimpleNamespace(images=np.random.default_rng(0).integers(0, 256, (24, 48, 48), dtype=np.uint8))
    lines: list[str] = []
    fresh, _ = soft_targets.teacher_distribution([str(bf16_run)], faces, sel, labels, 2.0, "flip", lines.append,
                                                 cache=tmp_path)
    (kept,) = tmp_path.glob("teacher-*-flip-*.npy")

    def no_prediction(*a, **k):
        raise AssertionError("predicted again although the probabilities were kept")

    monkeypatch.setattr(soft_targets, "_teacher_classifier", no_prediction)
    again, records = soft_targets.teacher_distribution([str(bf16_run)], faces, sel, labels, 2.0, "flip",
                                                       lines.append, cache=tmp_path)
    np.testing.assert_array_equal(again, fresh)
    assert any(f"read from {kept}" in line for line in lines)
    other = SimpleNamespace(images=faces.images[::-1].copy())
    with pytest.raises(AssertionError, match="predicted again"):
        soft_targets.teacher_distribution([str(bf16_run)], other, sel, labels, 2.0, "flip", lines.append,
                                          cache=tmp_path)


def test_a_teacher_from_another_split_is_refused(bf16_run, small_fer_csv, tmp_path):
    from fer_edge.training.trainer import train

    r = with_overrides(load_recipe("edge_plain44"), epochs=1, batch_size=32, teachers=[str(bf16_run)])
    r.data["data"]["protocols"]["official"]["train"] = {"split": "val"}
    with pytest.raises(ConfigError, match="share the student's split"):
        train(r, small_fer_csv, tmp_path / "student", log=lambda s: None)
    assert not (tmp_path / "student").exists()  # refused before writing: no empty run folder left behind


def test_a_refused_run_keeps_a_folder_it_did_not_create(small_fer_csv, tmp_path):
    from fer_edge.training.trainer import train

    r = with_overrides(load_recipe("edge_plain44"), epochs=1, batch_size=32, teachers=[str(tmp_path / "nope")])
    (tmp_path / "mine").mkdir()  # the user's own (empty) folder stays
    with pytest.raises(ConfigError, match="teacher is not a finished training run"):
        train(r, small_fer_csv, tmp_path / "mine", log=lambda s: None, resume=True)
    assert (tmp_path / "mine").is_dir()


def test_distill_defaults_match_the_schema():
    # Regression: a [distill] table without a weight trained silently without its teachers
    # (weight 0.0 here, 0.5 in the recipe schema and for --teacher).
    from fer_edge.training.recipe_schema import Distill
    from fer_edge.training.soft_targets import weights

    assert weights({"distill": {"teachers": ["runs/t"]}}) == (0.0, Distill().weight)
    assert weights({}) == (0.0, 0.0)
    # a distillation recipe (edge_plain44_kd) run without --teacher must not train a plain model
    with pytest.raises(ConfigError, match="names no teacher: pass --teacher RUN"):
        weights({"name": "kd", "distill": {"teachers": [], "tta": "ten_crop"}})


def test_a_teacher_without_a_crop_cannot_give_ten_crops(tmp_path):
    from fer_edge.training.soft_targets import teacher_distribution

    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    sel = {"train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}}
    (tmp_path / "manifest.json").write_text(json.dumps({
        "format": "keras", "model_file": "model.keras", "labels": labels,
        "input": InputSpec(size=(48, 48)).to_dict(), "provenance": {"data": sel}}))
    with pytest.raises(ConfigError, match=r"\[distill\] tta 'ten_crop'") as info:
        teacher_distribution([str(tmp_path)], None, sel, labels, 2.0, "ten_crop", lambda s: None)
    assert str(tmp_path) in str(info.value)


def test_float32_model_converts_nested_models():
    # A backbone is often a nested model: every layer of it, and the layers without a dtype in
    # their config (inputs, the nested model itself), must come back float32.
    import keras

    from fer_edge.training.evaluate import float32_model

    def walk(model):
        for layer in model.layers:
            yield layer
            if isinstance(layer, keras.Model):
                yield from walk(layer)

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inner_in = keras.Input((8, 8, 4))
        inner = keras.Model(inner_in, keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inner_in)))
        inp = keras.Input((10, 10, 1))
        x = keras.layers.GlobalAveragePooling2D()(inner(keras.layers.Conv2D(4, 3)(inp)))
        mixed = keras.Model(inp, keras.layers.Dense(3, dtype="float32")(x))
        plain = float32_model(mixed)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # the caller's policy stays
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {layer.dtype_policy.name for layer in walk(plain)} == {"float32"}
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in walk(mixed)}
    for a, b in zip(plain.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- typed recipes


@pytest.mark.parametrize("table, key, value, message", [
    ("train", "epochz", 3, "unknown key train.epochz"),
    ("augment", "erase", 0.5, "unknown key augment.erase"),
    ("input", "crop", [50], "input.crop"),
    ("input", "crop", [50, 44], "crop \\[50, 44\\] must fit inside size"),
    ("train", "precision", "bf16", "train.precision"),
])
def test_recipe_typos_are_rejected(tmp_path, table, key, value, message):
    from fer_edge.compat import tomllib
    from fer_edge.training.recipes import load_recipe

    data = load_recipe("edge_plain44").data
    data[table][key] = value
    path = tmp_path / "typo.toml"
    path.write_text(_toml(data))
    assert tomllib.loads(path.read_text())[table][key] == value
    with pytest.raises(ConfigError, match=message) as info:
        load_recipe(path)
    assert str(path.resolve()) in str(info.value)


def _toml(data: dict, prefix: str = "") -> str:
    """A minimal TOML writer for recipe dicts (tables, arrays of tables, scalars, lists)."""
    scalars, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            tables.append((k, v))
        else:
            scalars.append(f"{k} = {json.dumps(v)}")
    out = "\n".join(scalars) + "\n"
    for k, v in tables:
        name = f"{prefix}{k}"
        if isinstance(v, list):
            for item in v:
                out += f"\n[[{name}]]\n" + _toml(item, f"{name}.")
        else:
            out += f"\n[{name}]\n" + _toml(v, f"{name}.")
    return out


# ---------------------------------------------------------------- one inference path: Keras runs through the runtime


def test_the_runtime_runs_a_keras_run_like_its_model(bf16_run, small_fer_csv):
    import keras

    from fer_edge.runtime import load

    faces = _test_faces(small_fer_csv)[:20]
    clf = load(bf16_run, threads=1)
    assert clf.backend_name == "keras" and clf.info()["format"] == "keras"
    model = keras.models.load_model(bf16_run / "model.keras", compile=False)
    want = np.asarray(model(clf.input_spec.preprocess(faces), training=False))
    np.testing.assert_allclose(clf.predict_proba(faces), want, atol=1e-5)
    flip = load(bf16_run, threads=1, tta="flip").predict_proba(faces)
    views = clf.views(faces)
    assert len(views) == 1
    mirrored = np.asarray(model(np.ascontiguousarray(views[0][:, :, ::-1]), training=False))
    np.testing.assert_allclose(flip, (want + mirrored) / 2, atol=1e-5)
    with pytest.raises(ConfigError, match="device applies to the keras backend only"):
        load(bf16_run, backend="litert", device="gpu")
    with pytest.raises(ConfigError, match="device must be 'cpu' or 'gpu'"):
        load(bf16_run, device="tpu")


def test_bench_measures_tta_rows(bf16_tflite):
    from fer_edge.bench.core import BenchOptions, run_bench

    opts = BenchOptions(threads=1, warmup=2, runs=10, batch=4, limit=40, tta="ten_crop")
    (row,) = run_bench([str(bf16_tflite["fp32"])], opts).results
    assert row.status == "ok", row.error
    assert "test-time augmentation: ten_crop" in row.notes
    # the row's accuracy is the ten-crop average's on the bench's own faces (not one view's):
    # a structural check; how much slower ten views are is measured by benchmarks/bench_cpu.py
    from fer_edge.bench.evalset import eval_faces
    from fer_edge.bundle import read_bundle
    from fer_edge.evaluation import evaluate
    from fer_edge.runtime import load as load_classifier

    bundle = str(bf16_tflite["fp32"])
    faces, _ = eval_faces(read_bundle(bundle).manifest, None, 40)
    ten = evaluate(load_classifier(bundle, threads=1, tta="ten_crop"), faces)
    assert row.eval_n == ten["n"] == len(faces)
    assert row.accuracy == pytest.approx(ten["accuracy"])
    with pytest.raises(ConfigError, match="--tta"):
        BenchOptions(devices=("rpi",), host="pi@example", tta="flip").check()


def test_predict_cli_tta(bf16_tflite, tmp_path):
    import cv2
    from click.testing import CliRunner

    from fer_edge.cli import main

    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8))
    ok = CliRunner().invoke(main, ["predict", str(face), "--whole-image", "--model", str(bf16_tflite["fp32"]),
                                   "--tta", "ten_crop", "--json"])
    assert ok.exit_code == 0, ok.output
    (img,) = json.loads(ok.output[ok.output.index("{"):])["images"]
    assert len(img["faces"]) == 1
    # A bundle without a crop has no ten crops: one clear line. (The same model, declared as a
    # whole 44x44 input: only the manifest changes, and it is not among the hashed files.)
    whole = tmp_path / "no-crop"
    shutil.copytree(bf16_tflite["fp32"], whole)
    data = json.loads((whole / "manifest.json").read_text())
    data["input"].update(size=[44, 44], crop=None, tta="none")
    (whole / "manifest.json").write_text(json.dumps(data))
    bad = CliRunner().invoke(main, ["predict", str(face), "--whole-image", "--model", str(whole), "--tta", "ten_crop"])
    assert bad.exit_code != 0 and "cannot use tta 'ten_crop'" in bad.output
    assert len(bad.output.strip().splitlines()) == 1, bad.output
