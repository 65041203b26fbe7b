"""`fer-edge predict` on real JAFFE / CK+48 / FER2013 images, plus unreadable files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from fer_edge.cli.main import main
from fer_edge.errors import DataError
from fer_edge.face import create_detector
from fer_edge.labels import FER7
from fer_edge.live import predict_paths
from test_live_support import background


@pytest.fixture
def image_dir(tmp_path, jaffe_dir, ckplus_dir, face_weights) -> Path:
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    for name in ("KA.HA1.29.tiff", "YM.AN1.61.tiff"):
        shutil.copyfile(jaffe_dir / name, d / name)
    ck = sorted((ckplus_dir / "happy").glob("*.png"))[0]
    shutil.copyfile(ck, d / "sub" / ck.name)
    cv2.imwrite(str(d / "empty_scene.png"), cv2.cvtColor(background(), cv2.COLOR_RGB2BGR))
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (d / "notes.txt").write_text("not an image, not even looked at")
    return d


def test_predict_finds_faces_labels_and_skips_unreadable(peer_classifier, image_dir, tmp_path):
    det = create_detector("yunet")
    report = predict_paths([image_dir], peer_classifier, det, annotate_dir=tmp_path / "ann")
    by_name = {Path(r.path).name: r for r in report.images}
    assert sorted(by_name) == sorted(["KA.HA1.29.tiff", "YM.AN1.61.tiff", "empty_scene.png",
                                      next((image_dir / "sub").iterdir()).name])
    assert report.skipped == [(str(image_dir / "broken.jpg"),
                               "not a readable image (corrupt, truncated or unsupported format)")]
    assert by_name["empty_scene.png"].faces == []
    for name, r in by_name.items():
        if name == "empty_scene.png":
            continue
        assert len(r.faces) == 1, name
        f = r.faces[0]
        assert f["label"] in FER7 and list(f["scores"]) == list(FER7)
        assert sum(f["scores"].values()) == pytest.approx(1.0, abs=2e-3)
        assert 0.6 < f["detector_score"] <= 1
    assert by_name["KA.HA1.29.tiff"].faces[0]["label"] == "happy"
    assert by_name["KA.HA1.29.tiff"].size == (256, 256)
    # Annotated copies mirror the input tree, same size, and differ from the original (boxes drawn).
    assert len(report.annotated) == 4
    ann = tmp_path / "ann" / "KA.HA1.29.tiff"
    assert ann.is_file() and (tmp_path / "ann" / "sub").is_dir()
    a, o = cv2.imread(str(ann)), cv2.imread(str(image_dir / "KA.HA1.29.tiff"))
    assert a.shape == o.shape and (a != o).any()
    counts = report.to_json()["counts"]
    assert counts == {"images": 4, "faces": 3, "skipped": 1, "without_faces": 1}


def test_whole_image_mode_on_fer2013_crops(peer_classifier, fer2013_test_images):
    files = sorted((fer2013_test_images / "happy").glob("*.jpg"))[:60]
    report = predict_paths(files, peer_classifier, None, whole_image=True)
    labels = [r.faces[0]["label"] for r in report.images]
    assert len(labels) == 60 and all(r.faces[0]["box"] == [0.0, 0.0, 48.0, 48.0] for r in report.images)
    assert labels.count("happy") >= 40  # the peer model is a real FER2013 classifier


def test_cli_predict_json_and_text(peer_bundle, image_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["predict", str(image_dir / "KA.HA1.29.tiff"), str(image_dir / "broken.jpg"),
                               "--model", str(peer_bundle), "--json", "--threads", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["counts"] == {"images": 1, "faces": 1, "skipped": 1, "without_faces": 0}
    assert doc["images"][0]["faces"][0]["label"] == "happy"
    assert "skipped" in res.stderr and "broken.jpg" in res.stderr
    res = runner.invoke(main, ["predict", str(image_dir), "--model", str(peer_bundle)])
    assert res.exit_code == 0, res.output
    assert "KA.HA1.29.tiff: 1 face" in res.stdout and "happy" in res.stdout
    assert "4 images, 3 faces, 1 without a face, 1 skipped" in res.stdout


def test_cli_predict_user_errors(peer_bundle, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    res = runner.invoke(main, ["predict", str(bad), "--model", str(peer_bundle)])
    assert res.exit_code != 0 and "error: none of the 1 files could be read" in res.stderr
    res = runner.invoke(main, ["predict", str(tmp_path / "missing.jpg"), "--model", str(peer_bundle)])
    assert res.exit_code != 0 and "missing.jpg: no such file or folder" in res.stderr
    (tmp_path / "empty").mkdir()
    res = runner.invoke(main, ["predict", str(tmp_path / "empty"), "--model", str(peer_bundle)])
    assert res.exit_code != 0 and "folder holds no images" in res.stderr
    res = runner.invoke(main, ["predict", str(bad), "--model", str(tmp_path)])
    assert res.exit_code != 0 and res.stderr.startswith("error: ") and res.exception.__class__ is SystemExit


def test_collect_images_errors(tmp_path):
    from fer_edge.live.predict import collect_images

    with pytest.raises(DataError, match="no such file"):
        collect_images([tmp_path / "x.png"])
