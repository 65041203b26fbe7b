"""Where the int8 TFLite model spends its time compared with fp32: per-op profile and isolated kernels.

Why: issue 5 asks for int8 <= 0.5x fp32 (1 thread); v1 (MobileNetV2) measured 0.53-0.59x, the plain 3x3 CNN
of v2 and later 0.26x. This shows which ops keep int8 from going further on this CPU; the isolated kernels
follow the profiled model's family (depthwise ops: MobileNetV2 shapes, else the plain CNN's).

1. Per-op profile of two bundles (fp32 and int8 of the same model). The LiteRT Python API has no op
   profiler, so the model is cut after every op (the flatbuffer's subgraph truncated, its output set
   to that op's output) and each prefix is timed; an op's time is the difference between successive
   prefixes. All prefixes of both models are timed interleaved in this process
   (fer_edge.bench.measure.interleaved), so a slow moment of the machine hits them alike. Single ops
   are noisy (a few us); sums per op type are the robust part.
2. Isolated kernels at the model's own shapes (one layer each, random weights, calibrated on random
   data): fp32 vs per-channel int8 vs per-tensor int8, the int8 ones with int8 input and output.

    .venv/bin/python benchmarks/tflite_op_profile.py \
        runs/edge_plain44_kd_sqrt/export/tflite-fp32 runs/edge_plain44_kd_sqrt/export/tflite-int8 \
        --md benchmarks/results/tflite_op_profile.md
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from fer_edge.atomic import write_text  # noqa: E402
from fer_edge.bundle import read_bundle  # noqa: E402

# (name, input shape, layer factory) at shapes that occur in the 64x64 MobileNetV2 edge model (v1)
KERNELS_MOBILENETV2 = [
    ("first conv 3x3/2, 64x64x1 -> 32", (64, 64, 1), lambda L: L.Conv2D(32, 3, strides=2, padding="same")),
    ("depthwise 3x3, 32x32x32", (32, 32, 32), lambda L: L.DepthwiseConv2D(3, padding="same")),
    ("depthwise 3x3/2, 32x32x96", (32, 32, 96), lambda L: L.DepthwiseConv2D(3, strides=2, padding="same")),
    ("depthwise 3x3, 16x16x144", (16, 16, 144), lambda L: L.DepthwiseConv2D(3, padding="same")),
    ("pointwise 1x1, 16x16 144 -> 24", (16, 16, 144), lambda L: L.Conv2D(24, 1)),
    ("pointwise 1x1, 32x32 16 -> 96", (32, 32, 16), lambda L: L.Conv2D(96, 1)),
    ("pointwise 1x1, 2x2 320 -> 1280", (2, 2, 320), lambda L: L.Conv2D(1280, 1)),
]
# ... and in the plain 3x3 CNN on 44x44 crops (v2 and later): one conv of each stage
KERNELS_PLAIN = [
    ("conv 3x3, 44x44 1 -> 32", (44, 44, 1), lambda L: L.Conv2D(32, 3, padding="same")),
    ("conv 3x3, 44x44 32 -> 32", (44, 44, 32), lambda L: L.Conv2D(32, 3, padding="same")),
    ("conv 3x3, 22x22 64 -> 64", (22, 22, 64), lambda L: L.Conv2D(64, 3, padding="same")),
    ("conv 3x3, 11x11 128 -> 128", (11, 11, 128), lambda L: L.Conv2D(128, 3, padding="same")),
    ("conv 3x3, 5x5 256 -> 256", (5, 5, 256), lambda L: L.Conv2D(256, 3, padding="same")),
]


def kernels_for(ops: dict) -> list:
    """The isolated kernels of the profiled model's family: depthwise convolutions mark MobileNetV2."""
    return KERNELS_MOBILENETV2 if any(o["op"] == "DEPTHWISE_CONV_2D" for o in ops["per_op"]["fp32"]) else KERNELS_PLAIN


def _op_names(schema) -> dict[int, str]:
    return {v: k for k, v in schema.BuiltinOperator.__dict__.items() if not k.startswith("_")}


def _prefixes(model_path: Path):
    """(op type, output shape, flatbuffer bytes of the model cut after this op) for every op."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    names = _op_names(schema)
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_path.read_bytes(), 0))
    graph = model.subgraphs[0]
    out = []
    for k, op in enumerate(graph.operators, start=1):
        code = model.operatorCodes[op.opcodeIndex]
        cut = copy.deepcopy(model)
        sub = cut.subgraphs[0]
        sub.operators = sub.operators[:k]
        sub.outputs = [op.outputs[0]]
        cut.signatureDefs = None  # signatures name the original output
        builder = flatbuffers.Builder(1024)
        builder.Finish(cut.Pack(builder), file_identifier=b"TFL3")
        shape = tuple(int(d) for d in graph.tensors[op.outputs[0]].shape)
        out.append((names[max(code.builtinCode, code.deprecatedBuiltinCode)], shape, bytes(builder.Output())))
    return out


def _runner(content: bytes, x: np.ndarray):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=content, num_threads=1)
    it.allocate_tensors()
    idx = it.get_input_details()[0]["index"]
    it.set_tensor(idx, x)
    return it.invoke


def profile_ops(fp32_model: Path, int8_model: Path, rounds: int, calls: int) -> dict:
    from fer_edge.bench.measure import interleaved

    from ai_edge_litert.interpreter import Interpreter

    shape = Interpreter(model_path=str(fp32_model)).get_input_details()[0]["shape"]  # the model's own input
    x = np.random.default_rng(0).uniform(0, 255, tuple(int(d) for d in shape)).astype(np.float32)
    models = {"fp32": _prefixes(fp32_model), "int8": _prefixes(int8_model)}
    fns, meta = {}, {}
    for prec, prefixes in models.items():
        for k, (op, shape, content) in enumerate(prefixes):
            fns[f"{prec}:{k}"] = _runner(content, x)
            meta[f"{prec}:{k}"] = (op, shape)
    res = interleaved(fns, rounds, calls, warmup=100)
    per_op = {}
    for prec, prefixes in models.items():
        prev, ops = 0.0, []
        for k in range(len(prefixes)):
            cum = res["latency"][f"{prec}:{k}"]["p50_ms"] * 1000
            ops.append({"op": meta[f"{prec}:{k}"][0], "shape": meta[f"{prec}:{k}"][1], "us": cum - prev, "cum_us": cum})
            prev = cum
        per_op[prec] = ops
    by_type: dict[str, dict[str, float]] = defaultdict(lambda: {"fp32": 0.0, "int8": 0.0, "count_fp32": 0, "count_int8": 0})
    for prec, ops in per_op.items():
        for o in ops:
            by_type[o["op"]][prec] += o["us"]
            by_type[o["op"]][f"count_{prec}"] += 1
    return {"per_op": per_op, "by_type": dict(by_type), "rounds": rounds, "calls": calls}


def profile_kernels(rounds: int, calls: int, kernels: list) -> list[dict]:
    import keras
    import tensorflow as tf

    from fer_edge.bench.measure import interleaved

    rows = []
    for name, shape, make in kernels:
        inp = keras.Input(shape)
        model = keras.Model(inp, make(keras.layers)(inp))
        x = np.random.default_rng(1).uniform(-1, 1, (1, *shape)).astype(np.float32)
        fns = {}
        for mode in ("fp32", "int8 per-channel", "int8 per-tensor"):
            conv = tf.lite.TFLiteConverter.from_keras_model(model)
            if mode != "fp32":
                rng = np.random.default_rng(2)
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                conv.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, *shape)).astype(np.float32)] for _ in range(30))
                conv._experimental_disable_per_channel = mode.endswith("per-tensor")
                # int8 in and out, so only the kernel is timed (no quantize/dequantize of a big tensor)
                conv.inference_input_type = conv.inference_output_type = tf.int8
            fns[mode] = _runner(conv.convert(), x if mode == "fp32" else np.zeros(x.shape, np.int8))
        res = interleaved(fns, rounds, calls, warmup=100)
        rows.append({"kernel": name, **{m: res["latency"][m]["p50_ms"] * 1000 for m in fns}})
    return rows


def render(ops: dict, kernels: list[dict], args) -> str:
    lines = ["# Where int8 TFLite time goes vs fp32 (edge model, 1 thread, LiteRT + XNNPACK)", ""]
    tot_f = sum(o["us"] for o in ops["per_op"]["fp32"])
    tot_i = sum(o["us"] for o in ops["per_op"]["int8"])
    lines += ["## Per op type (sum over the model's ops)", "",
              "| op | count | fp32 us | int8 us | int8 / fp32 |", "|---|---|---|---|---|"]
    for op, v in sorted(ops["by_type"].items(), key=lambda kv: -max(kv[1]["fp32"], kv[1]["int8"])):
        ratio = f"{v['int8'] / v['fp32']:.2f}x" if min(v["fp32"], v["int8"]) > 2 else "-"  # tiny sums are noise
        lines.append(f"| {op} | {max(v['count_fp32'], v['count_int8'])} | {v['fp32']:.1f} | {v['int8']:.1f} | {ratio} |")
    lines += [f"| **whole model** | | **{tot_f:.1f}** | **{tot_i:.1f}** | **{tot_i / tot_f:.2f}x** |", ""]
    lines += ["## Isolated kernels at the model's shapes", "",
              "| kernel | fp32 us | int8 per-channel us | int8 per-tensor us | int8 (per-channel) / fp32 |",
              "|---|---|---|---|---|"]
    for r in kernels:
        lines.append(f"| {r['kernel']} | {r['fp32']:.1f} | {r['int8 per-channel']:.1f} | {r['int8 per-tensor']:.1f} | "
                     f"{r['int8 per-channel'] / r['fp32']:.2f}x |")
    try:
        import importlib.metadata as md
        litert = md.version("ai-edge-litert")
    except Exception:  # pragma: no cover - reported, not needed
        litert = "unknown"
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    lines += ["", f"ai-edge-litert {litert}, {cpu}; per-op profile {ops['rounds']} rounds x {ops['calls']} calls per "
              f"prefix, kernels {args.kernel_rounds} rounds x {args.kernel_calls} calls; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f}.",
              "Per-op times are differences of prefix timings: single ops carry a few us of noise (some come out "
              "negative); the sums per op type and the isolated kernels are the robust part.", "",
              f"Command: `python benchmarks/tflite_op_profile.py {args.fp32} {args.int8}"
              + (f" --md {args.md}`" if args.md else "`"), ""]
    lines += ["## Per op (prefix differences)", "", "| # | op | output | fp32 us | int8 us |", "|---|---|---|---|---|"]
    f_ops = ops["per_op"]["fp32"]
    i_ops = [o for o in ops["per_op"]["int8"] if o["op"] not in ("QUANTIZE", "DEQUANTIZE")]
    extra = [o for o in ops["per_op"]["int8"] if o["op"] in ("QUANTIZE", "DEQUANTIZE")]
    for k, (f, i) in enumerate(zip(f_ops, i_ops), start=1):
        lines.append(f"| {k} | {f['op']} | {'x'.join(map(str, f['shape'][1:]))} | {f['us']:.1f} | {i['us']:.1f} |")
    for o in extra:
        lines.append(f"| - | {o['op']} (int8 only) | {'x'.join(map(str, o['shape'][1:]))} | - | {o['us']:.1f} |")
    return "\n".join(lines) + "\n"


def _model_file(bundle: Path) -> Path:
    b = read_bundle(bundle)
    if b.manifest.format != "tflite":
        raise SystemExit(f"{bundle}: not a TFLite bundle (format {b.manifest.format!r})")
    return b.model_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fp32", type=Path, help="fp32 TFLite bundle")
    ap.add_argument("int8", type=Path, help="int8 TFLite bundle of the same model")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--calls", type=int, default=150)
    ap.add_argument("--kernel-rounds", type=int, default=10)
    ap.add_argument("--kernel-calls", type=int, default=300)
    ap.add_argument("--md")
    args = ap.parse_args(argv)
    ops = profile_ops(_model_file(args.fp32), _model_file(args.int8), args.rounds, args.calls)
    kernels = profile_kernels(args.kernel_rounds, args.kernel_calls, kernels_for(ops))
    text = render(ops, kernels, args)
    print(text)
    if args.md:
        write_text(args.md, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
