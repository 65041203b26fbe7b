"""`fer-edge live --serve` in a real browser: headless Chromium (Debian's package) opens the page while
the command runs on a video of real faces (JAFFE); the page's labels must equal `--headless` JSONL.

Set FER_EDGE_SCREENSHOT=path.png to keep a screenshot of the page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser_support import Chromium, find_chromium
from serve_support import start_cli
from test_live_support import make_expression_video

VIDEO_SECONDS, VIDEO_FPS = 16.0, 10.0

# What the page shows, read in one go: the frame number of the face cards and each card's data.
READ_FACES = """(() => {
  const box = document.querySelector('#faces');
  if (!box || !box.dataset.frame) return null;
  return {frame: Number(box.dataset.frame),
          faces: [...box.querySelectorAll('.face')].map(c => ({
            id: Number(c.dataset.id), label: c.dataset.label, score: Number(c.dataset.score),
            frame: Number(c.dataset.frame), shown: c.querySelector('.label').textContent,
            crop: c.querySelector('.crop').naturalWidth}))};
})()"""

# A small fingerprint of what the <img> shows now (same origin, so the canvas may read it).
IMAGE_HASH = """(() => {
  const img = document.querySelector('#video');
  if (!img || !img.naturalWidth) return null;
  const c = document.createElement('canvas');
  c.width = 64; c.height = 48;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0, 64, 48);
  const d = ctx.getImageData(0, 0, 64, 48).data;
  let h = 0;
  for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) >>> 0;
  return h;
})()"""

CHART_INK = """(() => {
  const c = document.querySelector('#scores-chart');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let coloured = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] && Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 60) coloured++;
  return coloured;
})()"""


@pytest.fixture(scope="module")
def chromium():
    exe = find_chromium()
    if exe is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium; or set FER_EDGE_CHROMIUM)")
    return exe


@pytest.fixture(scope="module")
def video(jaffe_dir, face_weights, tmp_path_factory):
    path = tmp_path_factory.mktemp("browser") / "expressions.avi"
    make_expression_video(path, jaffe_dir, seconds=VIDEO_SECONDS, fps=VIDEO_FPS)
    return path


def headless_records(video: Path) -> dict[int, dict]:
    exe = Path(sys.executable).with_name("fer-edge")
    proc = subprocess.run([str(exe), "live", "--source", str(video), "--headless", "--threads", "1"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(s) for s in proc.stdout.splitlines()]
    assert lines[-1]["type"] == "summary" and lines[-1]["frames"] == int(VIDEO_SECONDS * VIDEO_FPS)
    return {r["frame"]: r for r in lines[:-1]}


def test_live_page_in_chromium_matches_headless(chromium, video):
    reference = headless_records(video)
    proc, port = start_cli(video)
    try:
        with Chromium(chromium, width=1280, height=1130) as page:
            page.navigate(f"http://127.0.0.1:{port}/")
            # the page loads: its title names the shipped model, the video shows 640x480 frames
            title = page.wait_for("document.title.startsWith('fer-edge live:') && document.title")
            assert "tflite-int8" in title
            assert page.wait_for("document.querySelector('#video').naturalWidth") == 640
            # the image updates
            first = page.wait_for(IMAGE_HASH)
            time.sleep(1.0)
            assert page.evaluate(IMAGE_HASH) not in (None, first)
            # labels appear and equal the --headless records of the same frames
            page.wait_for("document.querySelectorAll('#faces .face').length")
            compared, labels = 0, set()
            for _ in range(8):
                shown = page.evaluate(READ_FACES)
                ref = reference[shown["frame"]]
                want = sorted((f["id"], f["label"], f["score"]) for f in ref["faces"])
                got = sorted((f["id"], f["label"], f["score"]) for f in shown["faces"])
                assert got == want, (shown["frame"], got, want)
                assert all(f["frame"] == shown["frame"] and f["shown"] == f["label"] for f in shown["faces"])
                compared += bool(got)
                labels |= {f["label"] for f in shown["faces"]}
                time.sleep(0.7)
            assert compared >= 6, compared
            # the crop view, the charts and the live numbers
            assert page.wait_for("[...document.querySelectorAll('#faces .crop')].every(i => i.naturalWidth === 96)")
            assert page.evaluate(CHART_INK) > 50
            assert float(page.evaluate("document.querySelector('#fps').textContent")) > 0
            assert page.evaluate("document.querySelectorAll('#legend .item').length") == 7
            shot = os.environ.get("FER_EDGE_SCREENSHOT")
            if shot:
                Path(shot).write_bytes(page.screenshot())
            # the end of the video ends the page's stream with the summary
            ended = page.wait_for("document.querySelector('#state').textContent.startsWith('ended:') && "
                                  "document.querySelector('#state').textContent", timeout=VIDEO_SECONDS + 30)
            assert "end of file" in ended and f"{int(VIDEO_SECONDS * VIDEO_FPS)} frames" in ended
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    print(f"compared {compared} samples with the --headless records; labels seen: {sorted(labels)}")
