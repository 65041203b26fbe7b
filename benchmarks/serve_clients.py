"""Which HTTP server for `fer-edge live --serve`: the standard library's ThreadingHTTPServer (what ships,
fer_edge.live.server) against aiohttp, both fanning the same 30 FPS stream out to many loopback clients.

    pip install --target /tmp/aiohttp_site aiohttp      # kept out of the venv: not a fer-edge dependency
    .venv/bin/python benchmarks/serve_clients.py --aiohttp-path /tmp/aiohttp_site [--clients 20] [--seconds 15]

Each server runs in its own process and gets the same 640x480 frames (the shipped public-domain portrait
on a background) at --fps: it JPEG-encodes each frame once and sends it to every video client, plus one
~0.5 kB JSON record per frame to every event client; each client has a 2-frame queue that drops old
frames. The clients run in a third process (one thread each, reading as fast as they can). Measured over
--seconds after a warm-up: frames/s each client received, the server's CPU time, RSS and threads.
The aiohttp server here is the minimum needed for the same job (MJPEG + SSE), not a full port.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the frame helpers shared with the live tests

RECORD = json.dumps({"type": "frame", "t": 0.0, "frame": 0, "capture_index": 0, "faces": [
    {"id": 1, "box": [100.0, 120.0, 120.0, 140.0], "label": "happy", "score": 0.91,
     "scores": {k: 0.015 for k in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")},
     "detected": True}]})


def frames():
    from serve_support import face_frames

    return face_frames(30)[0]


def pump(publish, fps: float) -> None:
    """Call publish(frame_index) at ``fps`` forever."""
    t0, i = time.perf_counter(), 0
    while True:
        publish(i)
        i += 1
        time.sleep(max(0.0, t0 + i / fps - time.perf_counter()))


def serve_stdlib(fps: float) -> None:
    from fer_edge.live.server import LiveServer

    imgs = frames()
    server = LiveServer("127.0.0.1", 0, labels=["happy"]).start()
    print(f"ready {server.port}", flush=True)
    pump(lambda i: server.publish(imgs[i % len(imgs)], [], RECORD), fps)


def serve_aiohttp(fps: float) -> None:
    import asyncio

    import cv2
    from aiohttp import web

    imgs = frames()
    video: set[asyncio.Queue] = set()
    events: set[asyncio.Queue] = set()

    def put(q: asyncio.Queue, item) -> None:
        if q.full():
            q.get_nowait()  # drop the oldest for this client only
        q.put_nowait(item)

    def encode(img) -> bytes:
        return cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()

    async def stream(request):
        q: asyncio.Queue = asyncio.Queue(maxsize=2)
        video.add(q)
        resp = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame"})
        await resp.prepare(request)
        try:
            while True:
                jpeg = await q.get()
                await resp.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg))
                await resp.write(jpeg + b"\r\n")
        finally:
            video.discard(q)

    async def sse(request):
        q: asyncio.Queue = asyncio.Queue(maxsize=256)
        events.add(q)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            while True:
                await resp.write(await q.get())
        finally:
            events.discard(q)

    async def main():
        app = web.Application()
        app.router.add_get("/stream.mjpg", stream)
        app.router.add_get("/events", sse)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        print(f"ready {port}", flush=True)
        loop = asyncio.get_running_loop()
        t0, i = loop.time(), 0
        data = f"data: {RECORD}\n\n".encode()
        while True:
            jpeg = await loop.run_in_executor(None, encode, imgs[i % len(imgs)])  # off the event loop
            for q in list(video):
                put(q, jpeg)
            for q in list(events):
                put(q, data)
            i += 1
            await asyncio.sleep(max(0.0, t0 + i / fps - loop.time()))

    asyncio.run(main())


def clients(port: int, n: int, warmup: float, seconds: float) -> None:
    """n video + n event clients; prints the frames/s each received during the window."""
    import socket

    counts = [0] * (2 * n)

    def read(k: int, path: str, marker: bytes) -> None:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        tail = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                return
            window = tail + chunk
            counts[k] += window.count(marker) - tail.count(marker)
            tail = window[-64:]

    for k in range(2 * n):
        path, marker = ("/stream.mjpg", b"image/jpeg") if k < n else ("/events", b"data: ")
        threading.Thread(target=read, args=(k, path, marker), daemon=True).start()
    time.sleep(warmup)
    start = list(counts)
    print("window", flush=True)
    time.sleep(seconds)
    rates = [(c - s) / seconds for c, s in zip(counts, start)]
    print(json.dumps({"video": rates[:n], "events": rates[n:]}), flush=True)


def measure(kind: str, fps: float, args) -> dict:
    import psutil

    env = {**os.environ}
    if kind == "aiohttp":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.aiohttp_path, env.get("PYTHONPATH")]))
    server = subprocess.Popen([sys.executable, __file__, "--role", kind, "--fps", str(fps)],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(server.stdout.readline().split()[1])
        proc = psutil.Process(server.pid)
        client = subprocess.Popen([sys.executable, __file__, "--role", "clients", "--port", str(port),
                                   "--clients", str(args.clients), "--seconds", str(args.seconds)],
                                  stdout=subprocess.PIPE, text=True)
        assert client.stdout.readline().strip() == "window"
        cpu0, t0 = proc.cpu_times(), time.perf_counter()
        rates = json.loads(client.stdout.readline())
        cpu1, t1 = proc.cpu_times(), time.perf_counter()
        rss, threads = proc.memory_info().rss, proc.num_threads()
        client.wait(30)
    finally:
        server.kill()
        server.wait(30)
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
    v, e = sorted(rates["video"]), sorted(rates["events"])
    return {"server": kind, "fps": fps, "video_min": v[0], "video_median": v[len(v) // 2], "events_min": e[0],
            "events_median": e[len(e) // 2], "cpu_percent": 100 * cpu, "rss_mib": rss / 2**20, "threads": threads}


def import_ms(module: str, path: str | None) -> float:
    env = {**os.environ, **({"PYTHONPATH": path} if path else {})}
    code = f"import time; t=time.perf_counter(); import {module}; print((time.perf_counter()-t)*1000)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                 check=True).stdout) for _ in range(5)]
    return sorted(runs)[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", default="bench", choices=["bench", "stdlib", "aiohttp", "clients"])
    ap.add_argument("--aiohttp-path", default=None, help="a folder holding aiohttp (pip install --target)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--fps", type=float, nargs="+", default=[30.0], help="publish rates to measure (one row each)")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve_clients.md"))
    args = ap.parse_args()
    if args.role == "stdlib":
        return serve_stdlib(args.fps[0])
    if args.role == "aiohttp":
        return serve_aiohttp(args.fps[0])
    if args.role == "clients":
        return clients(args.port, args.clients, 3.0, args.seconds)

    load0 = os.getloadavg()[0]
    kinds = ["stdlib"] + (["aiohttp"] if args.aiohttp_path else [])
    rows = [measure(k, fps, args) for fps in args.fps for k in kinds]
    load1 = os.getloadavg()[0]
    cmd = "python benchmarks/serve_clients.py " + " ".join(a for a in sys.argv[1:])
    lines = [
        "# `live --serve`: stdlib ThreadingHTTPServer vs aiohttp, many loopback clients", "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (shared: load average {load0:.1f} before, {load1:.1f} after), Python {platform.python_version()}.",
        f"Command: `{cmd}`", "",
        f"{args.clients} video (MJPEG) + {args.clients} event (SSE) clients, frames published at the given rate "
        f"(640x480, JPEG quality 80, encoded once per frame), {args.seconds:g} s window after 3 s warm-up. "
        "Frames/s = what each client received; CPU = the server process (100% = one core).", "",
        "| server | published FPS | video FPS per client, min / median | events/s per client, min / median | server CPU | RSS MiB | threads |",
        "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['server']} | {r['fps']:g} | {r['video_min']:.1f} / {r['video_median']:.1f} | {r['events_min']:.1f} / "
                     f"{r['events_median']:.1f} | {r['cpu_percent']:.0f}% | {r['rss_mib']:.0f} | {r['threads']} |")
    lines.append("")
    lines.append(f"Import time (median of 5 fresh processes): http.server {import_ms('http.server', None):.0f} ms"
                 + (f", aiohttp {import_ms('aiohttp', args.aiohttp_path):.0f} ms" if args.aiohttp_path else "") + ".")
    if args.aiohttp_path:
        size = sum(f.stat().st_size for f in Path(args.aiohttp_path).rglob("*") if f.is_file())
        dists = sorted(p.name.split("-")[0] for p in Path(args.aiohttp_path).glob("*.dist-info"))
        lines.append(f"aiohttp install: {len(dists)} distributions ({', '.join(dists)}), {size / 2**20:.1f} MiB "
                     "(`pip install --target`); the standard library server adds nothing.")
    lines.append("")
    from fer_edge.atomic import atomic_file

    with atomic_file(args.out) as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
