"""Where annotated frames go: an OpenCV window or an .mp4/.avi file (written atomically)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError

WINDOW = "fer-edge live"


def check_display() -> None:
    """Fail early with advice when there is no screen (SSH, service) or no GUI in this OpenCV."""
    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError("no display found ($DISPLAY is not set); run with --serve 8080 to watch it in a browser, "
                          "or --headless for JSON lines (add --record out.mp4 to keep the annotated video)")
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error as exc:
        raise ConfigError("this OpenCV build has no GUI support (opencv-python-headless?); "
                          "run with --serve 8080 (a browser page) or --headless, or pip install opencv-python "
                          "for a window") from exc


class Display:
    def __init__(self) -> None:
        check_display()
        import cv2

        self._cv2 = cv2
        self._bgr: np.ndarray | None = None
        self._seen = False

    def show(self, rgb: np.ndarray) -> bool:
        """Show a frame; False when the user pressed q/Esc or closed the window."""
        cv2 = self._cv2
        if self._bgr is None or self._bgr.shape != rgb.shape:
            self._bgr = np.empty_like(rgb)
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=self._bgr)  # OpenCV windows take BGR
        cv2.imshow(WINDOW, self._bgr)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        try:
            visible = cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return True
        # Some GUI backends report "not visible" until the window is mapped: only a window that
        # was visible and no longer is counts as closed by the user.
        if visible:
            self._seen = True
        return visible or not self._seen

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(WINDOW)
            self._cv2.waitKey(1)
        except self._cv2.error:
            pass


_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class Recorder:
    """Writes frames to a temporary sibling file; ``close(keep=True)`` renames it into place."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise ConfigError(f"--record {path}: use a .mp4, .avi, .mkv, .mov or .m4v file name")
        if self.path.is_dir():
            raise ConfigError(f"--record {path}: is a folder; give a file name such as out.mp4")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.tmp-", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._writer = None
        self._bgr: np.ndarray | None = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()]),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                raise ConfigError(f"--record {self.path}: OpenCV cannot write this video format here")
            self._bgr = np.empty_like(rgb)
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=self._bgr)  # video files are written as BGR
        self._writer.write(self._bgr)
        self.frames += 1

    def close(self, keep: bool = True) -> Path | None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if keep and self.frames > 0:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp made it private; a video is an ordinary file
            os.replace(self._tmp, self.path)
            return self.path
        self._tmp.unlink(missing_ok=True)
        return None
