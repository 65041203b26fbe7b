"""Peak memory of one training epoch: streamed from a shard cache vs read into RAM, as the dataset grows.

    .venv/bin/python benchmarks/stream_memory.py                       # 10k and 100k images (the full run)
    .venv/bin/python benchmarks/stream_memory.py --sizes 200 2000 --out /tmp/stream_memory_small.md

For each size N it generates an image folder of N faces (<root>/{train,test}/<class>/*.png,
10% test; FER2013's 48x48 faces, each copy shifted/flipped/noised so no two files are equal),
then in fresh processes, each timed and measured for peak RSS (``wait4``'s ru_maxrss):
  1. ``fer-edge data prepare GEN --out CACHE --shards --size 48``;
  2. ``fer-edge train`` one epoch of a tiny plain CNN (recipe written below) streaming from CACHE;
  3. the same epoch reading the image folder into RAM (today's path), unless --no-in-ram.
The faces are already cropped (like FER2013's image-folder re-pack), so prepare runs without
--detect-faces; tests/test_data_shards.py covers detection. Writes a markdown table to --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_edge.atomic import atomic_file  # noqa: E402
from fer_edge.labels import FER7  # noqa: E402

RECIPE = """
name = "stream_memory_tiny"
description = "benchmarks/stream_memory.py: a tiny plain CNN, one epoch"
[data]
labels = "fer7"
protocol = "p"
[data.protocols.p]
type = "fixed"
label = "train less a 5% holdout / test"
train = { split = "train", holdout = { fraction = 0.05, seed = 0, part = "rest" } }
val = { split = "train", holdout = { fraction = 0.05, seed = 0, part = "holdout" } }
test = { split = "test" }
[input]
size = [40, 40]
color = "gray"
[model]
builder = "plain_cnn"
widths = [8, 16]
convs = 1
normalize = "unit"
head = "linear"
[train]
seed = 0
epochs = 1
batch_size = 64
optimizer = "adam"
lr = 0.001
[augment]
hflip = true
[report]
tsne_samples = 50
"""


def source_faces() -> tuple[np.ndarray, np.ndarray]:
    from fer_edge import paths
    from fer_edge.data import load_dataset

    csv = paths.data_path("fer2013", "fer2013.csv.gz", required=True)
    ds = load_dataset(csv)
    return ds.images, ds.labels


def generate(folder: Path, n: int, faces: np.ndarray, labels: np.ndarray, seed: int = 0) -> None:
    import cv2

    rng = np.random.default_rng(seed)
    n_test = n // 10
    pick = rng.integers(0, len(faces), n)
    for i, j in enumerate(pick):
        face = np.roll(faces[j], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        if rng.random() < 0.5:
            face = face[:, ::-1]
        face = np.clip(face.astype(np.int16) + rng.integers(-3, 4, face.shape), 0, 255).astype(np.uint8)
        out = folder / ("test" if i < n_test else "train") / FER7[labels[j]]
        out.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / f"{i:07d}.png"), face)


def measured(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of a child process.

    Linux carries the parent's RSS high-water mark into an exec'd child's ru_maxrss, so this
    process stays small: the FER2013 faces are loaded by the --generate child, never here."""
    t0 = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}\n{out.decode()[-3000:]}")
    return secs, usage.ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--workdir", type=Path, default=None, help="Where the generated data goes (default: a temp folder).")
    ap.add_argument("--keep", action="store_true", help="Keep the generated folders and caches.")
    ap.add_argument("--no-in-ram", action="store_true", help="Skip the read-into-RAM comparison.")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stream_memory.md")
    ap.add_argument("--generate", nargs=2, metavar=("N", "FOLDER"), help=argparse.SUPPRESS)  # the child's job
    args = ap.parse_args()
    if args.generate:
        generate(Path(args.generate[1]), int(args.generate[0]), *source_faces())
        return

    fer = [sys.executable, "-m", "fer_edge"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fer-edge-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    recipe = work / "stream_memory_tiny.toml"
    recipe.write_text(RECIPE)
    rows = []
    try:
        for n in args.sizes:
            gen, cache = work / f"faces{n}", work / f"cache{n}"
            shutil.rmtree(gen, ignore_errors=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--generate", str(n), str(gen)], check=True)
            gen_s = time.perf_counter() - t0
            prep_s, prep_mb = measured(fer + ["data", "prepare", str(gen), "--out", str(cache), "--shards",
                                              "--size", "48", "--overwrite", "--json"])
            cache_mb = sum(f.stat().st_size for f in cache.iterdir()) / 2**20
            train_s, train_mb = measured(fer + ["train", "--recipe", str(recipe), "--data", str(cache),
                                                "--out", str(work / f"run-stream{n}"), "--overwrite"])
            row = {"n": n, "gen_s": gen_s, "prep_s": prep_s, "prep_mb": prep_mb, "cache_mb": cache_mb,
                   "stream_s": train_s, "stream_mb": train_mb}
            if not args.no_in_ram:
                row["ram_s"], row["ram_mb"] = measured(fer + ["train", "--recipe", str(recipe), "--data", str(gen),
                                                              "--out", str(work / f"run-ram{n}"), "--overwrite"])
            rows.append(row)
            print(row, flush=True)
            if not args.keep:
                shutil.rmtree(gen, ignore_errors=True)
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    write(args, rows)


def write(args, rows) -> None:
    load = os.getloadavg()
    lines = [
        "# Peak memory of one training epoch: streamed shard cache vs image folder in RAM",
        "",
        f"Command: `.venv/bin/python benchmarks/stream_memory.py {' '.join(sys.argv[1:])}`".rstrip() + "",
        "",
        f"Run {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} on {os.cpu_count()} CPUs, "
        f"load average at the end {load[0]:.1f}. Each step is a fresh process; peak RSS is its ru_maxrss.",
        "Data: generated image folders of 48x48 FER2013 faces (10% test); model: a tiny plain CNN at 40x40, "
        "one epoch, batch 64 (recipe in the script).",
        "",
        "| images | prepare --shards: s / peak MiB | cache MiB | train from shards: s / peak MiB |"
        + (" train from folder in RAM: s / peak MiB |" if rows and "ram_mb" in rows[0] else ""),
        "|---|---|---|---|" + ("---|" if rows and "ram_mb" in rows[0] else ""),
    ]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['prep_s']:.0f} / {r['prep_mb']:.0f} | {r['cache_mb']:.0f} | "
                     f"{r['stream_s']:.0f} / {r['stream_mb']:.0f} |"
                     + (f" {r['ram_s']:.0f} / {r['ram_mb']:.0f} |" if "ram_mb" in r else ""))
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        lines += ["", f"Streaming: peak RSS {b['stream_mb'] - a['stream_mb']:+.0f} MiB from {a['n']:,} to {b['n']:,} "
                      "images" + (f"; in RAM: {b['ram_mb'] - a['ram_mb']:+.0f} MiB." if "ram_mb" in a else ".")]
    with atomic_file(args.out) as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
