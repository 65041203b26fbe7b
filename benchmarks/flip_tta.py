"""What horizontal-flip test-time augmentation would add to a trained model (measured, not shipped).

Averages the float Keras model's probabilities on each face and its mirror image, on the run's
validation (FER2013 PublicTest) and test (PrivateTest) selections. It costs two inferences per face.

    .venv/bin/python benchmarks/flip_tta.py --model runs/edge_long --md benchmarks/results/flip_tta.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from fer_edge.atomic import write_text  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "runs" / "edge_long"), help="a `fer-edge train` run folder")
    ap.add_argument("--md")
    args = ap.parse_args(argv)

    from fer_edge.data import provenance_dataset, select_role
    from fer_edge.export.source import load_source

    src = load_source(args.model)
    ds = provenance_dataset(src.data, src.run_dir)
    lines = ["# Horizontal-flip test-time augmentation (float Keras model; not used by the runtime)", "",
             f"Model: `{args.model}`.", "", "| split | n | plain accuracy % | flip-averaged accuracy % | gain pp |",
             "|---|---|---|---|---|"]
    for name in ("val", "test"):
        part = select_role(ds, src.data, name)
        x = src.input.preprocess(part.images)
        plain = src.model.predict(x, batch_size=256, verbose=0)
        mirrored = src.model.predict(x[:, :, ::-1], batch_size=256, verbose=0)
        a = float(np.mean(plain.argmax(1) == part.labels))
        b = float(np.mean((plain + mirrored).argmax(1) == part.labels))
        lines.append(f"| {name} ({src.data.get(name)}) | {len(x)} | {a * 100:.2f} | {b * 100:.2f} | {(b - a) * 100:+.2f} |")
    lines += ["", f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Command: `python benchmarks/flip_tta.py "
              f"--model {args.model}" + (f" --md {args.md}`" if args.md else "`"), ""]
    text = "\n".join(lines)
    print(text)
    if args.md:
        write_text(args.md, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
