"""Tracker, smoothing, stage timers, overlay, and stopping (Ctrl-C / SIGTERM) of the live loop."""

from __future__ import annotations

import io
import json
import os
import signal
import sys

import numpy as np
import pytest

from fer_edge.bundle import FaceSpec, InputSpec
from fer_edge.errors import ConfigError
from fer_edge.face import Face
from fer_edge.live import FrameSource, LiveOptions, run_live
from fer_edge.live.overlay import draw, model_view
from fer_edge.live.pipeline import FacePipeline, FaceResult
from fer_edge.live.smoothing import EmaSmoother, WindowSmoother, smoother_factory
from fer_edge.live.sources import Frame
from fer_edge.live.stats import FpsMeter, StageTimes
from fer_edge.live.tracker import IouTracker, iou
from test_live_support import CheapClassifier


def _face(x, y, w=50, h=60, score=0.9):
    return Face((float(x), float(y), float(w), float(h)), score, np.array([[x + 15, y + 20], [x + 35, y + 20],
                                                                          [x + 25, y + 35], [x + 17, y + 48],
                                                                          [x + 33, y + 48]], np.float32))


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_tracker_ids_velocity_and_expiry():
    tr = IouTracker(iou_threshold=0.3, max_missed=2)
    a = tr.update([_face(100, 100), _face(300, 100)], frame=0)
    ids = {round(t.face.box[0]): t.id for t in a}
    assert ids == {100: 1, 300: 2}
    b = tr.update([_face(310, 104), _face(110, 102)], frame=2)  # order swapped, both moved
    assert {round(t.face.box[0]): t.id for t in b} == {110: 1, 310: 2}
    t1 = next(t for t in tr.tracks if t.id == 1)
    assert t1.velocity == pytest.approx([5.0, 1.0])
    moved = t1.face_at(4)  # carried two frames further along its velocity
    assert moved.box[:2] == pytest.approx((120.0, 104.0))
    assert moved.landmarks[0] == pytest.approx(t1.face.landmarks[0] + [10, 2])
    # face 2 disappears: hidden at once, id kept for max_missed rounds, then dropped
    assert [t.id for t in tr.update([_face(125, 104)], frame=5)] == [1]
    tr.update([_face(130, 104)], frame=6)
    back = tr.update([_face(130, 104), _face(320, 108)], frame=7)
    assert sorted(t.id for t in back) == [1, 2]
    for f in (8, 9, 10):
        tr.update([_face(130, 104)], frame=f)
    assert [t.id for t in tr.update([_face(130, 104), _face(320, 108)], frame=11)] == [1, 3]
    assert len(tr.tracks) == 2


def test_smoothers():
    ema = EmaSmoother(3, 0.5)
    assert ema.update(np.array([1, 0, 0], np.float32)) == pytest.approx([1, 0, 0])
    assert ema.update(np.array([0, 1, 0], np.float32)) == pytest.approx([0.5, 0.5, 0])
    win = WindowSmoother(2, 3)
    for v in ([1, 0], [0, 1], [0, 1], [0, 1]):
        out = win.update(np.array(v, np.float32))
    assert out == pytest.approx([0, 1])
    assert smoother_factory("none")(2).update(np.array([0.3, 0.7])) == pytest.approx([0.3, 0.7])
    for bad in ("ema:0", "ema:1.5", "window:0", "window:x", "kalman", "none:3"):
        with pytest.raises(ConfigError, match="--smooth"):
            smoother_factory(bad)


def test_stage_times_ring_and_fps():
    st = StageTimes(capacity=4)
    for i in range(10):
        st.add("detect", float(i))
        st.add("detect", 1.0)  # accumulates within a frame
        st.end_frame()
    p = st.percentiles()
    assert p["detect"]["p50"] == pytest.approx(np.percentile([7, 8, 9, 10], 50))  # last 4 frames only
    assert p["detect"]["mean"] == pytest.approx(8.5) and p["capture"]["p90"] == 0.0
    fps = FpsMeter(window=5)
    vals = [fps.tick(now=i * 0.1) for i in range(12)]
    assert vals[0] == 0.0 and vals[-1] == pytest.approx(10.0)


def test_pipeline_single_face_and_scaling():
    class OneShot:
        def detect(self, image):
            return [_face(10, 10, 20, 20), _face(50, 40, 40, 40)]

    pipe = FacePipeline(CheapClassifier(), OneShot(), FaceSpec(margin=0.0), single_face=True)
    img = np.full((300, 400, 3), 90, np.uint8)
    out = pipe.process(img, img[::2, ::2], (2.0, 2.0))
    assert len(out) == 1 and out[0].box == (100.0, 80.0, 80.0, 80.0)  # the larger face, scaled to the frame
    assert out[0].crop.shape == (80, 80, 3) and out[0].label in CheapClassifier().labels


def test_overlay_draws_box_and_exact_model_view():
    spec = InputSpec(size=(48, 48), color="gray", scale=1 / 255.0)
    img = np.zeros((240, 320, 3), np.uint8)
    crop = np.tile(np.arange(60, dtype=np.uint8)[None, :, None] * 4, (60, 1, 3))
    face = FaceResult(7, (100.0, 80.0, 60.0, 60.0), "happy", 0.8, np.zeros(7, np.float32), crop, True)
    draw(img, [face], fps=30.0, stage_ms={"detect": 5.0}, show_crop=spec)
    assert img[80, 100:160].any() and img[80 + 60, 100:160].any()  # box edges
    view = model_view(crop, spec)
    assert view.shape == (96, 96, 3)
    assert np.array_equal(img[5:99, 320 - 96 - 3:320 - 5], view[1:-1, 1:-1])  # inside its 1 px frame
    import cv2

    expected = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(view[::2, ::2, 0].astype(int) - expected.astype(int)).max() <= 1


class EndlessSource(FrameSource):
    is_live = True
    description = "endless"

    def __init__(self):
        self.img = np.full((120, 160, 3), 80, np.uint8)
        self.n = 0

    def open(self):
        pass

    def read(self):
        import time

        time.sleep(0.001)
        self.n += 1
        return Frame(self.n, 0.0, self.img.copy(), self.img, (1.0, 1.0))

    def close(self):
        pass


class NoFaces:
    def detect(self, image):
        return []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupt_prints_a_clean_summary(how):
    frames_seen = []

    class Det:
        def detect(self, image):
            frames_seen.append(1)
            if len(frames_seen) == 15:
                if how == "ctrl-c":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGTERM)
            return []

    out = io.StringIO()
    before = signal.getsignal(signal.SIGTERM)
    res = run_live(CheapClassifier(), LiveOptions(source="x", headless=True, seconds=30), detector=Det(),
                   source=EndlessSource(), out=out, err=io.StringIO())
    assert signal.getsignal(signal.SIGTERM) == before  # handler restored
    s = res.summary
    assert s.stop_reason == "interrupted" and res.error == ""
    assert 13 <= s.frames <= 15 and s.seconds < 30
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["type"] == "summary" and last["stop_reason"] == "interrupted"


def test_no_face_frames_are_normal():
    out = io.StringIO()
    res = run_live(CheapClassifier(), LiveOptions(source="x", headless=True, frames=20), detector=NoFaces(),
                   source=EndlessSource(), out=out, err=io.StringIO())
    lines = [json.loads(s) for s in out.getvalue().splitlines()]
    assert res.summary.frames == 20 and res.summary.frames_with_faces == 0 and res.error == ""
    assert all(ln["faces"] == [] for ln in lines[:-1])


def test_display_without_gui_support_says_use_headless(monkeypatch):
    import cv2

    from fer_edge.live.output import Display

    monkeypatch.setenv("DISPLAY", ":99")

    def no_gui(*a, **k):
        raise cv2.error("The function is not implemented. Rebuild the library with GTK+ 2.x or Cocoa support")

    monkeypatch.setattr(cv2, "namedWindow", no_gui)  # what opencv-python-headless does
    with pytest.raises(ConfigError, match="no GUI support.*--serve 8080.*--headless"):
        Display()
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):  # over SSH: the browser page is the way to watch it
        with pytest.raises(ConfigError, match=r"no display found.*--serve 8080.*--headless"):
            Display()


def test_display_stops_on_q_and_on_a_closed_window(monkeypatch):
    import cv2

    from fer_edge.live.output import Display

    monkeypatch.setenv("DISPLAY", ":99")
    keys, visible, shown = [], [], []
    monkeypatch.setattr(cv2, "namedWindow", lambda *a, **k: None)
    monkeypatch.setattr(cv2, "imshow", lambda name, img: shown.append(img.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: keys.pop(0) if keys else -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: visible.pop(0) if visible else 1.0)
    d = Display()
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    visible[:] = [0.0, 1.0, 1.0, 0.0]  # not yet mapped, mapped, mapped, closed by the user
    assert d.show(rgb) and d.show(rgb) and d.show(rgb)
    assert tuple(shown[0][0, 0]) == (0, 0, 255)  # the window gets BGR
    assert not d.show(rgb)
    keys[:] = [ord("q")]
    assert not d.show(rgb)


def test_a_stalled_source_is_reported(monkeypatch):
    import time

    from fer_edge.live import runner

    monkeypatch.setattr(runner, "STALL_WARN_S", 0.2)

    class Stalling(EndlessSource):
        def read(self):
            if self.n >= 3:
                time.sleep(1.5)  # a frozen stream: read() blocks
                return None
            return super().read()

    err = io.StringIO()
    res = run_live(CheapClassifier(), LiveOptions(source="x", headless=True, seconds=0.7), detector=NoFaces(),
                   source=Stalling(), out=io.StringIO(), err=err)
    s = res.summary
    assert s.frames + s.dropped == 3 and s.frames >= 1  # a live source may drop frames on a busy CPU
    assert s.stop_reason == "--seconds 0.7 reached"
    warnings = [ln for ln in err.getvalue().splitlines() if "no frame from endless for" in ln]
    assert 1 <= len(warnings) <= 3 and "Ctrl-C to stop" in warnings[0]
