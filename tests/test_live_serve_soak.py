"""Soak of `live --serve`: 10,000 frames with a page's two streams connected throughout while other
clients connect and leave (politely or with a reset) the whole time; memory, threads, sockets stay flat.

    .venv/bin/python -m pytest -m slow tests/test_live_serve_soak.py -s
"""

from __future__ import annotations

import gc
import json
import threading

import psutil
import pytest

from fer_edge.live.server import BOUNDARY
from serve_support import StreamReader, churn_in_child, start_run, wait_until
from test_live_serve import _threads

N_FRAMES = 10_000


class VideoCounter:
    """Counts MJPEG parts as they stream by, keeping only a short tail (the test's memory stays flat)."""

    def __init__(self) -> None:
        self.frames, self._tail = 0, b""

    def __call__(self, chunk: bytes) -> None:
        window = self._tail + chunk
        self.frames += window.count(b"Content-Type: image/jpeg") - self._tail.count(b"Content-Type: image/jpeg")
        self._tail = window[-64:]

    @property
    def ended(self) -> bool:
        return self._tail.rstrip().endswith(b"--" + BOUNDARY + b"--")


class EventChecker:
    """Parses the event stream as it comes: frame numbers must rise; keeps the last record only."""

    def __init__(self) -> None:
        self.frames, self.last, self.in_order = 0, None, True
        self._buf, self._prev = b"", -1

    def __call__(self, chunk: bytes) -> None:
        *events, self._buf = (self._buf + chunk).split(b"\n\n")
        for ev in events:
            if ev.startswith(b"data: "):
                rec = json.loads(ev[6:])
                if rec["type"] == "frame":
                    self.in_order &= rec["frame"] > self._prev
                    self._prev = rec["frame"]
                    self.frames += 1
                self.last = rec


@pytest.mark.slow
def test_soak_10k_frames_with_clients_memory_stays_flat():
    before = _threads()
    proc = psutil.Process()
    rss: dict[int, int] = {}
    fds: dict[int, int] = {}

    def sample(n):
        if n % 1_000 == 0:
            gc.collect()
            rss[n], fds[n] = proc.memory_info().rss, proc.num_fds()

    go = threading.Event()
    # lossless (every frame is served); no --headless lines kept in memory here
    run = start_run(total=N_FRAMES, fps=200.0, go=go, on_read=sample, headless=False)
    video, events = VideoCounter(), EventChecker()
    page = [StreamReader(run.port, "/stream.mjpg", sink=video), StreamReader(run.port, "/events?stats=1", sink=events)]
    for c in page:
        c.start()
    assert wait_until(lambda: run.server.hub.count() == 2)
    churner = churn_in_child(run.port, 10**6)  # other clients come and go until the run ends
    go.set()
    result = run.join(timeout=600)
    churner.terminate()
    churner.wait(30)
    cycles = [run.server.hub.served - 2]
    for c in page:
        c.join(15)
    s = result.summary
    growth_mb = (rss[N_FRAMES] - rss[1_000]) / 2**20
    print(f"serve soak: {s.frames} frames at {s.fps:.0f} FPS, {cycles[0]} connect/disconnect cycles, "
          f"{video.frames} JPEGs and {events.frames} frame records to the page, RSS "
          f"{rss[1_000] / 2**20:.1f} -> {rss[N_FRAMES] / 2**20:.1f} MiB (+{growth_mb:.2f}), "
          f"fds {fds[1_000]} -> {fds[N_FRAMES]}; RSS MiB by 1,000 frames: {[round(v / 2**20, 1) for _, v in sorted(rss.items())]}")
    assert s.frames == N_FRAMES and s.stop_reason == "end of file"
    assert growth_mb < 4.0
    assert fds[N_FRAMES] <= fds[1_000] + 4
    assert cycles[0] >= 100
    assert all(c.eof and c.error is None for c in page) and video.ended
    assert events.in_order and events.frames >= 0.95 * N_FRAMES and N_FRAMES >= video.frames >= 0.5 * N_FRAMES
    assert events.last == {**s.to_dict(), "stages_ms": events.last["stages_ms"]}  # the summary ends the stream
    assert wait_until(lambda: run.server.hub.count() == 0 and _threads() <= before, timeout=15)
