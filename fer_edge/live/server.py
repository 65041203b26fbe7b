"""`fer-edge live --serve`: the live page, MJPEG video and the per-frame JSON as Server-Sent Events.

Standard library only: ``http.server.ThreadingHTTPServer``, one thread per connection, as in
Picamera2's MJPEG example (the choice and its measurements: benchmarks/serve_clients.py, README).
The live loop never waits for a client: it hands each frame to ``LiveServer.publish`` and goes on;
a JPEG encoder thread and one thread per client (draining that client's bounded queue) do the rest.

Routes are a fixed table; nothing is read from the file system per request (the page's three
files are read from the package once, at start), so no path can reach outside it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from ..errors import ConfigError
from .broadcast import CLOSED, Hub, TooManyClients

ENV_TOKEN = "FER_EDGE_TOKEN"
DEFAULT_HOST = "127.0.0.1"
TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{8,128}")
MAX_STREAMS = 64  # open video + event streams in all (a page holds two)
MAX_CONNECTIONS = 128  # open sockets; beyond this a connection gets a 503 at once
VIDEO_QUEUE = 2  # JPEG frames queued per video client: older ones are dropped for that client
EVENT_QUEUE = 256  # records queued per event client (~8 s at 30 FPS)
SOCKET_TIMEOUT_S = 10.0  # a client that stops reading for this long is disconnected
HEARTBEAT_S = 5.0  # an idle event stream sends a comment: proxies keep it, dead clients surface
JPEG_QUALITY = 80
BOUNDARY = b"fer-edge-frame"

# path -> (handler method, content type of the static files)
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
ROUTES = {"/stream.mjpg": "_video", "/events": "_events", "/frame.jpg": "_frame", "/crop.png": "_crop",
          "/config.json": "_config", "/status.json": "_status", **{p: "_static" for p in STATIC}}


def parse_bind(text: str) -> tuple[str, int]:
    """`--serve [HOST:]PORT` -> (host, port); HOST defaults to 127.0.0.1, IPv6 goes in brackets."""
    spec = str(text).strip()
    m = re.fullmatch(r"(?:(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+)):)?(?P<port>\d{1,5})", spec)
    if m is None:
        raise ConfigError(f"--serve {text!r}: use PORT or HOST:PORT (e.g. 8080, 0.0.0.0:8080, [::]:8080)")
    port = int(m["port"])
    if port > 65535:
        raise ConfigError(f"--serve {text!r}: port must be 0..65535")
    return m["v6"] or m["host"] or DEFAULT_HOST, port


def is_loopback(host: str) -> bool:
    """True when ``host`` reaches only this machine (127.0.0.0/8, ::1, or a name resolving only to those)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def resolve_token(token: str | None, host: str) -> tuple[str | None, bool]:
    """The token that protects the server: --token, else $FER_EDGE_TOKEN, else (off loopback only)
    a random one. Returns (token, generated)."""
    token = token if token is not None else os.environ.get(ENV_TOKEN) or None
    if token is not None:
        if not TOKEN_RE.fullmatch(token):
            raise ConfigError(f"--token / ${ENV_TOKEN}: use 8-128 characters from A-Z a-z 0-9 . _ ~ - "
                              "(it travels in URLs)")
        return token, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(16), True


def _web_file(name: str) -> bytes:
    return resources.files("fer_edge.live").joinpath("web", name).read_bytes()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a client stuck in a write must not keep the process alive after close()
    app: "LiveServer"

    def process_request(self, request, client_address):
        if not self.app._enter_connection():
            try:  # over the limit: a short answer in the accepting thread, then close
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                b"Connection: close\r\n\r\ntoo many connections\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.app._leave_connection()

    def handle_error(self, request, client_address):  # a client that hangs up is not an error
        pass


class LiveServer:
    """The web view of a live run. ``start()``, then per frame ``publish()``, once a second
    ``publish_stats()``, and ``close(summary_line)`` at the end (clients get the summary, then EOF)."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 8080, token: str | None = None,
                 labels: list[str] | None = None, input_spec=None, title: str = "",
                 max_streams: int = MAX_STREAMS, jpeg_quality: int = JPEG_QUALITY) -> None:
        self.host, self.port = host, int(port)
        self.token = token
        self.labels = list(labels or [])
        self.input_spec = input_spec
        self.title = title
        self.jpeg_quality = int(jpeg_quality)
        self.hub = Hub(max_streams)
        self._static = {path: (_web_file(name), ctype) for path, (name, ctype) in STATIC.items()}
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: np.ndarray | None = None  # the newest annotated frame not yet encoded
        self._latest: tuple[int, np.ndarray, list] | None = None  # (seq, annotated RGB, faces)
        self._latest_jpeg: tuple[int, bytes] | None = None
        self._latest_stats: dict | None = None
        self._seq = 0
        self._encoding = -1  # the seq the encoder thread is encoding now
        self.encoder_skipped = 0  # frames replaced before the encoder got to them
        self._connections = 0
        self._stopping = False

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "LiveServer":
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_cls = type("_Server", (_HTTPServer,), {"address_family": family})
        try:
            self._httpd = server_cls((self.host, self.port), _Handler)
        except OSError as exc:
            raise ConfigError(f"--serve {self.host}:{self.port}: cannot listen there ({exc.strerror or exc})") from exc
        self._httpd.app = self
        self.port = self._httpd.server_address[1]
        for target, name in ((self._httpd.serve_forever, "fer-edge-http"), (self._encode_loop, "fer-edge-jpeg")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def close(self, summary_line: str | None = None, wait_s: float = 3.0) -> None:
        """Send the summary to event clients and the closing boundary to video clients, let them
        finish (up to ``wait_s``), then stop listening."""
        import time

        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        final = (False, _sse(summary_line)) if summary_line else None
        self.hub.close({"events": final})
        deadline = time.monotonic() + wait_s
        while self.hub.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()) + 1.0)

    # -- from the live loop (never blocks on a client) ----------------------------------------
    def publish(self, image: np.ndarray, faces: list, line: str) -> None:
        """One processed frame: the annotated RGB image, its faces and its JSON record line."""
        with self._cond:
            self._seq += 1
            self._latest = (self._seq, image, faces)
            if self.hub.count("video"):
                if self._pending is not None:
                    self.encoder_skipped += 1
                self._pending = image
                self._cond.notify_all()
        self.hub.publish("events", (False, _sse(line)))

    def publish_stats(self, record: dict) -> None:
        self._latest_stats = record
        self.hub.publish("events", (True, _sse(json.dumps(record), event="stats")))

    # -- internals ----------------------------------------------------------------------------
    def _enter_connection(self) -> bool:
        with self._lock:
            if self._connections >= MAX_CONNECTIONS:
                return False
            self._connections += 1
            return True

    def _leave_connection(self) -> None:
        with self._lock:
            self._connections -= 1

    def _encode(self, image: np.ndarray) -> bytes:
        import cv2

        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # JPEG encoders take BGR
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def _encode_loop(self) -> None:
        """Encode the newest frame once for all video clients (only while there are any)."""
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait(0.5)
                if self._stopping:
                    return
                image, self._pending = self._pending, None
                seq = self._latest[0] if self._latest is not None and self._latest[1] is image else -1
                self._encoding = seq
            jpeg = self._encode(image)
            with self._cond:  # cache and send together: a client arriving now gets this frame once
                if seq >= 0:
                    self._latest_jpeg = (seq, jpeg)
                self._encoding = -1
                self.hub.publish("video", jpeg)

    def request_frame(self, q) -> None:
        """A new video client: the newest JPEG now, or the newest frame encoded by the encoder thread."""
        with self._cond:
            latest, cached = self._latest, self._latest_jpeg
            if latest is None:
                return
            if cached is not None and cached[0] == latest[0]:
                q.put(cached[1])
            elif self._pending is None and self._encoding != latest[0]:  # else it is on its way
                self._pending = latest[1]
                self._cond.notify_all()

    def latest_jpeg(self) -> bytes | None:
        with self._lock:
            latest, cached = self._latest, self._latest_jpeg
        if latest is None:
            return None
        if cached is not None and cached[0] == latest[0]:
            return cached[1]
        jpeg = self._encode(latest[1])
        self._latest_jpeg = (latest[0], jpeg)
        return jpeg

    def crop_png(self, face_id: int) -> bytes | None:
        """The model's view of face ``face_id`` in the newest frame (what --show-crop draws)."""
        import cv2

        from .overlay import model_view

        with self._lock:
            latest = self._latest
        if latest is None:
            return None
        face = next((f for f in latest[2] if f.id == face_id), None)
        if face is None or face.crop is None or not face.crop.size:
            return None
        if self.input_spec is not None:
            view = model_view(face.crop, self.input_spec)
        else:  # a classifier without a manifest: the crop itself
            view = face.crop if face.crop.ndim == 3 else cv2.cvtColor(face.crop, cv2.COLOR_GRAY2RGB)
            view = cv2.resize(view, (96, 96), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
        return buf.tobytes() if ok else None

    def authorized(self, headers, query: dict[str, list[str]]) -> bool:
        if self.token is None:
            return True
        offered = list(query.get("token", []))
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        cookie = headers.get("Cookie", "")
        offered += [v for k, _, v in (c.strip().partition("=") for c in cookie.split(";")) if k == self.cookie_name]
        want = self.token.encode()
        return any(hmac.compare_digest(o.encode(), want) for o in offered)

    @property
    def cookie_name(self) -> str:
        return f"fer_edge_token_{self.port}"  # per port: cookies are shared by every port of a host

    def config(self) -> dict[str, Any]:
        from .overlay import COLORS

        return {"title": self.title, "labels": self.labels,
                "colors": {k: "#%02x%02x%02x" % c for k, c in COLORS.items() if k in self.labels},
                "crop": True}

    def status(self) -> dict[str, Any]:
        return {"frames": self._seq, "clients": {"video": self.hub.count("video"), "events": self.hub.count("events")},
                "clients_served": self.hub.served, "dropped_for_slow_clients": self.hub.dropped(),
                "encoder_skipped": self.encoder_skipped, "stats": self._latest_stats}


def _sse(data: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "fer-edge"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S  # applies to reads and writes: a client that stops reading is let go
    protocol_version = "HTTP/1.0"  # one request per connection; streams end by closing

    def log_message(self, format, *args):  # noqa: A002 - a page fetches crops several times a second
        pass

    def do_GET(self) -> None:  # noqa: N802
        app = self.server.app
        path, _, raw_query = self.path.partition("?")
        query = parse_qs(raw_query)
        if not app.authorized(self.headers, query):
            self._send(401, b"this fer-edge server needs its token: open the URL it printed at start "
                            b"(.../?token=...), or send 'Authorization: Bearer TOKEN'\n",
                       extra={"WWW-Authenticate": "Bearer"})
            return
        route = ROUTES.get(path)
        if route is None:
            self._send(404, b"not found\n")
            return
        try:
            getattr(self, route)(path, query)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, socket.timeout):
            pass  # the client left

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _static(self, path: str, query: dict) -> None:
        app = self.server.app
        body, ctype = app._static[path]
        extra = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; style-src 'self'"}
        if path == "/" and app.token is not None and query.get("token"):
            # The page's own requests (video, events, crops) then carry the token as a cookie.
            extra["Set-Cookie"] = f"{app.cookie_name}={app.token}; Path=/; HttpOnly; SameSite=Strict"
        self._send(200, body, ctype, extra)

    def _config(self, path: str, query: dict) -> None:
        self._send(200, json.dumps(self.server.app.config()).encode(), "application/json")

    def _status(self, path: str, query: dict) -> None:
        self._send(200, json.dumps(self.server.app.status()).encode(), "application/json")

    def _frame(self, path: str, query: dict) -> None:
        jpeg = self.server.app.latest_jpeg()
        if jpeg is None:
            self._send(503, b"no frame yet\n")
        else:
            self._send(200, jpeg, "image/jpeg")

    def _crop(self, path: str, query: dict) -> None:
        try:
            face_id = int(query.get("id", [""])[0])
        except ValueError:
            self._send(400, b"crop.png needs ?id=FACE_ID (an integer)\n")
            return
        png = self.server.app.crop_png(face_id)
        if png is None:
            self._send(404, b"no such face in the newest frame\n")
        else:
            self._send(200, png, "image/png")

    def _subscribe(self, channel: str, maxlen: int):
        try:
            return self.server.app.hub.subscribe(channel, maxlen)
        except TooManyClients as exc:
            self._send(503, f"{exc}\n".encode())
            return None

    def _video(self, path: str, query: dict) -> None:
        app = self.server.app
        q = self._subscribe("video", VIDEO_QUEUE)
        if q is None:
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            app.request_frame(q)  # the newest frame at once, even from a paused source
            while True:
                jpeg = q.get(timeout=HEARTBEAT_S)
                if jpeg is CLOSED:
                    self.wfile.write(b"--" + BOUNDARY + b"--\r\n")
                    return
                if jpeg is None:
                    continue
                # Header and JPEG written apart: no per-client copy of the frame (each thread's
                # large allocations would spread over glibc's per-thread arenas).
                self.wfile.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n")
                self.wfile.write(jpeg)
                self.wfile.write(b"\r\n")
        finally:
            app.hub.unsubscribe(q)

    def _events(self, path: str, query: dict) -> None:
        """SSE: each unnamed event's data is one `--headless` JSON line; ?stats=1 adds `stats` events."""
        app = self.server.app
        with_stats = query.get("stats", ["0"])[0] == "1"
        q = self._subscribe("events", EVENT_QUEUE)
        if q is None:
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Accel-Buffering", "no")  # nginx: do not buffer the stream
            self.end_headers()
            self.wfile.write(b": fer-edge live\n\n")
            if with_stats and app._latest_stats is not None:
                self.wfile.write(_sse(json.dumps(app._latest_stats), event="stats"))
            while True:
                item = q.get(timeout=HEARTBEAT_S)
                if item is CLOSED:
                    return
                if item is None:
                    self.wfile.write(b": keep-alive\n\n")
                    continue
                is_stats, data = item
                if with_stats or not is_stats:
                    self.wfile.write(data)
        finally:
            app.hub.unsubscribe(q)
