"""TFLite int8 / fp32 single-image latency (1 thread) of the edge architecture at several input sizes.

Why: issue 5 asks for int8 <= 0.5x fp32. This checks whether a larger input (a bigger share of
convolution work) would get the edge model's architecture there. Weights are the ImageNet backbone's
(untrained head): latency does not depend on the weights, only on the graph. Each size is exported
the way `fer-edge convert` does (gray->RGB fold), calibrated on 50 random images (timing only), and
fp32 and int8 are timed interleaved in this process (fer_edge.bench.measure.interleaved).

    .venv/bin/python benchmarks/int8_ratio_by_input.py --sizes 64 80 96 \
        --md benchmarks/results/int8_ratio_by_input.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from fer_edge.atomic import write_text  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 80, 96])
    ap.add_argument("--recipe", default=str(ROOT / "train" / "recipes" / "edge_mobilenetv2_64_long.toml"))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--md")
    args = ap.parse_args(argv)

    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from fer_edge.bench.measure import interleaved
    from fer_edge.export.simplify import simplify_for_export
    from fer_edge.training.models import build_model

    cfg = tomllib.loads(Path(args.recipe).read_text())["model"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fer-edge-ratio-") as tmp:
        fns = {}
        for size in args.sizes:
            model, _ = simplify_for_export(build_model(cfg, (size, size, 1), 7)[0])
            saved = Path(tmp) / f"s{size}"
            model.export(str(saved), verbose=False)
            for precision in ("fp32", "int8"):
                conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
                if precision == "int8":
                    rng = np.random.default_rng(0)
                    conv.optimizations = [tf.lite.Optimize.DEFAULT]
                    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                    conv.representative_dataset = lambda: (
                        [rng.uniform(0, 255, (1, size, size, 1)).astype(np.float32)] for _ in range(50))
                it = Interpreter(model_content=conv.convert(), num_threads=1)
                it.allocate_tensors()
                i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
                x = np.random.default_rng(1).uniform(0, 255, (1, size, size, 1)).astype(np.float32)
                fns[f"{size}-{precision}"] = (lambda it=it, i=i, o=o, x=x: (it.set_tensor(i, x), it.invoke(), it.get_tensor(o)))
        names = list(fns)
        res = interleaved({n: fns[n] for n in names}, args.rounds, args.calls)
        for size in args.sizes:
            f32, i8 = res["latency"][f"{size}-fp32"]["p50_ms"], res["latency"][f"{size}-int8"]["p50_ms"]
            rows.append((size, f32, i8, i8 / f32))
    lines = ["# TFLite int8 / fp32 latency by input size (edge architecture, 1 thread)", "",
             "| input | fp32 p50 ms | int8 p50 ms | int8 / fp32 |", "|---|---|---|---|"]
    lines += [f"| {s}x{s} | {a:.3f} | {b:.3f} | {r:.2f}x |" for s, a, b, r in rows]
    lines += ["", f"All sizes timed interleaved in one process ({args.rounds} rounds x {args.calls} calls), "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f}. "
              "Command: `python benchmarks/int8_ratio_by_input.py --sizes "
              + " ".join(map(str, args.sizes)) + (f" --md {args.md}`" if args.md else "`"), ""]
    text = "\n".join(lines)
    print(text)
    if args.md:
        write_text(args.md, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
