"""`fer-edge live` on a test video of real faces (JAFFE / CK+48) pasted on a background."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge.errors import ConfigError, ModelError
from fer_edge.labels import FER7
from fer_edge.live import LiveOptions, default_bundle, run_live
from test_live_support import inside, make_face_video


@pytest.fixture(scope="module")
def video(jaffe_dir, ckplus_dir, face_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "faces.avi"
    truth = make_face_video(path, jaffe_dir, ckplus_dir)
    return path, truth


def _run(peer_classifier, path, **kw):
    out = io.StringIO()
    err = io.StringIO()
    result = run_live(peer_classifier, LiveOptions(source=str(path), headless=True, **kw), out=out, err=err)
    lines = [json.loads(s) for s in out.getvalue().splitlines()]
    return result, lines


def _check_schema(lines, n_frames):
    frames, summary = lines[:-1], lines[-1]
    assert [ln["type"] for ln in frames] == ["frame"] * n_frames
    assert [ln["frame"] for ln in frames] == list(range(n_frames))
    for ln in frames:
        assert set(ln) == {"type", "t", "frame", "capture_index", "faces"}
        assert isinstance(ln["t"], float) and ln["t"] > 1.6e9
        for f in ln["faces"]:
            assert set(f) == {"id", "box", "label", "score", "scores", "detected"}
            assert isinstance(f["id"], int) and len(f["box"]) == 4
            assert f["label"] in FER7 and list(f["scores"]) == list(FER7)
            assert f["score"] == max(f["scores"].values())
            assert sum(f["scores"].values()) == pytest.approx(1.0, abs=2e-3)
    assert summary["type"] == "summary"
    assert set(summary) == {"type", "source", "model", "stop_reason", "frames", "seconds", "fps", "captured",
                            "dropped", "frames_with_faces", "faces", "reconnects", "stages_ms"}
    assert summary["model"] == "mini-xception (fer) (tflite-dynamic)"
    for stage in ("capture", "detect", "classify", "draw"):
        assert set(summary["stages_ms"][stage]) == {"p50", "p90", "mean"}
    return frames, summary


def test_every_frame_detection_finds_faces_ids_and_labels(peer_classifier, video):
    path, truth = video
    result, lines = _run(peer_classifier, path)
    frames, summary = _check_schema(lines, 60)
    for ln, rects in zip(frames, truth):
        assert len(ln["faces"]) == len(rects), (ln["frame"], ln["faces"], rects)
        for rect in rects:  # every pasted face has a detection centred on it
            assert any(inside(f["box"], rect) for f in ln["faces"]), (ln["frame"], rect)
    # Stable ids: one id for the single moving face, two other ids for the pair.
    first = {f["id"] for ln in frames[:25] for f in ln["faces"]}
    assert len(first) == 1
    per_rect = [set(), set()]
    for ln, rects in zip(frames[35:], truth[35:]):
        for f in ln["faces"]:
            per_rect[0 if inside(f["box"], rects[0]) else 1].add(f["id"])
    assert all(len(s) == 1 for s in per_rect) and per_rect[0] != per_rect[1]
    assert not (per_rect[0] | per_rect[1]) & first
    # The happy JAFFE face is read as happy by the FER2013-trained peer model.
    assert [f["label"] for ln in frames[:25] for f in ln["faces"]].count("happy") >= 20
    s = result.summary
    assert summary == s.to_dict()
    assert (s.frames, s.captured, s.dropped, s.frames_with_faces, s.faces) == (60, 60, 0, 50, 25 + 2 * 25)
    assert s.stop_reason == "end of file" and result.error == ""
    assert set(s.stages_ms) == {"capture", "detect", "classify", "draw"}
    for p in s.stages_ms.values():
        assert 0 <= p["p50"] <= p["p90"]
    assert s.stages_ms["detect"]["p50"] > 0 and s.stages_ms["classify"]["p50"] > 0
    assert s.fps > 0 and s.seconds > 0


def test_tracking_between_detections_keeps_ids(peer_classifier, video):
    path, truth = video
    result, lines = _run(peer_classifier, path, detect_every=4, frames=25)
    frames, summary = _check_schema(lines, 25)
    assert summary["stop_reason"] == "--frames 25 reached"
    ids = {f["id"] for ln in frames for f in ln["faces"]}
    assert len(ids) == 1
    detected = [ln["faces"][0]["detected"] for ln in frames]
    assert detected == [i % 4 == 0 for i in range(25)]
    for ln, rects in zip(frames, truth):  # carried boxes follow the moving face
        assert inside(ln["faces"][0]["box"], rects[0])


def test_single_face_mode_keeps_the_largest(peer_classifier, video):
    path, truth = video
    _, lines = _run(peer_classifier, path, single_face=True)
    frames = lines[:-1]
    for ln, rects in zip(frames[35:], truth[35:]):
        assert len(ln["faces"]) == 1
        # the CK+ face fills its 150 px photo: a larger face than the one in the 180 px JAFFE photo
        assert inside(ln["faces"][0]["box"], rects[1])


def test_window_smoothing_and_record(peer_classifier, video, tmp_path):
    import cv2

    path, _ = video
    out = tmp_path / "out" / "annotated.mp4"
    result, lines = _run(peer_classifier, path, smoothing="window:5", record=str(out), show_crop=True, frames=30)
    assert result.recorded == str(out) and out.is_file()
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert n == 30 and ok and frame.shape == (480, 640, 3)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_bad_record_name_fails_before_the_run(peer_classifier, video, tmp_path):
    path, _ = video
    with pytest.raises(ConfigError, match="--record"):
        _run(peer_classifier, path, record=str(tmp_path / "out.gif"))
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        _run(peer_classifier, path, record=str(tmp_path / "dir.mp4"))
    assert [p.name for p in tmp_path.iterdir()] == ["dir.mp4"]  # no temp files left


def test_seconds_limit_and_bad_options(peer_classifier, video):
    path, _ = video
    result, lines = _run(peer_classifier, path, seconds=0.05)
    assert result.summary.stop_reason in ("--seconds 0.05 reached", "end of file")
    assert result.summary.frames == len(lines) - 1
    with pytest.raises(ConfigError, match="smooth"):
        _run(peer_classifier, path, smoothing="median:3")
    with pytest.raises(ConfigError, match="detect-every"):
        _run(peer_classifier, path, detect_every=0)
    with pytest.raises(ConfigError, match="seconds"):
        _run(peer_classifier, path, seconds=-1)


def test_missing_sources_are_clear_errors(peer_classifier, tmp_path):
    from fer_edge.live import SourceError

    with pytest.raises(SourceError, match="no such file"):
        _run(peer_classifier, tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="could not open"):
        _run(peer_classifier, bad)
    # OpenCV "opens" a corrupt JPEG with its mjpeg reader but decodes nothing: an error, not an empty run
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"garbage\n")
    with pytest.raises(SourceError, match="no frame could be decoded"):
        _run(peer_classifier, corrupt)


def test_no_display_says_use_headless(peer_classifier, video, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the $DISPLAY check is Linux-only")
    with pytest.raises(ConfigError, match="--headless"):
        run_live(peer_classifier, LiveOptions(source=str(video[0]), frames=1))


def test_default_bundle_until_one_ships(monkeypatch, tmp_path):
    monkeypatch.delenv("FER_EDGE_MODEL", raising=False)
    from fer_edge.live import models

    if (models.DEFAULT_MODEL_DIR / "manifest.json").is_file():
        assert default_bundle() == models.DEFAULT_MODEL_DIR
    else:
        with pytest.raises(ModelError, match="--model"):
            default_bundle()
    monkeypatch.setenv("FER_EDGE_MODEL", str(tmp_path))
    assert default_bundle() == tmp_path
    with pytest.raises(ModelError, match=rf"^\$FER_EDGE_MODEL: {tmp_path}"):  # names where the path came from
        models.load_classifier(None)


def test_cli_live_headless_jsonl(peer_bundle, video):
    path, truth = video
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    exe = Path(sys.executable).with_name("fer-edge")
    proc = subprocess.run([str(exe), "live", "--model", str(peer_bundle), "--source", str(path), "--headless",
                           "--frames", "12", "--detect-every", "2", "--threads", "1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(s) for s in proc.stdout.splitlines()]
    frames, summary = _check_schema(lines, 12)
    assert summary["frames"] == 12 and summary["frames_with_faces"] == 12
    assert "12 frames in" in proc.stderr and "detect" in proc.stderr
    # A wrong model is one line, no traceback.
    proc = subprocess.run([str(exe), "live", "--model", str(path.parent), "--source", str(path), "--headless"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    # Without --model: the bundle shipped in the package (issue 7), or a clear error where none ships.
    proc = subprocess.run([str(exe), "live", "--source", str(path), "--headless", "--frames", "5"],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in env.items() if k != "FER_EDGE_MODEL"})
    from fer_edge.bundle import read_bundle
    from fer_edge.live import models

    if (models.DEFAULT_MODEL_DIR / "manifest.json").is_file():
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout.splitlines()[-1])
        assert summary["frames"] == 5
        assert summary["model"].startswith(read_bundle(models.DEFAULT_MODEL_DIR).manifest.name)
    else:
        assert proc.returncode != 0 and "--model" in proc.stderr and "Traceback" not in proc.stderr
