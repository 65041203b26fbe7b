"""A capture thread that always holds the newest frame.

Live sources (cameras, streams) run free: when processing is slower than the camera,
an unconsumed frame is replaced by the next one and counted as dropped, so latency never
builds up. Files are lossless instead: the reader waits until each frame is taken.
A live source that fails is reopened with exponential back-off, a bounded number of times.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .sources import Frame, FrameSource, SourceDisconnected, SourceError


class CaptureThread:
    def __init__(self, source: FrameSource, lossless: bool | None = None, retries: int = 5,
                 backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.source = source
        self.lossless = (not source.is_live) if lossless is None else lossless
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.on_event = on_event or (lambda msg: None)
        self.captured = 0
        self.dropped = 0
        self.reconnects = 0
        self.end_reason = ""  # "end of file" | "stopped" | "source lost: ..."
        self.failed = False  # True when the source was lost for good
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------
    def start(self) -> "CaptureThread":
        """Open the source here (so a wrong --source fails at once, in the caller) and start reading."""
        self.source.open()
        self._thread = threading.Thread(target=self._run, name="fer-edge-capture", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.source.close()
        if not self.end_reason:
            self.end_reason = "stopped"

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet taken; None when the source has ended (see ``end_reason``)
        or, with a timeout, when none arrived in time (then ``finished`` is still False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._slot is None and not self._finished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.5)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._finished and self._slot is None

    # -- thread -------------------------------------------------------------------------------
    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.lossless:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.5)
            elif self._slot is not None:
                self.dropped += 1  # the processing loop never saw the frame we replace
            self._slot = frame
            self.captured += 1
            self._cond.notify_all()

    def _finish(self, reason: str, failed: bool = False) -> None:
        with self._cond:
            self.end_reason = reason
            self.failed = failed
            self._finished = True
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self.source.read()
                except SourceDisconnected as exc:
                    if not self._reconnect(str(exc)):
                        return
                    continue
                if frame is None:
                    self._finish("end of file")
                    return
                self._put(frame)
            self._finish("stopped")
        except Exception as exc:  # noqa: BLE001 - surface a crash in the reader to the main loop
            self._finish(f"capture failed: {type(exc).__name__}: {exc}", failed=True)

    def _reconnect(self, why: str) -> bool:
        self.on_event(f"{why}; reconnecting (up to {self.retries} tries)")
        self.source.close()
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            if self._stop.wait(delay):
                self._finish("stopped")
                return False
            try:
                self.source.open()
            except (SourceError, SourceDisconnected) as exc:
                self.on_event(f"reconnect {attempt}/{self.retries} failed: {exc}")
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.reconnects += 1
            self.on_event(f"reconnected to {self.source.description} (try {attempt})")
            return True
        self._finish(f"source lost: {why}; gave up after {self.retries} reconnect tries", failed=True)
        return False
