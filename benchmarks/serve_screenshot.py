"""The README's screenshot of the `fer-edge live --serve` page, taken in headless Chromium.

    .venv/bin/python benchmarks/serve_screenshot.py [--out docs/live_serve.png] [--seconds 12]

The video is made from the shipped public-domain portrait (fer_edge/assets/samples/astronaut.jpg),
panned, zoomed and mirrored over a background, because the research datasets in ../shared may
not be redistributed. Needs Chromium (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the Chromium driver and the live-test helpers


def portrait_video(path: Path, seconds: float, fps: float = 15.0) -> None:
    import cv2

    from fer_edge.shipped import sample_image
    from test_live_support import background

    face = cv2.imread(str(sample_image()))  # BGR, as the video writer wants
    bg = cv2.cvtColor(background(), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for t in range(int(seconds * fps)):
        phase = t / fps
        size = int(230 + 40 * np.sin(phase * 0.9))
        img = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
        if int(phase / 4) % 2:
            img = img[:, ::-1]
        x = int(200 + 120 * np.sin(phase * 0.5))
        y = int(120 + 30 * np.cos(phase * 0.7))
        frame = bg.copy()
        frame[y:y + size, x:x + size] = img
        writer.write(frame)
    writer.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "live_serve.png"))
    ap.add_argument("--seconds", type=float, default=12.0, help="how long the page runs before the shot")
    args = ap.parse_args()

    from browser_support import Chromium, find_chromium
    from serve_support import start_cli

    exe = find_chromium()
    if exe is None:
        sys.exit("error: Chromium not found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "portrait.avi"
        portrait_video(video, args.seconds + 20)
        proc, port = start_cli(video)
        try:
            with Chromium(exe, width=1280, height=1075) as page:
                page.navigate(f"http://127.0.0.1:{port}/")
                page.wait_for("document.querySelectorAll('#faces .face').length")
                time.sleep(args.seconds)
                png = page.screenshot()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp.png")
    tmp_out.write_bytes(small_png(png))
    tmp_out.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB; {len(png) / 1024:.0f} KiB before the palette)")


def small_png(png: bytes) -> bytes:
    """The screenshot with a 256-colour palette (a fifth of the size; the page is mostly flat colour)."""
    import io

    try:
        from PIL import Image  # comes with matplotlib (the train extra)
    except ImportError:
        return png
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(
        256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


if __name__ == "__main__":
    main()
