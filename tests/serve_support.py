"""Helpers for the `live --serve` tests (no tests here): a frame source, HTTP stream readers, and a
live run in a background thread with its server on a free loopback port."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_edge.face import Face
from fer_edge.live import FrameSource, LiveOptions, run_live
from fer_edge.live.server import BOUNDARY, ENV_TOKEN, LiveServer
from fer_edge.live.sources import Frame
from fer_edge.shipped import sample_image
from test_live_support import CheapClassifier, background

FACE_SIZE = 160


def face_frames(n: int = 40) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """``n`` 640x480 RGB frames of the shipped public-domain portrait drifting right, and its top-left corners."""
    import cv2

    face = cv2.cvtColor(cv2.imread(str(sample_image())), cv2.COLOR_BGR2RGB)
    face = cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    bg = background()
    frames, corners = [], []
    for t in range(n):
        x, y = 60 + 5 * t, 120
        img = bg.copy()
        img[y:y + FACE_SIZE, x:x + FACE_SIZE] = face
        frames.append(img)
        corners.append((x, y))
    return frames, corners


class LoopFrames(FrameSource):
    """Pre-rendered frames in a loop. ``live=True`` runs like a camera at ``fps`` (the capture thread
    drops what the loop does not take); ``live=False`` like a file (lossless). The first frame waits
    for ``go`` so clients can connect before the run starts."""

    def __init__(self, frames, corners, total: int, fps: float = 100.0, live: bool = False,
                 go: threading.Event | None = None, on_read=None) -> None:
        self._frames, self.corners = frames, corners
        self.total, self.n = total, 0
        self.fps = fps
        self.is_live = live
        self.go = go
        self.on_read = on_read
        self.description = f"loop of {len(frames)} frames"
        self._next = 0.0

    def open(self) -> None:
        pass

    def read(self):
        if self.n == 0 and self.go is not None:
            self.go.wait(30)
        if self.on_read is not None:
            self.on_read(self.n)
        if self.n >= self.total:
            return None
        if self.is_live:  # a camera's own pace
            now = time.perf_counter()
            self._next = max(self._next, now) + 1.0 / self.fps
            time.sleep(max(0.0, self._next - now))
        i = self.n % len(self._frames)
        self.n += 1
        return Frame(self.n - 1, time.time(), self._frames[i].copy(), self._frames[i], (1.0, 1.0))

    def close(self) -> None:
        pass


class FollowDetector:
    """Finds the pasted portrait where the source put it (the server tests are about the server)."""

    name = "follow"

    def __init__(self, source: LoopFrames) -> None:
        self.source = source

    def detect(self, image):
        # the source hands its pre-rendered array itself to the detector: find which one it is
        i = next(i for i, f in enumerate(self.source._frames) if f is image)
        x, y = self.source.corners[i]
        return [Face((x + 20.0, y + 10.0, FACE_SIZE - 40.0, FACE_SIZE - 20.0), 0.99)]


@dataclass
class LiveRun:
    server: LiveServer
    source: LoopFrames
    thread: threading.Thread
    out: io.StringIO
    err: io.StringIO
    result: list = field(default_factory=list)
    error: list = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    def join(self, timeout: float = 60.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the live run did not end"
        if self.error:
            raise self.error[0]
        return self.result[0]


def start_run(total: int, fps: float = 100.0, live: bool = False, go: threading.Event | None = None,
              token: str | None = None, host: str = "127.0.0.1", headless: bool = True, on_read=None,
              frames: int | None = None, input_spec=None) -> LiveRun:
    """run_live in a thread, serving on a free port of ``host`` (started before this returns)."""
    imgs, corners = face_frames()
    src = LoopFrames(imgs, corners, total, fps=fps, live=live, go=go, on_read=on_read)
    clf = CheapClassifier()
    server = LiveServer(host, 0, token=token, labels=clf.labels, input_spec=input_spec, title="test").start()
    out, err = io.StringIO(), io.StringIO()
    run = LiveRun(server, src, None, out, err)  # type: ignore[arg-type]

    def target():
        try:
            opts = LiveOptions(source="loop", headless=headless, serve=f"{host}:0", frames=frames, smoothing="none")
            run.result.append(run_live(clf, opts, detector=FollowDetector(src), source=src, out=out, err=err,
                                       server=server))
        except BaseException as exc:  # noqa: BLE001 - re-raised in join()
            run.error.append(exc)

    run.thread = threading.Thread(target=target, name="test-live-run", daemon=True)
    run.thread.start()
    return run


def request(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            host: str = "127.0.0.1", timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP/1.0 request with ``path`` sent exactly as given (no client-side normalization)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        head = f"{method} {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        s.sendall(head.encode() + b"\r\n")
        data = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return code, hdrs, body


class StreamReader(threading.Thread):
    """Reads one streaming response to its end (or ``stop()``), keeping the raw bytes."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None, rcvbuf: int | None = None,
                 read: bool = True, sink=None) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers = port, path, headers or {}
        self.rcvbuf, self.read = rcvbuf, read
        self.sink = sink  # when given, each chunk goes to sink(chunk) instead of being kept (long soaks)
        self.data = bytearray()
        self.eof = False  # the server closed the stream (clean end)
        self.error: Exception | None = None
        self.connected = threading.Event()
        self._quit = threading.Event()
        self.sock: socket.socket | None = None

    def run(self) -> None:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if self.rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            s.settimeout(30)
            s.connect(("127.0.0.1", self.port))
            self.sock = s
            head = f"GET {self.path} HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            s.sendall(head.encode() + b"\r\n")
            self.connected.set()
            while not self._quit.is_set():
                if not self.read:
                    time.sleep(0.05)
                    continue
                chunk = s.recv(1 << 16)
                if not chunk:
                    self.eof = True
                    break
                if self.sink is not None:
                    self.sink(chunk)
                else:
                    self.data += chunk
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            self.error = exc
        finally:
            self.connected.set()

    def stop(self, reset: bool = False) -> None:
        self._quit.set()
        if self.sock is not None:
            if reset:  # vanish without a FIN: RST
                import struct

                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                self.sock.close()
            except OSError:
                pass

    @property
    def body(self) -> bytes:
        return bytes(self.data).partition(b"\r\n\r\n")[2]

    def sse_events(self) -> list[tuple[str, str]]:
        """(event name, data) of each complete event; name '' for unnamed ones."""
        out = []
        for block in self.body.decode().split("\n\n")[:-1]:
            name, data = "", []
            for line in block.split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            if data:
                out.append((name, "\n".join(data)))
        return out

    def jpegs(self) -> list[bytes]:
        parts = self.body.split(b"--" + BOUNDARY)
        out = []
        for p in parts:
            head, sep, rest = p.partition(b"\r\n\r\n")
            if sep and b"image/jpeg" in head:
                n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(rest) >= n:
                    out.append(rest[:n])
        return out

    @property
    def ended_cleanly(self) -> bool:
        return self.eof and self.body.rstrip().endswith(b"--" + BOUNDARY + b"--")


def wait_until(cond, timeout: float = 20.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())


def start_cli(video: Path, *args: str) -> tuple[subprocess.Popen, int]:
    """`fer-edge live --source VIDEO --serve 127.0.0.1:0 ARGS` (the shipped model); returns it and its port."""
    exe = Path(sys.executable).with_name("fer-edge")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop(ENV_TOKEN, None)
    # A shell's background job (`cmd &`, e.g. CI started with nohup) inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: restore the default so the Ctrl-C test means what it says.
    proc = subprocess.Popen([str(exe), "live", "--source", str(video), "--serve", "127.0.0.1:0", "--threads", "1",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"serving http://127\.0\.0\.1:(\d+)/", line)
        if m:
            return proc, int(m[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"fer-edge live --serve did not start: {proc.stderr.read()}")


def connect_disconnect_cycles(port: int, n: int) -> None:
    """Open a stream, read a little, leave (half politely, half with a reset); repeat ``n`` times."""
    for i in range(n):
        path = "/stream.mjpg" if i % 2 else "/events?stats=1"
        c = StreamReader(port, path)
        c.start()
        wait_until(lambda: len(c.data) > 0, timeout=5)
        c.stop(reset=i % 4 < 2)
        c.join(5)


def churn_in_child(port: int, n: int, timeout: float = 600) -> subprocess.Popen:
    """``connect_disconnect_cycles`` in a child process, so the memory of the clients' own threads
    does not count against the server's (the test reads the server process's RSS)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from serve_support import connect_disconnect_cycles; "
            "connect_disconnect_cycles(int(sys.argv[2]), int(sys.argv[3]))")
    return subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).resolve().parent), str(port), str(n)])


def churn_memory(rounds: int, cycles: int) -> dict:
    """A streaming run in THIS process, ``rounds`` x ``cycles`` connect/disconnect cycles from a child process;
    returns the RSS growth per round (MiB), the open files and threads before/after and what was served.
    Run it in a fresh process (``churn_memory_in_child``): in a long pytest process other tests' threads and
    allocator arenas move the RSS by several MiB while the server itself holds still."""
    import gc

    import psutil

    proc = psutil.Process()
    threads0 = threading.active_count()
    go = threading.Event()
    run = start_run(total=10**9, fps=60.0, live=True, go=go)
    go.set()
    assert churn_in_child(run.port, 40).wait(120) == 0  # warm-up: allocator pools, first encodes
    gc.collect()
    rss, fds0 = [proc.memory_info().rss], proc.num_fds()
    for _ in range(rounds):
        assert churn_in_child(run.port, cycles).wait(300) == 0
        assert wait_until(lambda: run.server.hub.count() == 0, timeout=15), run.server.status()
        gc.collect()
        rss.append(proc.memory_info().rss)
    fds1, served = proc.num_fds(), run.server.hub.served
    run.source.total = 0  # end the run
    run.join()
    wait_until(lambda: threading.active_count() <= threads0, timeout=15)
    return {"growth_mib": [(b - a) / 2**20 for a, b in zip(rss, rss[1:])], "fds": [fds0, fds1], "served": served,
            "threads": [threads0, threading.active_count()]}


def churn_memory_in_child(rounds: int, cycles: int, timeout: float = 900) -> dict:
    from test_live_support import call_in_fresh_process

    return call_in_fresh_process("serve_support", "churn_memory", rounds, cycles, timeout=timeout)
