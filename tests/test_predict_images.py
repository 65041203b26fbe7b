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


def test_cli_predict_hints_whole_image_for_face_crops(peer_bundle, fer2013_test_images, image_dir):
    crops = [str(p) for p in sorted((fer2013_test_images / "happy").glob("*.jpg"))[:10]]
    res = CliRunner().invoke(main, ["predict", *crops, "--model", str(peer_bundle), "--threads", "1", "--json"])
    missed = json.loads(res.stdout)["counts"]["without_faces"]
    assert res.exit_code == 0 and missed > 0, res.output  # the detector misses faces that fill a 48 px image
    assert f"{missed} image(s) of 64 px or less without a detected face" in res.stderr
    assert "add --whole-image" in res.stderr
    res = CliRunner().invoke(main, ["predict", *crops, "--model", str(peer_bundle), "--threads", "1", "--whole-image"])
    assert res.exit_code == 0 and "--whole-image" not in res.stderr
    res = CliRunner().invoke(main, ["predict", str(image_dir), "--model", str(peer_bundle), "--threads", "1"])
    assert "without a face" in res.stdout and "--whole-image" not in res.stderr  # a photo without a face: no hint


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


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def test_cli_annotate_refuses_to_overwrite_inputs(peer_bundle, image_dir, monkeypatch):
    # `cd d1; predict a.jpg --annotate .` and `predict d3 --annotate d3` replaced the user's originals.
    before = _snapshot(image_dir)
    runner = CliRunner()
    monkeypatch.chdir(image_dir)
    res = runner.invoke(main, ["predict", "KA.HA1.29.tiff", "--annotate", ".", "--model", str(peer_bundle)])
    assert res.exit_code == 2, res.output
    assert res.stderr == ("error: --annotate .: would overwrite input images (KA.HA1.29.tiff); "
                          "choose another folder\n")
    assert res.stdout == ""  # refused before any image is processed
    res = runner.invoke(main, ["predict", str(image_dir), "--annotate", str(image_dir), "--json",
                               "--model", str(peer_bundle)])
    assert res.exit_code == 2 and res.stdout == "", res.output
    first_input = image_dir / "KA.HA1.29.tiff"
    assert res.stderr.startswith(f"error: --annotate {image_dir}: would overwrite input images ({first_input}, ")
    assert _snapshot(image_dir) == before  # inputs untouched, no temp files left behind


def test_annotate_gives_same_named_inputs_distinct_copies(peer_bundle, jaffe_dir, tmp_path):
    # Two a.tiff from different folders were written to one ann/a.tiff, while the report listed it twice.
    for folder, name in (("d1", "KA.HA1.29.tiff"), ("d2", "YM.AN1.61.tiff")):
        (tmp_path / folder).mkdir()
        shutil.copyfile(jaffe_dir / name, tmp_path / folder / "a.tiff")
    ann = tmp_path / "ann"
    res = CliRunner().invoke(main, ["predict", str(tmp_path / "d1" / "a.tiff"), str(tmp_path / "d2" / "a.tiff"),
                                    "--annotate", str(ann), "--json", "--model", str(peer_bundle)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["annotated"] == [str(ann / "a.tiff"), str(ann / "a-2.tiff")]
    assert [i["annotated"] for i in doc["images"]] == doc["annotated"]  # each copy traceable to its input
    assert sorted(str(f) for f in ann.iterdir()) == sorted(doc["annotated"])
    a1, a2 = (cv2.imread(p) for p in doc["annotated"])
    assert a1.shape == a2.shape and (a1 != a2).any()  # two different faces, neither overwritten
    # Scanned folders mirror their relative paths; a repeat of one gets the next free name.
    res = CliRunner().invoke(main, ["predict", str(tmp_path / "d1"), str(tmp_path / "d2"),
                                    "--annotate", str(tmp_path / "ann2"), "--model", str(peer_bundle)])
    assert res.exit_code == 0, res.output
    assert f"d2/a.tiff: 1 face -> {tmp_path / 'ann2' / 'a-2.tiff'}" in res.stdout


def test_annotation_targets_never_share_a_file(tmp_path):
    from fer_edge.live.predict import annotation_targets

    # .pgm is written as .png, so x.pgm and x.png would otherwise meet on one copy; names differing only
    # in case are one file on macOS / Windows.
    found = [(tmp_path / n, Path(n)) for n in ("x.png", "x.pgm", "x-2.png", "X.PNG")]
    for p, _ in found:
        p.write_bytes(b"")
    out = tmp_path / "out"
    assert annotation_targets(found, out) == [out / "x.png", out / "x-2.png", out / "x-2-2.png", out / "X-3.PNG"]


def test_annotate_folder_inside_scanned_folder_is_not_reread(peer_classifier, image_dir):
    det = create_detector("yunet")
    ann = image_dir / "ann"
    first = predict_paths([image_dir], peer_classifier, det, annotate_dir=ann)
    second = predict_paths([image_dir], peer_classifier, det, annotate_dir=ann)
    assert len(first.images) == len(second.images) == 4 and len(second.annotated) == 4
    assert [r.path for r in second.images] == [r.path for r in first.images]
    assert not (ann / "ann").exists() and sorted(second.annotated) == sorted(first.annotated)
    assert second.left_out == [str(ann.resolve())] and second.to_json()["left_out"] == second.left_out


def test_cli_says_it_left_out_an_annotate_folder_inside_the_scanned_one(peer_bundle, image_dir):
    args = ["predict", str(image_dir), "--model", str(peer_bundle), "--threads", "1", "--annotate"]
    res = CliRunner().invoke(main, [*args, str(image_dir / "ann")])
    assert res.exit_code == 0 and f"left out {image_dir / 'ann'}: the --annotate folder" in res.stderr, res.output
    res = CliRunner().invoke(main, [*args, str(image_dir.parent / "elsewhere")])
    assert res.exit_code == 0 and "left out" not in res.stderr
