"""What the int8 files are made of, and what per-tensor weights would buy in size and cost in accuracy.

Why: issue 4 asks for int8 files about 4x smaller than float32; the edge model's are 3.3-3.4x.

1. Byte breakdown of each exported fp32 and int8 bundle (TFLite, ONNX, OpenVINO): weight tensors,
   per-channel quantization parameters (scales and zero points), biases, and the rest (graph,
   metadata). TFLite's schema stores every per-channel zero point as int64, for the weights and
   again for the int32 biases.
2. The shipped TFLite int8 recipe (percentile ranges + fer-edge bias correction, one pass) with
   per-channel (shipped) and per-tensor weights: file size, and accuracy and top-1 agreement with the
   float Keras model on PublicTest and PrivateTest.

    .venv/bin/python benchmarks/int8_size_breakdown.py --model runs/edge_long \
        --md benchmarks/results/int8_size_breakdown.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from fer_edge.atomic import write_text  # noqa: E402
from fer_edge.bundle import read_bundle  # noqa: E402

PARTS = ("weights", "quantization params", "biases", "graph + metadata")


def tflite_parts(path: Path) -> dict[str, int]:
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
    graph = model.subgraphs[0]
    parts = defaultdict(int)
    bias_ids = set()
    for op in graph.operators:
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias_ids.add(op.inputs[2])
    for idx, t in enumerate(graph.tensors):
        data = model.buffers[t.buffer].data
        if data is not None and len(data):
            parts["biases" if idx in bias_ids else "weights"] += len(data)
        q = t.quantization
        if q is not None and q.scale is not None:
            parts["quantization params"] += 4 * len(q.scale) + 8 * (len(q.zeroPoint) if q.zeroPoint is not None else 0)
    parts["graph + metadata"] = path.stat().st_size - sum(parts.values())
    return dict(parts)


def onnx_parts(path: Path) -> dict[str, int]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    role: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":  # x, scale, zero point
            for k, name in enumerate(node.input):
                role.setdefault(name, "x" if k == 0 else "quantization params")
        elif node.op_type in ("Conv", "Gemm") and len(node.input) > 2:
            role.setdefault(node.input[2], "biases")
        elif node.op_type == "QuantizeLinear":
            for name in node.input[1:]:
                role.setdefault(name, "quantization params")
    parts = defaultdict(int)
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        r = role.get(init.name, "weights" if arr.size > 1 else "graph + metadata")
        if r == "x":  # a DequantizeLinear input: int8 weights, or an int32 bias
            r = "biases" if arr.dtype == np.int32 else "weights"
        parts[r] += arr.nbytes
    parts["graph + metadata"] += path.stat().st_size - sum(parts.values())
    return dict(parts)


def openvino_parts(xml_path: Path) -> dict[str, int]:
    """Constants of the IR by element type: i8 = weights; f32 vectors = scales and biases (not told
    apart in the IR without tracing the graph, so both count as 'quantization params' in int8
    and as weights in fp32); the .xml file is graph + metadata."""
    parts = defaultdict(int)
    int8 = 'element_type="i8"' in xml_path.read_text()
    seen = set()
    for layer in ET.parse(xml_path).getroot().iter("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        size, dtype = int(data.get("size")), data.get("element_type")
        if (data.get("offset"), size) in seen:  # equal constants share their bytes in the .bin
            continue
        seen.add((data.get("offset"), size))
        if dtype in ("i8", "u8") or not int8:
            parts["weights"] += size
        elif dtype in ("f32", "f16"):
            parts["quantization params"] += size
        else:
            parts["graph + metadata"] += size
    consts = sum(parts.values())
    # the .xml is the graph; anything in the .bin outside the constants counts with it
    parts["graph + metadata"] += xml_path.stat().st_size + xml_path.with_suffix(".bin").stat().st_size - consts
    return dict(parts)


def breakdown(export_dir: Path) -> list[dict]:
    rows = []
    for fmt, fn in (("tflite", tflite_parts), ("onnx", onnx_parts), ("openvino", openvino_parts)):
        sizes = {}
        for prec in ("fp32", "int8"):
            b = read_bundle(export_dir / f"{fmt}-{prec}")
            files = [b.folder / name for name in b.manifest.files]
            total = sum(f.stat().st_size for f in files)
            parts = fn(b.model_path)
            rows.append({"format": fmt, "precision": prec, "total": total, **{p: parts.get(p, 0) for p in PARTS}})
            sizes[prec] = total
        rows[-1]["smaller"] = sizes["fp32"] / sizes["int8"]
        rows[-1]["weights smaller"] = rows[-2]["weights"] / rows[-1]["weights"]
    return rows


def per_tensor_study(model_dir: str) -> list[dict]:
    import tensorflow as tf
    from tensorflow.lite.python import convert as tflite_convert

    from _eval_splits import load_eval_splits, tflite_argmax

    from fer_edge.export.calibration import build_calibration
    from fer_edge.export.simplify import simplify_for_export
    from fer_edge.export.tflite_bias import correct_biases
    from fer_edge.export.tflite_ranges import percentile_ranges

    ev = load_eval_splits(model_dir)
    src, xs = ev.src, ev.x
    calib = build_calibration(src, None, 300)

    rows = []
    with tempfile.TemporaryDirectory(prefix="fer-edge-size-") as tmp:
        saved = str(Path(tmp) / "saved_model")
        simplify_for_export(src.model)[0].export(saved, verbose=False)
        reference = tf.lite.TFLiteConverter.from_saved_model(saved).convert()
        conv = tf.lite.TFLiteConverter.from_saved_model(saved)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = calib.representative_dataset
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv._experimental_calibrate_only = True
        calibrated, _ = percentile_ranges(conv.convert(), calib.x, 99.999)
        rows.append({"variant": "float32 (reference)", "size": len(reference),
                     **{f"{k}_acc": ev.accuracy(k, ev.float_pred[k]) for k in xs},
                     **{f"{k}_agree": 1.0 for k in xs}})
        for name, per_tensor in (("int8, per-channel weights (shipped)", False), ("int8, per-tensor weights", True)):
            flat = tflite_convert.mlir_quantize(calibrated, per_tensor, input_data_type=tf.float32,
                                                output_data_type=tf.float32)
            flat, _ = correct_biases(flat, reference, calib.x)
            preds = {k: tflite_argmax(flat, x) for k, x in xs.items()}
            rows.append({"variant": name, "size": len(flat),
                         **{f"{k}_acc": ev.accuracy(k, preds[k]) for k in xs},
                         **{f"{k}_agree": ev.agreement(k, preds[k]) for k in xs}})
            print(rows[-1], flush=True)
    return rows


def render(parts: list[dict], study: list[dict], args, seconds: float) -> str:
    kb = lambda n: f"{n / 1024:,.0f}"  # noqa: E731
    lines = ["# What the int8 files are made of (edge model)", "",
             "| format | precision | file(s) KiB | weights KiB | quantization params KiB | biases KiB | graph + metadata KiB | fp32 / int8 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in parts:
        ratio = f"{r['smaller']:.2f}x (weights {r['weights smaller']:.2f}x)" if "smaller" in r else ""
        lines.append(f"| {r['format']} | {r['precision']} | {kb(r['total'])} | {kb(r['weights'])} | "
                     f"{kb(r['quantization params'])} | {kb(r['biases'])} | {kb(r['graph + metadata'])} | {ratio} |")
    lines += ["", "Model files as listed in each manifest (the manifest itself not counted). TFLite: per-channel scales (float32) and zero points (int64, "
              "the schema's type) of the weights and of the int32 biases. ONNX: DequantizeLinear scales and zero "
              "points. OpenVINO: float constants of the int8 IR (weight scales, biases); its fp32 biases count as "
              "weights.", ""]
    if study:
        lines += ["## TFLite int8: per-channel vs per-tensor weights (shipped recipe otherwise)", "",
                  "| variant | file KiB | fp32 / file | PublicTest acc % | agree % | PrivateTest acc % | agree % |",
                  "|---|---|---|---|---|---|---|"]
        ref = study[0]["size"]
        for r in study:
            lines.append(f"| {r['variant']} | {kb(r['size'])} | {ref / r['size']:.2f}x | {100 * r['val_acc']:.2f} | "
                         f"{100 * r['val_agree']:.2f} | {100 * r['test_acc']:.2f} | {100 * r['test_agree']:.2f} |")
        lines.append("")
    lines += [f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, wall time {seconds / 60:.1f} min. Command: "
              f"`python benchmarks/int8_size_breakdown.py --model {args.model}"
              + (f" --export {args.export}" if args.export else "") + (" --no-study" if args.no_study else "")
              + (f" --md {args.md}`" if args.md else "`"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/edge_long", help="a `fer-edge train` run folder")
    ap.add_argument("--export", help="folder with its {format}-{precision} bundles (default MODEL/export)")
    ap.add_argument("--no-study", action="store_true", help="only the byte breakdown")
    ap.add_argument("--md")
    args = ap.parse_args(argv)
    t0 = time.time()
    parts = breakdown(Path(args.export or Path(args.model) / "export"))
    study = [] if args.no_study else per_tensor_study(args.model)
    text = render(parts, study, args, time.time() - t0)
    print(text)
    if args.md:
        write_text(args.md, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
