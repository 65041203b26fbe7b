"""`fer-edge live`: capture -> detect/track -> crop -> classify -> smooth -> overlay, JSON lines or a web page."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

from ..bundle import FaceSpec
from ..errors import ConfigError
from .capture import CaptureThread
from .pipeline import FaceClassifier, FacePipeline
from .records import frame_record, stats_record, to_line
from .sources import FrameSource, open_source
from .stats import FpsMeter, StageTimes, Stopwatch, Summary


STALL_WARN_S = 10.0  # say so when a source has delivered nothing for this long


@dataclass
class LiveOptions:
    source: str = "0"
    detector: str = "auto"  # YuNet when its model file is found, else OpenCV's Haar cascade
    score_threshold: float = 0.6
    detect_every: int = 1
    detect_width: int | None = 320  # detector input width (0/None: full frame); picamera: lores width
    resolution: tuple[int, int] = (640, 480)  # camera request
    single_face: bool = False
    smoothing: str = "ema:0.5"
    headless: bool = False
    show_crop: bool = False
    record: str | None = None
    seconds: float | None = None
    frames: int | None = None
    reconnect_retries: int = 5
    reconnect_backoff_s: float = 0.5
    serve: str | None = None  # "[HOST:]PORT": the live web page (no window; files play at their own rate)
    token: str | None = None  # protects every --serve endpoint (default: $FER_EDGE_TOKEN)


@dataclass
class LiveResult:
    summary: Summary
    error: str = ""  # set when the source was lost for good: the CLI exits non-zero
    recorded: str | None = None


def _validate(opts: LiveOptions) -> None:
    if opts.seconds is not None and opts.seconds <= 0:
        raise ConfigError(f"--seconds must be > 0, got {opts.seconds}")
    if opts.frames is not None and opts.frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {opts.frames}")
    if opts.detect_width is not None and opts.detect_width != 0 and opts.detect_width < 64:
        raise ConfigError(f"--detect-width must be >= 64 (or 0 for the full frame), got {opts.detect_width}")
    if opts.reconnect_retries < 0:
        raise ConfigError(f"--reconnect must be >= 0, got {opts.reconnect_retries}")
    if opts.serve is not None:
        from .server import parse_bind, resolve_token

        resolve_token(opts.token, "127.0.0.1")  # checks a given token's form; none is needed on loopback
        parse_bind(opts.serve)
    elif opts.token is not None:
        raise ConfigError("--token protects the web page: it needs --serve [HOST:]PORT")


def run_live(classifier: FaceClassifier, opts: LiveOptions, detector=None, source: FrameSource | None = None,
             out: IO[str] | None = None, err: IO[str] | None = None, server=None) -> LiveResult:
    """Run until --frames/--seconds, end of file, q/Esc, Ctrl-C or a lost source; return the summary.

    ``classifier``: a loaded bundle (``fer_edge.runtime.load``), built once by the caller.
    ``detector``/``source``/``server`` default to the ones named in ``opts`` (tests pass their own;
    a ``LiveServer`` passed in is started here unless it already is, and closed at the end).
    """
    from ..face import create_detector
    from .output import Display, Recorder
    from .overlay import draw

    _validate(opts)
    out = out or sys.stdout
    err = err or sys.stderr
    manifest = getattr(classifier, "manifest", None)
    face_spec = manifest.face if manifest is not None else FaceSpec()
    input_spec = manifest.input if manifest is not None else None
    det = detector or create_detector(opts.detector, score_threshold=opts.score_threshold)
    src = source or open_source(opts.source, detect_width=opts.detect_width or None, resolution=opts.resolution)
    pipeline = FacePipeline(classifier, det, face_spec, detect_every=opts.detect_every,
                            single_face=opts.single_face, smoothing=opts.smoothing)
    labels = pipeline.labels

    def event(msg: str) -> None:
        print(f"live: {msg}", file=err, flush=True)

    capture = CaptureThread(src, retries=opts.reconnect_retries, backoff_s=opts.reconnect_backoff_s, on_event=event)
    times = StageTimes()
    sw = Stopwatch(times)
    fps_meter = FpsMeter()
    model = f"{manifest.name} ({manifest.format}-{manifest.precision})" if manifest is not None else type(classifier).__name__
    summary = Summary(source=src.description, model=model)
    recorded = None
    error = ""
    stop_reason = ""
    # Everything that can fail on a user mistake fails here, before the camera is opened.
    recorder = Recorder(opts.record, 25.0) if opts.record else None
    display = None
    if server is None and opts.serve is not None:
        server = _make_server(opts, labels, input_spec, f"{model} | {src.description}", event)
    try:
        if server is not None and getattr(server, "_httpd", None) is None:
            server.start()
            _announce(server, event)
        display = None if opts.headless or server is not None else Display()
        capture.start()
    except BaseException:
        if display is not None:
            display.close()
        if recorder is not None:
            recorder.close(keep=False)
        if server is not None:
            server.close()
        raise
    file_fps = getattr(src, "fps", 0.0) or 25.0  # a file's own rate; cameras: 25
    if recorder is not None:
        recorder.fps = file_fps
    # Served files play at their own rate (a viewer sees real time); cameras set their own pace.
    pace_s = 1.0 / file_fps if server is not None and not src.is_live else 0.0
    restore = _sigterm_as_interrupt()
    t0 = time.perf_counter()
    try:
        deadline = None if opts.seconds is None else t0 + opts.seconds
        fps = 0.0
        last_frame_at, stall_warnings = t0, 0
        last_stats_at = t0
        while True:
            if opts.frames is not None and summary.frames >= opts.frames:
                stop_reason = f"--frames {opts.frames} reached"
                break
            if pace_s:
                wait = t0 + summary.frames * pace_s - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            with sw("capture"):
                timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.perf_counter()))
                frame = capture.get(timeout=timeout)
            if frame is None:
                if capture.finished:
                    stop_reason = capture.end_reason
                    if capture.failed:
                        error = capture.end_reason
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    stop_reason = f"--seconds {opts.seconds:g} reached"
                    break
                times.discard_frame()  # a wait with no frame is not a frame
                waited = time.perf_counter() - last_frame_at
                if waited >= STALL_WARN_S * (stall_warnings + 1):
                    stall_warnings += 1
                    event(f"no frame from {src.description} for {waited:.0f} s (still waiting; Ctrl-C to stop)")
                continue
            last_frame_at = time.perf_counter()
            stall_warnings = 0
            faces = pipeline.process(frame.image, frame.detect_image, frame.detect_scale, sw)
            fps = fps_meter.tick()
            with sw("draw"):
                if display is not None or recorder is not None or server is not None:
                    stage_last = {s: times.last(s) for s in times.stages}
                    draw(frame.image, faces, fps, stage_last, input_spec if opts.show_crop else None)
                    if recorder is not None:
                        recorder.write(frame.image)
                    if display is not None and not display.show(frame.image):
                        stop_reason = "window closed"
                if opts.headless or server is not None:
                    line = to_line(frame_record(frame, summary.frames, faces, labels))
                    if opts.headless:
                        out.write(line + "\n")
                        out.flush()
                    if server is not None:
                        server.publish(frame.image, faces, line)
            times.end_frame()
            summary.frames += 1
            if faces:
                summary.frames_with_faces += 1
                summary.faces += len(faces)
            if server is not None and last_frame_at - last_stats_at >= 1.0:
                last_stats_at = last_frame_at
                server.publish_stats(stats_record(fps, times, summary.frames, capture.captured, capture.dropped))
            if stop_reason:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                stop_reason = f"--seconds {opts.seconds:g} reached"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    finally:
        summary.seconds = time.perf_counter() - t0
        capture.stop()
        restore()
        if recorder is not None:
            recorded = recorder.close(keep=summary.frames > 0)
            recorded = str(recorded) if recorded else None
        if display is not None:
            display.close()
        summary.captured = capture.captured
        summary.dropped = capture.dropped
        summary.reconnects = capture.reconnects
        summary.stop_reason = stop_reason or capture.end_reason
        summary.stages_ms = times.percentiles()
        if server is not None:  # web clients get the summary record, then the end of their streams
            server.close(to_line(summary.to_dict()))
    if opts.headless:
        out.write(to_line(summary.to_dict()) + "\n")
        out.flush()
    return LiveResult(summary=summary, error=error, recorded=recorded)


def live_from_bundle(model, opts: LiveOptions, backend: str | None = None, threads: int | None = None,
                     out: IO[str] | None = None, err: IO[str] | None = None, tta: str | None = None) -> LiveResult:
    """`fer-edge live`: checks that can fail on a user mistake run before the (slow) model load."""
    from .models import load_classifier
    from .output import check_display

    _validate(opts)
    open_source(opts.source, detect_width=opts.detect_width or None, resolution=opts.resolution)  # path/URL form
    if not opts.headless and opts.serve is None:
        check_display()
    classifier = load_classifier(model, backend=backend, threads=threads, tta=tta)
    return run_live(classifier, opts, out=out, err=err)


def _make_server(opts: LiveOptions, labels: list[str], input_spec, title: str, event):
    from .server import LiveServer, parse_bind, resolve_token

    host, port = parse_bind(opts.serve)
    token, generated = resolve_token(opts.token, host)
    if generated:
        event("no --token given for a non-loopback address: generated one (set --token or $FER_EDGE_TOKEN "
              "to choose your own)")
    return LiveServer(host, port, token=token, labels=labels, input_spec=input_spec, title=title)


def _announce(server, event) -> None:
    from .server import is_loopback

    query = f"?token={server.token}" if server.token else ""
    if not is_loopback(server.host):
        event(f"warning: serving on {server.host}:{server.port}, reachable from other machines; every "
              f"endpoint needs the token{'' if server.token else ' (none set: anyone can watch)'}")
        if server.host in ("0.0.0.0", "::"):
            event(f"open http://THIS-MACHINE:{server.port}/{query} (THIS-MACHINE: its name or address, "
                  f"e.g. {socket.gethostname()})")
    event(f"serving {server.url}{query} (Ctrl-C to stop)")


def _sigterm_as_interrupt():
    """SIGTERM (systemd stop, kill) ends the run like Ctrl-C: summary, clean camera release."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, old)
