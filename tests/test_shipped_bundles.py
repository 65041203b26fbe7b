"""The model bundles shipped inside the package: present, intact, runnable, and right on known faces."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fer_edge import shipped
from fer_edge.bundle import MANIFEST, read_bundle, sha256_file
from fer_edge.errors import ConfigError, ModelError
from fer_edge.formats import FORMATS
from fer_edge.labels import FER7

REPO = Path(__file__).resolve().parent.parent
FER_EDGE = [sys.executable, "-m", "fer_edge"]
# Allowed under fer_edge/assets: model files, manifests/retention, docs, the sample photo. No dataset files.
ASSET_SUFFIXES = {".tflite", ".onnx", ".xml", ".bin", ".json", ".md", ".jpg"}
MAX_ASSET_BYTES = 10 * 1024 * 1024
# A FER2013 PrivateTest face (test image re-pack) every shipped format labels happy, with a margin.
KNOWN_HAPPY = ("happy", "PrivateTest_4518933.jpg")
RUNTIME_MODULE = {"tflite": "ai_edge_litert", "onnx": "onnxruntime", "openvino": "openvino"}


def _runnable() -> dict[str, Path]:
    out = {}
    for fmt, folder in shipped.shipped_bundles().items():
        if fmt == "tflite" or importlib.util.find_spec(RUNTIME_MODULE[fmt]) is not None:
            out[fmt] = folder
    return out


def test_tflite_and_onnx_ship():
    have = shipped.shipped_bundles()
    assert "tflite" in have and "onnx" in have, f"shipped formats: {list(have)}"
    assert shipped.shipped_bundle() == shipped.MODELS_DIR / "tflite-int8"
    rows = shipped.describe_shipped()
    assert [r["format"] for r in rows] == list(have)
    for r in rows:
        assert r["precision"] == "int8" and r["labels"] == list(FER7)
        assert 100_000 < r["size_bytes"] < 5_000_000
        assert 0.0 < r["accuracy"] <= 1.0 and r["test_selector"] == {"split": "test"}


@pytest.mark.parametrize("fmt", list(shipped.shipped_bundles()))
def test_manifest_matches_files(fmt):
    folder = shipped.shipped_bundle(fmt)
    bundle = read_bundle(folder, verify=True)  # raises on any sha256 mismatch
    m = bundle.manifest
    assert m.format == fmt and m.precision == "int8" and m.labels == list(FER7)
    assert set(m.files) == {FORMATS[fmt].model_file, *FORMATS[fmt].extra_files}
    for name, digest in m.files.items():
        assert sha256_file(folder / name) == digest
    # The shipped bundles name one float source model and the data they were scored on.
    src = m.provenance["source_model"]
    assert len(src["sha256"]) == 64 and src["format"] == "keras"
    assert m.provenance["data"]["test"] == {"split": "test"}
    extra = {p.name for p in folder.iterdir()} - set(m.files) - {MANIFEST, "retention.json"}
    assert not extra, f"unexpected files in {folder}: {extra}"


def test_all_shipped_bundles_come_from_one_float_model():
    sources = {read_bundle(f).manifest.provenance["source_model"]["sha256"] for f in shipped.shipped_bundles().values()}
    assert len(sources) == 1


def test_assets_hold_no_dataset_files_and_stay_small():
    files = [p for p in shipped.ASSETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    bad = [p for p in files if p.suffix.lower() not in ASSET_SUFFIXES]
    assert not bad, f"unexpected asset files: {bad}"
    assert not [p for p in files if "fer2013" in p.name.lower() or p.suffix.lower() in (".csv", ".gz", ".npz")]
    assert sum(p.stat().st_size for p in files) < MAX_ASSET_BYTES
    for p in files:  # installed for every user: world-readable
        assert p.stat().st_mode & stat.S_IROTH, f"{p} is not world-readable"


@pytest.mark.parametrize("fmt", list(_runnable()))
def test_shipped_bundle_labels_a_known_happy_face(fmt, fer2013_test_images):
    import cv2

    from fer_edge.runtime import load

    label, name = KNOWN_HAPPY
    face = cv2.imread(str(fer2013_test_images / label / name), cv2.IMREAD_GRAYSCALE)
    assert face is not None and face.shape == (48, 48)
    pred = load(shipped.shipped_bundle(fmt)).predict(face)
    assert pred.label == "happy" and pred.score > 0.5, pred


@pytest.mark.parametrize("fmt", list(_runnable()))
def test_shipped_formats_agree_on_test_faces(fmt, fer2013_test_images):
    """Each int8 format matches the tflite one on 60 real test faces (same source model, same calibration)."""
    import cv2

    from fer_edge.runtime import load

    files = sorted((fer2013_test_images / "surprise").glob("PrivateTest_*.jpg"))[:30]
    files += sorted((fer2013_test_images / "sad").glob("PrivateTest_*.jpg"))[:30]
    faces = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])
    ref = load(shipped.shipped_bundle("tflite")).predict_proba(faces).argmax(1)
    got = load(shipped.shipped_bundle(fmt)).predict_proba(faces).argmax(1)
    # Each int8 artifact agrees with the float model on 92-95% of PrivateTest (convert_retention.md), so two
    # of them agree on ~87-90%; a broken conversion lands near chance (~30%).
    assert (ref == got).mean() >= 0.8


def test_sample_photo_is_happy_through_predict_cli(tmp_path):
    """`fer-edge predict` with no --model and no shared/ folder: the shipped model + OpenCV's cascade."""
    env = {**os.environ, "FER_EDGE_SHARED": str(tmp_path), "FER_EDGE_WEIGHTS": str(tmp_path / "w"),
           "FER_EDGE_DATA": str(tmp_path / "d")}
    env.pop("FER_EDGE_MODEL", None)
    proc = subprocess.run([*FER_EDGE, "predict", str(shipped.sample_image()), "--json"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    faces = doc["images"][0]["faces"]
    assert len(faces) == 1 and faces[0]["label"] == "happy", faces


def test_live_default_model_is_the_shipped_tflite(monkeypatch):
    from fer_edge.live import default_bundle

    monkeypatch.delenv("FER_EDGE_MODEL", raising=False)
    assert default_bundle() == shipped.shipped_bundle("tflite")


def test_shipped_provenance_finds_fer2013_under_any_data_root(monkeypatch, tmp_path, fer2013_csv):
    """The shipped manifests name FER2013 relative to the data root, so `bench` and `eval` find a user's copy."""
    from fer_edge.bench.evalset import eval_faces
    from fer_edge.data import names_data
    from fer_edge.errors import DataError

    root = tmp_path / "elsewhere"
    (root / "fer2013").mkdir(parents=True)
    (root / "fer2013" / "fer2013.csv.gz").symlink_to(fer2013_csv)
    monkeypatch.setenv("FER_EDGE_DATA", str(root))
    for folder in shipped.shipped_bundles().values():
        prov = read_bundle(folder).manifest.provenance["data"]
        assert prov["path"] == "$FER_EDGE_DATA/fer2013/fer2013.csv.gz"
        assert names_data(prov, root / "fer2013" / "fer2013.csv.gz")
    faces, what = eval_faces(read_bundle(shipped.shipped_bundle()).manifest, None, limit=20)
    assert len(faces) == 20 and what == "fer2013.csv.gz {'split': 'test'} n=20"
    monkeypatch.setenv("FER_EDGE_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"empty/fer2013/fer2013.csv.gz: evaluation data not found \(pass --data PATH\)"):
        eval_faces(read_bundle(shipped.shipped_bundle()).manifest, None, limit=20)


def test_lookup_errors(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="keras"):
        shipped.bundle_dir("keras")
    monkeypatch.setattr(shipped, "MODELS_DIR", tmp_path)
    with pytest.raises(ModelError, match="--model"):
        shipped.shipped_bundle("onnx")
    assert shipped.shipped_bundles() == {}
    monkeypatch.setattr(shipped, "SAMPLES_DIR", tmp_path)
    with pytest.raises(ModelError, match="no such sample image"):
        shipped.sample_image()


def test_wheel_contains_the_assets(tmp_path):
    """A wheel built from this tree installs the bundles, the sample photo and the live page as package data."""
    src = tmp_path / "src"
    for name in ("fer_edge", "train", "convert", "devices"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path / "whl")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next((tmp_path / "whl").glob("fer_edge-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {f"fer_edge/assets/samples/{n}" for n in ("astronaut.jpg", "README.md")}
    want |= {f"fer_edge/live/web/{n}" for n in ("index.html", "app.js", "style.css")}  # the live --serve page
    want |= {"fer_edge/doctor/checks.py", "fer_edge/doctor/infer.py"}
    for fmt, folder in shipped.shipped_bundles().items():
        m = read_bundle(folder).manifest
        want |= {f"fer_edge/assets/models/{folder.name}/{n}" for n in [*m.files, MANIFEST]}
    assert want <= names, sorted(want - names)


def test_live_runs_with_no_model_and_no_shared_folder(tmp_path):
    """`fer-edge live` on a video of the sample photo, no --model, no shared/: every frame's face is happy."""
    import cv2

    bgr = cv2.imread(str(shipped.sample_image()))  # OpenCV I/O boundary: BGR in, BGR to the writer
    video = tmp_path / "astronaut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (bgr.shape[1], bgr.shape[0]))
    for _ in range(6):
        writer.write(bgr)
    writer.release()
    env = {**os.environ, "FER_EDGE_SHARED": str(tmp_path), "FER_EDGE_WEIGHTS": str(tmp_path / "w")}
    env.pop("FER_EDGE_MODEL", None)
    proc = subprocess.run([*FER_EDGE, "live", "--source", str(video), "--headless", "--frames", "3"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    frames = [d for d in docs if d.get("type") == "frame"]
    labels = [f["label"] for doc in frames for f in doc["faces"]]
    assert len(frames) == 3 and len(labels) == 3 and set(labels) == {"happy"}, proc.stdout[-2000:]
