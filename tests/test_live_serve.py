"""`fer-edge live --serve`: routes, access, robustness (many, slow, vanished and repeated clients), shutdown."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bundle import InputSpec
from fer_edge.cli.main import main as cli
from fer_edge.errors import ConfigError
from fer_edge.live import LiveOptions, run_live
from fer_edge.live.broadcast import CLOSED, ClientQueue, Hub, TooManyClients
from fer_edge.live.overlay import model_view
from fer_edge.live.server import ENV_TOKEN, ROUTES, LiveServer, parse_bind, resolve_token
from serve_support import StreamReader, churn_memory_in_child, request, start_cli, start_run, wait_until
from test_live_support import CheapClassifier, make_expression_video


# -- parsing and access ------------------------------------------------------------------------
def test_parse_bind():
    assert parse_bind("8080") == ("127.0.0.1", 8080)
    assert parse_bind(" 0.0.0.0:80 ") == ("0.0.0.0", 80)
    assert parse_bind("[::1]:8080") == ("::1", 8080)
    assert parse_bind("localhost:0") == ("localhost", 0)
    for bad in ("", "abc", "1.2.3.4:", ":80", "70000", "::1:80", "host:port", "a b:80"):
        with pytest.raises(ConfigError, match="--serve"):
            parse_bind(bad)


def test_tokens(monkeypatch):
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    assert resolve_token(None, "127.0.0.1") == (None, False)
    assert resolve_token(None, "localhost") == (None, False)
    token, generated = resolve_token(None, "0.0.0.0")
    assert generated and len(token) >= 16 and token != resolve_token(None, "0.0.0.0")[0]
    assert resolve_token("my-secret-1", "0.0.0.0") == ("my-secret-1", False)
    monkeypatch.setenv(ENV_TOKEN, "from-the-env")
    assert resolve_token(None, "0.0.0.0") == ("from-the-env", False)
    assert resolve_token(None, "127.0.0.1") == ("from-the-env", False)  # a set token also guards loopback
    for bad in ("short", "has space in it", "semi;colon;here", "x" * 200):
        with pytest.raises(ConfigError, match="--token"):
            resolve_token(bad, "127.0.0.1")


def test_cli_rejects_bad_serve_options_before_loading_a_model(tmp_path):
    runner = CliRunner()
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")  # never opened: the option checks come first
    for args, msg in ((["--serve", "nope"], "--serve 'nope'"),
                      (["--token", "abcdefghij"], "--token protects the web page"),
                      (["--serve", "8080", "--token", "bad token"], "--token")):
        res = runner.invoke(cli, ["live", "--source", str(video), *args])
        assert res.exit_code != 0 and res.output.startswith("error: ") and msg in res.output, res.output
        assert "Traceback" not in res.output


def test_busy_port_is_a_clear_error():
    first = LiveServer("127.0.0.1", 0).start()
    try:
        with pytest.raises(ConfigError, match="cannot listen there"):
            LiveServer("127.0.0.1", first.port).start()
    finally:
        first.close()


def test_page_assets_ship_in_the_package_and_name_no_other_host():
    from importlib import resources

    web = resources.files("fer_edge.live").joinpath("web")
    names = sorted(p.name for p in web.iterdir())
    assert names == ["app.js", "index.html", "style.css"]
    for name in names:
        text = web.joinpath(name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name  # no CDN, no remote URL
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"fer_edge.live" = ["web/*"]' in pyproject


# -- the queues ---------------------------------------------------------------------------------
def test_client_queue_drops_oldest_and_drains_after_close():
    q = ClientQueue("video", 2)
    for i in range(10):
        q.put(i)
    assert (q.get(0), q.get(0), q.get(0)) == (8, 9, None)
    assert q.dropped == 8 and q.delivered == 2
    q.put("a")
    q.close(final="end")
    q.put("after close")
    assert (q.get(0), q.get(0), q.get(0)) == ("a", "end", CLOSED)


def test_hub_never_blocks_and_caps_clients():
    hub = Hub(max_clients=3)
    stuck = hub.subscribe("video", 2)  # never read
    reader = hub.subscribe("events", 1000)
    t0 = time.perf_counter()
    for i in range(20_000):
        hub.publish("video", i)
        hub.publish("events", i)
    assert time.perf_counter() - t0 < 2.0
    assert len(stuck) == 2 and stuck.dropped == 20_000 - 2 and len(reader) == 1000
    hub.subscribe("video", 2)
    with pytest.raises(TooManyClients):
        hub.subscribe("video", 2)
    hub.unsubscribe(stuck)
    assert hub.count() == 2 and hub.dropped() == 20_000 - 2 + 19_000
    hub.close({"events": "bye"})
    late = hub.subscribe("events", 4)  # a client arriving after close ends at once
    assert late.get(0) is CLOSED


# -- served streams ------------------------------------------------------------------------------
def _headless_lines(run):
    return run.out.getvalue().splitlines()


def test_twenty_pages_get_every_record_equal_to_headless_and_the_video():
    """20 pages at once (each: video + event stream) during a lossless run: every event client gets
    exactly the --headless JSON lines, every video client a stream of 640x480 JPEGs and a clean end."""
    go = threading.Event()
    run = start_run(total=150, fps=60.0, go=go)
    events = [StreamReader(run.port, "/events") for _ in range(20)]
    videos = [StreamReader(run.port, "/stream.mjpg") for _ in range(20)]
    with_stats = StreamReader(run.port, "/events?stats=1")
    for c in [*events, *videos, with_stats]:
        c.start()
    assert wait_until(lambda: run.server.hub.count() == 41), run.server.status()
    go.set()
    result = run.join()
    for c in [*events, *videos, with_stats]:
        c.join(15)
        assert c.error is None and c.eof, (c.path, c.error)
    lines = _headless_lines(run)
    assert len(lines) == 151 and result.summary.frames == 150
    for c in events:
        evs = c.sse_events()
        assert [name for name, _ in evs] == [""] * 151
        assert [data for _, data in evs] == lines  # the same bytes as --headless, summary included
    stats = [json.loads(d) for name, d in with_stats.sse_events() if name == "stats"]
    assert [d for name, d in with_stats.sse_events() if name == ""] == lines
    assert stats and all(s["type"] == "stats" and set(s["stages_ms"]) == {"capture", "detect", "classify", "draw"}
                         for s in stats)
    import cv2

    for c in videos:
        jpegs = c.jpegs()
        assert c.ended_cleanly and len(jpegs) >= 10, (len(jpegs), c.body[-40:])
        img = cv2.imdecode(np.frombuffer(jpegs[-1], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (480, 640, 3)
    assert run.server.hub.count() == 0


def test_slow_and_vanished_clients_never_stall_capture():
    """A camera-paced run (100 FPS) with a client that never reads and one that vanishes: the loop keeps
    up, a normal client keeps getting frames, and the slow client's own queue drops."""
    go = threading.Event()
    run = start_run(total=400, fps=100.0, live=True, go=go)
    slow_video = StreamReader(run.port, "/stream.mjpg", rcvbuf=4096, read=False)
    slow_events = StreamReader(run.port, "/events", rcvbuf=4096, read=False)
    gone = StreamReader(run.port, "/stream.mjpg")
    normal = StreamReader(run.port, "/stream.mjpg")
    for c in (slow_video, slow_events, gone, normal):
        c.start()
    assert wait_until(lambda: run.server.hub.count() == 4)
    go.set()
    t0 = time.perf_counter()
    assert wait_until(lambda: len(normal.data) > 0)
    gone.stop(reset=True)  # vanishes mid-stream without a goodbye
    result = run.join()
    took = time.perf_counter() - t0
    s = result.summary
    status = run.server.status()
    normal.join(15)
    assert s.captured == 400 and took < 12.0, (s.captured, took)
    assert s.frames >= 0.5 * s.captured, (s.frames, s.dropped)  # processing kept up with the camera
    assert len(normal.jpegs()) >= 0.25 * s.frames and normal.ended_cleanly
    assert status["dropped_for_slow_clients"] > 0
    for c in (slow_video, slow_events):
        c.stop()


def _threads():  # also used by the slow soak (tests/test_live_serve_soak.py)
    return {t for t in threading.enumerate() if t.name != "test-live-run"}


def test_connect_disconnect_leaks_nothing():
    """Short version of the soak (tests/test_live_serve_soak.py): 2 x 200 connect/disconnect cycles (from a
    child process) while a run streams, the server in a fresh process of its own (this pytest process's other
    threads and arenas moved its RSS by 5-7 MiB per round in a CI run beside a training, the server alone by
    0.1-1.0 MiB); afterwards no client, thread or socket is left, memory is flat."""
    m = churn_memory_in_child(rounds=2, cycles=200)
    assert m["served"] >= 440
    # A leak grows in both rounds; an allocator arena that grows once does not.
    assert min(m["growth_mib"]) < 2.0 and sum(m["growth_mib"]) < 8.0, m
    assert m["fds"][1] <= m["fds"][0] + 2, m
    assert m["threads"][1] <= m["threads"][0], m


def test_token_protects_every_route_and_the_page_sets_a_cookie():
    run = start_run(total=10**9, fps=30.0, live=True, token="s3cret-token", go=threading.Event())
    run.source.go.set()
    try:
        assert wait_until(lambda: run.server.status()["frames"] > 0)
        for path in [*ROUTES, "/nope", "/../../etc/passwd"]:
            for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Cookie": "fer_edge_token_1=s3cret-token"}):
                code, hdrs, body = request(run.port, path, headers)
                assert code == 401 and b"token" in body, (path, headers, code)
            assert request(run.port, path + ("&" if "?" in path else "?") + "token=wrong-one")[0] == 401
        for path in ("/", "/app.js", "/style.css", "/config.json", "/status.json", "/frame.jpg"):
            assert request(run.port, path, {"Authorization": "Bearer s3cret-token"})[0] == 200, path
        code, hdrs, _ = request(run.port, "/?token=s3cret-token")
        assert code == 200
        cookie = hdrs["set-cookie"].split(";")[0]
        assert cookie == f"fer_edge_token_{run.port}=s3cret-token" and "HttpOnly" in hdrs["set-cookie"]
        events = StreamReader(run.port, "/events", headers={"Cookie": cookie})
        video = StreamReader(run.port, "/stream.mjpg?token=s3cret-token")
        events.start()
        video.start()
        assert wait_until(lambda: len(events.sse_events()) >= 3 and len(video.jpegs()) >= 2)
    finally:
        run.source.total = 0
        run.join()


def test_stream_and_connection_limits_answer_503(monkeypatch):
    import fer_edge.live.server as srv

    run = start_run(total=10**9, fps=30.0, live=True, go=threading.Event())
    run.source.go.set()
    run.server.hub.max_clients = 2
    held = [StreamReader(run.port, "/stream.mjpg"), StreamReader(run.port, "/events")]
    try:
        for c in held:
            c.start()
        assert wait_until(lambda: run.server.hub.count() == 2)
        assert request(run.port, "/stream.mjpg")[:3:2] == (503, b"2 clients already connected (limit 2)\n")
        assert request(run.port, "/config.json")[0] == 200  # plain routes are not streams
        monkeypatch.setattr(srv, "MAX_CONNECTIONS", 2)  # the two held streams fill the sockets too
        code, _, body = request(run.port, "/config.json")
        assert code == 503 and b"too many connections" in body
    finally:
        for c in held:
            c.stop()
        run.source.total = 0
        run.join()


def test_only_fixed_routes_no_file_system():
    run = start_run(total=10**9, fps=30.0, live=True, go=threading.Event())
    run.source.go.set()
    try:
        evil = ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd",
                "/app.js/../../../../etc/passwd", "/web/app.js", "/index.html", "/fer_edge/live/server.py",
                "/../pyproject.toml", "/static/../../README.md", "/etc/passwd", "/%00", "/app.js%00.png",
                "/crop.png/../../etc/passwd", "/\\..\\..\\etc\\passwd"]
        for path in evil:
            code, _, body = request(run.port, path)
            assert code == 404, (path, code)
            assert b"root:" not in body and b"[project]" not in body and len(body) < 100
        assert request(run.port, "/", method="POST")[0] == 501
        assert request(run.port, "/", method="PUT")[0] == 501
        code, _, body = request(run.port, "/style.css?../../etc/passwd")  # a query is not a path
        assert code == 200 and body.startswith(b"/* fer-edge live page")
    finally:
        run.source.total = 0
        run.join()


def test_snapshot_crop_config_and_status():
    import cv2

    spec = InputSpec(size=(64, 64), color="gray")
    run = start_run(total=10**9, fps=30.0, live=True, go=threading.Event(), input_spec=spec)
    run.source.go.set()
    try:
        assert wait_until(lambda: run.server.status()["frames"] > 2)
        code, hdrs, body = request(run.port, "/frame.jpg")
        assert code == 200 and hdrs["content-type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
        code, hdrs, body = request(run.port, "/crop.png?id=1")
        assert code == 200 and hdrs["content-type"] == "image/png" and body.startswith(b"\x89PNG")
        assert request(run.port, "/crop.png?id=abc")[0] == 400
        assert request(run.port, "/crop.png?id=999")[0] == 404
        cfg = json.loads(request(run.port, "/config.json")[2])
        assert cfg["labels"] == CheapClassifier().labels and cfg["colors"]["happy"].startswith("#")
        status = json.loads(request(run.port, "/status.json")[2])
        assert status["frames"] > 2 and set(status["clients"]) == {"video", "events"}
    finally:
        run.source.total = 0
        run.join()
    face = run.server._latest[2][0]  # the last frame stays after the run: the crop of its face
    served = cv2.imdecode(np.frombuffer(run.server.crop_png(face.id), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(served, model_view(face.crop, spec))  # the model's view, losslessly


def test_non_loopback_warns_and_is_protected_by_a_generated_token(monkeypatch):
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    import io

    from serve_support import FollowDetector, LoopFrames, face_frames

    imgs, corners = face_frames()
    go = threading.Event()
    src = LoopFrames(imgs, corners, total=10**9, fps=30.0, live=True, go=go)
    err = io.StringIO()
    port_box = []

    def on_read(n):
        if n == 0:  # the server is up before the first read: find its port from what was printed
            m = re.search(r"serving http://0\.0\.0\.0:(\d+)/\?token=(\S+)", err.getvalue())
            port_box.append((int(m[1]), m[2]) if m else None)

    src.on_read = on_read
    result = []
    t = threading.Thread(target=lambda: result.append(run_live(
        CheapClassifier(), LiveOptions(source="loop", serve="0.0.0.0:0", headless=False, smoothing="none"),
        detector=FollowDetector(src), source=src, err=err)), daemon=True)
    t.start()
    go.set()
    assert wait_until(lambda: port_box)
    port, token = port_box[0]
    try:
        assert "warning: serving on 0.0.0.0" in err.getvalue() and "generated one" in err.getvalue()
        assert request(port, "/")[0] == 401
        assert request(port, f"/?token={token}")[0] == 200
    finally:
        src.total = 0
        t.join(30)
    assert result and result[0].summary.stop_reason == "end of file"


# -- shutdown of the real command ----------------------------------------------------------------
@pytest.fixture(scope="module")
def expression_video(jaffe_dir, face_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "expressions.avi"
    make_expression_video(path, jaffe_dir, seconds=30.0, fps=10.0)
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_closes_the_clients_cleanly(expression_video, sig):
    proc, port = start_cli(expression_video)
    try:
        events, video = StreamReader(port, "/events"), StreamReader(port, "/stream.mjpg")
        events.start()
        video.start()
        assert wait_until(lambda: len(events.sse_events()) >= 5 and len(video.jpegs()) >= 3, timeout=30)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "interrupted" in err and "frames in" in err
    for c in (events, video):
        c.join(10)
        assert c.eof and c.error is None, (c.path, c.error)
    last = json.loads(events.sse_events()[-1][1])
    assert last["type"] == "summary" and last["stop_reason"] == "interrupted"
    assert video.ended_cleanly
    assert out == ""  # without --headless nothing goes to stdout
