"""Soak: >= 10,000 frames through the real detector/tracker/crop/smoothing path; memory stays flat."""

from __future__ import annotations

import gc

import numpy as np
import psutil

from fer_edge.live import FrameSource, LiveOptions, run_live
from fer_edge.live.sources import Frame
from test_live_support import CheapClassifier, Paste, background, call_in_fresh_process, load_gray, render

N_FRAMES = 10_000


class LoopSource(FrameSource):
    """Pre-rendered frames played in a loop (a face moving, then an empty stretch); samples RSS."""

    is_live = False  # lossless: every frame is processed

    def __init__(self, frames, total, sample_at):
        import cv2

        self.description = "soak loop"
        self._frames = [(f, cv2.resize(f, (320, 240), interpolation=cv2.INTER_AREA)) for f in frames]
        self.total, self.n = total, 0
        self.sample_at = set(sample_at)
        self.rss: dict[int, int] = {}
        self._proc = psutil.Process()

    def open(self):
        pass

    def read(self):
        if self.n in self.sample_at:
            gc.collect()
            self.rss[self.n] = self._proc.memory_info().rss
        if self.n >= self.total:
            return None
        image, small = self._frames[self.n % len(self._frames)]
        self.n += 1
        # fresh arrays per frame, like a camera (the pipeline draws on them)
        return Frame(self.n - 1, 0.0, image.copy(), small.copy(), (2.0, 2.0))

    def close(self):
        pass


class NullOut:
    def __init__(self):
        self.lines = 0
        self.last = ""

    def write(self, s):
        self.lines += s.count("\n")
        self.last = s

    def flush(self):
        pass


def soak(jaffe_dir: str, n_frames: int = N_FRAMES) -> dict:
    """Run the live pipeline over n_frames and return its summary and RSS samples (JSON-able)."""
    from pathlib import Path

    from fer_edge.face import create_detector

    bg = background()
    pastes = [Paste(load_gray(Path(jaffe_dir) / "KA.HA1.29.tiff", 200), "", (40, 120), (8, 2))]
    frames = [render(bg, pastes, t)[0] for t in range(30)] + [bg.copy() for _ in range(10)]
    src = LoopSource(frames, n_frames, sample_at=(1_000, n_frames))
    out = NullOut()
    result = run_live(CheapClassifier(), LiveOptions(source="soak", headless=True, detect_every=3, record=None),
                      detector=create_detector("yunet"), source=src, out=out, err=NullOut())
    s = result.summary
    return {"frames": s.frames, "dropped": s.dropped, "stop_reason": s.stop_reason, "faces": s.frames_with_faces,
            "lines": out.lines, "fps": s.fps, "rss_start": src.rss[1_000], "rss_end": src.rss[n_frames]}


def test_soak_10k_frames_memory_stays_flat(jaffe_dir, face_weights):
    # in a fresh process (+9.3 MiB once inside the long pytest process beside a training; +0.07 MiB alone)
    s = call_in_fresh_process("test_live_soak", "soak", str(jaffe_dir))
    assert s["frames"] == N_FRAMES and s["dropped"] == 0 and s["stop_reason"] == "end of file"
    assert s["faces"] == N_FRAMES * 30 // 40
    assert s["lines"] == N_FRAMES + 1
    growth_mb = (s["rss_end"] - s["rss_start"]) / 2**20
    print(f"soak: {s['frames']} frames at {s['fps']:.0f} FPS, RSS {s['rss_start'] / 2**20:.1f} -> "
          f"{s['rss_end'] / 2**20:.1f} MiB (+{growth_mb:.2f})")
    assert growth_mb < 8.0
    assert np.isfinite(s["fps"]) and s["fps"] > 0
