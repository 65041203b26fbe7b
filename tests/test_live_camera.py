"""Camera paths: Picamera2 against a fake `picamera2` module, and reconnect with back-off."""

from __future__ import annotations

import io
import json
import sys
import types

import cv2
import numpy as np
import pytest

from fer_edge.live import (CaptureThread, FrameSource, LiveOptions, PicameraSource, SourceDisconnected,
                           SourceError, open_source, run_live)
from fer_edge.live.sources import Frame
from test_live_support import CheapClassifier, Paste, background, inside, load_gray, render


class FakeCameraWorld:
    """What the fake camera films, plus a script of failures (shared by all Picamera2 instances)."""

    def __init__(self, scene_rgb, rects, fail_after=None, failed_opens=0):
        self.scene = scene_rgb
        self.rects = rects
        self.fail_after = fail_after  # captures before the camera "is unplugged"
        self.failed_opens = failed_opens  # Picamera2() calls that fail after that (camera still gone)
        self.captures = 0
        self.instances = []
        self.calls = []


def make_fake_picamera2(world: FakeCameraWorld, with_capture_arrays: bool = False,
                        align: bool = False) -> types.ModuleType:
    """Mimics the parts of picamera2 that fer-edge uses, with libcamera's format naming:
    'BGR888' arrives as R,G,B bytes, 'RGB888' as B,G,R; 'YUV420' lores is (h*3/2, w), Y plane first."""

    class Picamera2:
        def __init__(self):
            if world.fail_after is not None and world.captures >= world.fail_after and world.failed_opens > 0:
                world.failed_opens -= 1
                raise RuntimeError("Camera __init__ sequence did not complete.")
            self.config = None
            self.started = False
            self.closed = False
            world.instances.append(self)

        def create_video_configuration(self, main=None, lores=None, buffer_count=6, **kw):
            world.calls.append(("create_video_configuration", main, lores))
            return {"main": dict(main), "lores": dict(lores), "buffer_count": buffer_count}

        def configure(self, config):
            world.calls.append(("configure",))
            self.config = config

        def start(self):
            assert self.config is not None, "configure() before start()"
            world.calls.append(("start",))
            self.started = True

        def stop(self):
            world.calls.append(("stop",))
            self.started = False

        def close(self):
            world.calls.append(("close",))
            self.closed = True

        def capture_array(self, name="main"):
            if not self.started:
                raise RuntimeError("camera not started")
            if name == "main":
                world.captures += 1
                if world.fail_after is not None and world.captures > world.fail_after and world.failed_opens >= 0 \
                        and self is world.instances[0]:
                    raise RuntimeError("Device or resource busy: camera frontend has timed out!")
            stream = self.config[name]
            w, h = stream["size"]
            scene = cv2.resize(world.scene, (w, h), interpolation=cv2.INTER_AREA)
            fmt = stream["format"]
            if fmt == "BGR888":
                return scene.copy()  # memory order R,G,B
            if fmt == "RGB888":
                return scene[..., ::-1].copy()  # memory order B,G,R
            if fmt == "YUV420":
                i420 = cv2.cvtColor(scene, cv2.COLOR_RGB2YUV_I420)  # (h*3/2, w), Y plane first
                return i420
            raise ValueError(f"fake camera does not do {fmt}")

    if align:
        def align_configuration(self, config):
            w, h = config["lores"]["size"]
            config["lores"]["size"] = (w // 64 * 64, h // 2 * 2)  # what an ISP might insist on

        Picamera2.align_configuration = align_configuration
        real_capture = Picamera2.capture_array

        def padded_capture(self, name="main"):
            arr = real_capture(self, name)
            if name == "lores":  # rows padded to a 128-byte stride, as camera buffers are
                stride = -(-arr.shape[1] // 128) * 128
                arr = np.pad(arr, ((0, 0), (0, stride - arr.shape[1])), constant_values=7)
            return arr

        Picamera2.capture_array = padded_capture

    if with_capture_arrays:  # newer picamera2: both streams from one request (the same frame)
        def capture_arrays(self, names=("main",)):
            world.calls.append(("capture_arrays", tuple(names)))
            return [self.capture_array(n) for n in names], {"SensorTimestamp": world.captures}

        Picamera2.capture_arrays = capture_arrays

    mod = types.ModuleType("picamera2")
    mod.Picamera2 = Picamera2
    return mod


@pytest.fixture
def scene(jaffe_dir, face_weights):
    paste = Paste(load_gray(jaffe_dir / "KA.HA1.29.tiff", 220), "KA.HA1.29.tiff", (200, 120), (0, 0))
    img, rects = render(background(), [paste], 0)
    img[0:20, 0:20] = (255, 0, 0)  # a pure red patch: RGB order is checkable
    return img, rects


def _run(world, monkeypatch, **kw):
    monkeypatch.setitem(sys.modules, "picamera2", make_fake_picamera2(world))
    out, err = io.StringIO(), io.StringIO()
    opts = LiveOptions(source="picamera", headless=True, reconnect_backoff_s=0.01, **kw)
    result = run_live(CheapClassifier(), opts, out=out, err=err)
    return result, [json.loads(s) for s in out.getvalue().splitlines()], err.getvalue()


def test_picamera_frames_are_rgb_and_detection_runs_on_the_lores_y_plane(scene, monkeypatch):
    img, rects = scene
    world = FakeCameraWorld(img, rects)
    monkeypatch.setitem(sys.modules, "picamera2", make_fake_picamera2(world))
    src = open_source("picamera", detect_width=320, resolution=(640, 480))
    assert isinstance(src, PicameraSource) and src.lores_size == (320, 240)
    src.open()
    frame = src.read()
    src.close()
    assert frame.image.shape == (480, 640, 3)
    assert tuple(frame.image[5, 5]) == (255, 0, 0)  # red stays red: RGB, not BGR
    assert frame.detect_image.shape == (240, 320) and frame.detect_image.dtype == np.uint8
    y_expected = cv2.cvtColor(cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2YUV_I420)[:240]
    assert np.array_equal(frame.detect_image, y_expected)
    assert frame.detect_scale == (2.0, 2.0)
    kinds = [c[0] for c in world.calls]
    assert kinds == ["create_video_configuration", "configure", "start", "stop", "close"]
    _, main, lores = world.calls[0]
    assert main == {"size": (640, 480), "format": "BGR888"} and lores == {"size": (320, 240), "format": "YUV420"}


def test_picamera_aligned_lores_size_and_stride_padding(scene, monkeypatch):
    img, rects = scene
    world = FakeCameraWorld(img, rects)
    monkeypatch.setitem(sys.modules, "picamera2", make_fake_picamera2(world, align=True))
    src = open_source("picamera", detect_width=200, resolution=(640, 480))
    assert src.lores_size == (200, 150)
    src.open()
    frame = src.read()
    src.close()
    assert frame.detect_image.shape == (150, 192)  # the size the camera really delivers, padding cut off
    assert (frame.detect_image != 7).mean() > 0.9
    assert frame.detect_scale == (640 / 192, 480 / 150)


def test_picamera_uses_capture_arrays_when_available(scene, monkeypatch):
    img, rects = scene
    world = FakeCameraWorld(img, rects)
    monkeypatch.setitem(sys.modules, "picamera2", make_fake_picamera2(world, with_capture_arrays=True))
    src = open_source("picamera", detect_width=320, resolution=(640, 480))
    src.open()
    frame = src.read()
    src.close()
    assert ("capture_arrays", ("main", "lores")) in world.calls
    assert frame.image.shape == (480, 640, 3) and frame.detect_image.shape == (240, 320)


def test_picamera_live_run_finds_the_face(scene, monkeypatch):
    img, rects = scene
    world = FakeCameraWorld(img, rects)
    result, lines, _ = _run(world, monkeypatch, frames=20)
    frames = lines[:-1]
    assert len(frames) == 20 and result.summary.stop_reason == "--frames 20 reached"
    for ln in frames:
        assert len(ln["faces"]) == 1 and inside(ln["faces"][0]["box"], rects[0])
    assert {f["id"] for ln in frames for f in ln["faces"]} == {1}
    assert world.instances[-1].closed


def test_picamera_disconnect_mid_run_reconnects(scene, monkeypatch):
    img, rects = scene
    world = FakeCameraWorld(img, rects, fail_after=10, failed_opens=2)
    result, lines, err = _run(world, monkeypatch, frames=25)
    s = result.summary
    assert s.frames == 25 and s.reconnects == 1 and result.error == ""
    assert "stopped delivering frames" in err and "reconnect 1/5 failed" in err and "reconnected" in err
    assert len(world.instances) == 2 and world.instances[0].closed
    assert all(len(ln["faces"]) == 1 for ln in lines[:-1])


def test_picamera_lost_for_good_gives_up_with_a_message(scene, monkeypatch):
    img, rects = scene
    world = FakeCameraWorld(img, rects, fail_after=5, failed_opens=100)
    result, lines, err = _run(world, monkeypatch, seconds=20, reconnect_retries=3)
    s = result.summary
    assert s.captured == 5 and s.frames + s.dropped == 5 and s.frames >= 1  # a live camera drops stale frames
    assert lines[-1]["type"] == "summary" and len(lines) == s.frames + 1
    assert "gave up after 3 reconnect tries" in result.error
    assert result.summary.stop_reason == result.error
    assert err.count("failed:") == 3


def test_picamera_missing_module_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    src = open_source("picamera")
    with pytest.raises(SourceError, match="apt install python3-picamera2"):
        src.open()


class FlakySource(FrameSource):
    """A live source that drops after `drop_at` frames and refuses `refuse` reopen attempts."""

    def __init__(self, drop_at=5, refuse=2, total=None):
        self.description = "flaky camera"
        self.drop_at, self.refuse, self.total = drop_at, refuse, total
        self.n = 0
        self.opened = 0
        self.is_open = False
        self.img = np.zeros((48, 64, 3), np.uint8)

    def open(self):
        if self.n >= self.drop_at and self.refuse > 0:
            self.refuse -= 1
            raise SourceError("could not open flaky camera")
        self.opened += 1
        self.is_open = True

    def read(self):
        if self.total is not None and self.n >= self.total:
            return None
        if self.n == self.drop_at and self.opened == 1:
            raise SourceDisconnected("flaky camera stopped delivering frames")
        self.n += 1
        return Frame(self.n - 1, 0.0, self.img, self.img, (1.0, 1.0))

    def close(self):
        self.is_open = False


def test_capture_thread_reconnects_with_backoff_and_counts_drops():
    import time

    events = []
    src = FlakySource(drop_at=5, refuse=2, total=40)
    cap = CaptureThread(src, lossless=False, retries=4, backoff_s=0.02, on_event=events.append).start()
    got = []
    while True:
        f = cap.get(timeout=2.0)
        if f is None:
            break
        got.append(f.index)
        time.sleep(0.002)  # slower than the source: frames get dropped
    cap.stop()
    assert cap.end_reason == "end of file" and not cap.failed
    assert cap.reconnects == 1 and src.opened == 2
    assert [e.split(":")[0] for e in events] == ["flaky camera stopped delivering frames; reconnecting (up to 4 tries)",
                                                 "reconnect 1/4 failed", "reconnect 2/4 failed",
                                                 "reconnected to flaky camera (try 3)"]
    assert cap.captured == 40 and cap.dropped == 40 - len(got) and got == sorted(got)
    assert got[-1] == 39  # the newest frame is always the one processed last


def test_lossless_file_mode_drops_nothing():
    src = FlakySource(drop_at=10**9, total=200)
    cap = CaptureThread(src, lossless=True).start()
    got = []
    while (f := cap.get(timeout=2.0)) is not None:
        got.append(f.index)
    cap.stop()
    assert got == list(range(200)) and cap.dropped == 0


def test_opencv_stream_drop_reopens_the_capture(jaffe_dir, ckplus_dir, face_weights, tmp_path):
    """A real cv2.VideoCapture treated as a network stream: at the end of the file it 'drops',
    and the source is reopened (the file plays again) instead of ending the run."""
    from fer_edge.live import OpenCVSource
    from test_live_support import make_face_video

    video = tmp_path / "v.avi"
    make_face_video(video, jaffe_dir, ckplus_dir)
    src = OpenCVSource(str(video), detect_width=320)
    src.kind, src.is_live, src.description = "stream", True, "stream rtsp://test"
    out, err = io.StringIO(), io.StringIO()
    opts = LiveOptions(source="unused", headless=True, frames=100, reconnect_backoff_s=0.01)
    result = run_live(CheapClassifier(), opts, source=src, out=out, err=err)
    s = result.summary
    assert s.frames == 100 and s.reconnects >= 1 and result.error == ""
    assert "stream rtsp://test stopped delivering frames; reconnecting" in err.getvalue()
    assert "reconnected to stream rtsp://test (try 1)" in err.getvalue()
    assert s.captured - s.frames - s.dropped in (0, 1)  # at most one frame left unread in the slot at stop
