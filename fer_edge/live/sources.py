"""Frame sources: Picamera2 on a Raspberry Pi, OpenCV VideoCapture for everything else.

Every source hands out ``Frame`` objects whose ``image`` is uint8 RGB: the conversion
from the camera's own byte order happens here, at the I/O boundary, and nowhere else.
"""

from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, FerEdgeError

STREAM_TIMEOUT_MS = 5000
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif"}


class SourceDisconnected(Exception):
    """The camera or stream stopped delivering frames (unplugged, network drop)."""


class SourceError(FerEdgeError):
    """A source could not be opened at all (user error: wrong index, path, URL)."""


@dataclass
class Frame:
    index: int  # capture counter of the source (gaps = frames dropped by the processing loop)
    timestamp: float  # time.time() when captured
    image: np.ndarray  # uint8 RGB (H,W,3): display, crops
    detect_image: np.ndarray  # what the face detector sees (gray lores Y plane or a smaller RGB copy)
    detect_scale: tuple[float, float]  # detector coordinates * scale = image coordinates


class FrameSource:
    """open() once (and again to reconnect), read() per frame, close() at the end."""

    is_live = True  # cameras/streams: drop stale frames and reconnect; files: every frame, EOF ends
    description = ""

    def open(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self) -> Frame | None:
        """The next frame; None at the end of a file; raises SourceDisconnected when a live source fails."""
        raise NotImplementedError  # pragma: no cover

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _detect_copy(rgb: np.ndarray, detect_width: int | None):
    """A smaller copy for the detector (cost grows with pixels); faces >= ~20 px survive a 2x cut."""
    import cv2

    h, w = rgb.shape[:2]
    if not detect_width or w <= detect_width:
        return rgb, (1.0, 1.0)
    dh = max(1, int(round(h * detect_width / w)))
    small = cv2.resize(rgb, (int(detect_width), dh), interpolation=cv2.INTER_AREA)
    return small, (w / detect_width, h / dh)


def _quiet(fn):
    """Run ``fn`` with OpenCV's own log at ERROR level (failed opens log several WARN lines)."""
    import cv2

    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        return fn()
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        return fn()
    finally:
        log.setLogLevel(old)


class OpenCVSource(FrameSource):
    """USB camera (index or /dev/videoN), video file, or network stream (rtsp://, http://...)."""

    def __init__(self, spec: str, detect_width: int | None = 320, resolution: tuple[int, int] | None = None) -> None:
        self.spec = spec
        self.detect_width = detect_width
        self.resolution = resolution
        self._cap = None
        self._index = 0
        self._first = None  # a video file's first frame, decoded in open() to prove the file plays
        if re.fullmatch(r"\d+", spec):
            self._arg: int | str = int(spec)
            self.kind = "camera"
        elif spec.startswith("/dev/video"):
            self._arg, self.kind = spec, "camera"
        elif "://" in spec:
            self._arg, self.kind = spec, "stream"
        else:
            path = Path(spec)
            if not path.exists():
                raise SourceError(f"{spec}: no such file, and not a camera index, /dev/videoN, 'picamera' or a URL")
            if path.is_dir():
                raise SourceError(f"{spec}: is a folder; --source takes a video file, camera or URL "
                                  "(use `fer-edge predict` for folders of images)")
            self._arg, self.kind = str(path), "file"
        self.is_live = self.kind != "file"
        self.description = f"{self.kind} {spec}"

    def open(self) -> None:
        import cv2

        self.close()
        if self.kind == "stream":
            # Bounded open/read waits, so a frozen stream surfaces as a disconnect and is reopened.
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
            cap = _quiet(lambda: cv2.VideoCapture(self._arg, cv2.CAP_FFMPEG, params))
        else:
            cap = _quiet(lambda: cv2.VideoCapture(self._arg))  # our own message below replaces OpenCV's warnings
        if not cap.isOpened():
            cap.release()
            hint = {
                "camera": " (is it connected and not used by another program? list cameras with `ls /dev/video*`)",
                "stream": " (check the URL and that the stream is up)",
                "file": " (not a video OpenCV can decode)",
            }[self.kind]
            raise SourceError(f"could not open {self.description}{hint}")
        if self.resolution and self.kind == "camera":
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.resolution[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.resolution[1])
        if self.kind != "file":
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a queue of old ones
        elif self._index == 0:
            # OpenCV "opens" some files it cannot decode (a corrupt JPEG, a truncated video): decode the
            # first frame here, so such a file is an error at once and not an empty run.
            ok, first = cap.read()
            if not ok or first is None:
                cap.release()
                raise SourceError(f"{self.spec}: no frame could be decoded (corrupt, empty, or not a video "
                                  "OpenCV can decode)")
            self._first = first
        self._cap = cap

    @property
    def fps(self) -> float:
        import cv2

        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0.0
        return float(fps) if fps and fps < 1000 else 0.0

    def read(self) -> Frame | None:
        import cv2

        if self._cap is None:
            raise SourceDisconnected(f"{self.description} is not open")
        if self._first is not None:
            ok, bgr, self._first = True, self._first, None
        else:
            ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if self.kind == "file":
                return None
            raise SourceDisconnected(f"{self.description} stopped delivering frames")
        ts = time.time()
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # OpenCV decodes to BGR: convert at the boundary
        small, scale = _detect_copy(rgb, self.detect_width)
        self._index += 1
        return Frame(self._index - 1, ts, rgb, small, scale)

    def close(self) -> None:
        self._first = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# libcamera names formats by their little-endian word layout: "BGR888" arrives in memory as
# R,G,B bytes (so numpy sees RGB) and "RGB888" as B,G,R. We ask for BGR888 to get RGB arrays.
PICAMERA_MAIN_FORMAT = "BGR888"
PICAMERA_LORES_FORMAT = "YUV420"  # its first H rows are the Y plane: a free grayscale image


class PicameraSource(FrameSource):
    """Raspberry Pi camera via Picamera2: main stream (RGB) for display and crops, lores YUV420
    stream whose Y plane is the grayscale image the face detector runs on."""

    is_live = True

    def __init__(self, main_size: tuple[int, int] = (640, 480), lores_size: tuple[int, int] = (320, 240)) -> None:
        self.main_size = (int(main_size[0]), int(main_size[1]))
        self.lores_size = (int(lores_size[0]), int(lores_size[1]))
        if self.lores_size[0] > self.main_size[0] or self.lores_size[1] > self.main_size[1]:
            raise ConfigError(f"lores size {self.lores_size} must not exceed the main size {self.main_size}")
        self.description = f"picamera {self.main_size[0]}x{self.main_size[1]}"
        self._cam = None
        self._index = 0
        self._lores_actual = self.lores_size

    @staticmethod
    def _module():
        try:
            return importlib.import_module("picamera2")
        except ImportError as exc:
            raise SourceError(
                f"--source picamera needs the picamera2 package ({exc}); on Raspberry Pi OS: "
                "sudo apt install python3-picamera2, and create the venv with --system-site-packages"
            ) from exc

    def open(self) -> None:
        mod = self._module()
        self.close()
        try:
            cam = mod.Picamera2()
            config = cam.create_video_configuration(
                main={"size": self.main_size, "format": PICAMERA_MAIN_FORMAT},
                lores={"size": self.lores_size, "format": PICAMERA_LORES_FORMAT},
                buffer_count=4,
            )
            if hasattr(cam, "align_configuration"):  # let libcamera round sizes to what the ISP can do
                cam.align_configuration(config)
            cam.configure(config)
            cam.start()
            self._lores_actual = tuple(int(v) for v in config["lores"]["size"])
        except (RuntimeError, OSError, IndexError) as exc:
            raise SourceError(f"could not start the Pi camera ({exc}); is it connected and enabled?") from exc
        self._cam = cam

    def _capture(self) -> tuple[np.ndarray, np.ndarray]:
        cam = self._cam
        if hasattr(cam, "capture_arrays"):  # one request: main and lores from the same frame
            (main, lores), _ = cam.capture_arrays(["main", "lores"])
        else:
            main, lores = cam.capture_array("main"), cam.capture_array("lores")
        return main, lores

    def read(self) -> Frame | None:
        if self._cam is None:
            raise SourceDisconnected(f"{self.description} is not open")
        try:
            main, lores = self._capture()
        except Exception as exc:  # noqa: BLE001 - libcamera reports a lost camera with various types
            raise SourceDisconnected(f"{self.description} stopped delivering frames ({exc})") from exc
        ts = time.time()
        rgb = main[:, :, :3] if main.ndim == 3 and main.shape[2] == 4 else main  # XBGR8888 -> RGB
        lw, lh = self._lores_actual
        gray = lores[:lh, :lw]  # Y plane of YUV420 (rows below it hold U and V; columns past lw are stride padding)
        self._index += 1
        return Frame(self._index - 1, ts, rgb, gray, (rgb.shape[1] / lw, rgb.shape[0] / lh))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            for step in ("stop", "close"):
                try:
                    getattr(cam, step)()
                except Exception:  # noqa: BLE001 - best effort on a camera that may be gone
                    pass


def open_source(spec: str | int, detect_width: int | None = 320,
                resolution: tuple[int, int] = (640, 480)) -> FrameSource:
    """The source for a --source value (not opened yet)."""
    spec = str(spec).strip()
    if not spec:
        raise ConfigError("--source is empty; give picamera, a camera index, /dev/videoN, a video file or a URL")
    if spec.lower() in ("picamera", "picamera2", "pi", "csi"):
        lw = detect_width or resolution[0]  # 0/None: detect at the main size (lores may equal main)
        lw = min(int(lw), resolution[0]) // 2 * 2  # YUV420 needs even sizes
        lh = max(2, int(round(resolution[1] * lw / resolution[0])) // 2 * 2)
        return PicameraSource(main_size=resolution, lores_size=(lw, lh))
    return OpenCVSource(spec, detect_width=detect_width, resolution=resolution)
