"""ONNX int8 on x86 CPUs without VNNI: does the shipped artifact lose accuracy to U8S8 saturation?

onnxruntime runs uint8-activation x int8-weight convolutions (U8S8) on AVX2/AVX512 CPUs without VNNI with
VPMADDUBSW, which adds pairs of products into int16 and saturates: full-range 8-bit weights can overflow it.
On VNNI CPUs (and ARM) the products are summed in int32 and nothing saturates. This scores the ONNX int8
bundle on its own test faces three ways on the machine it runs on:

- as shipped (8-bit weights, U8S8);
- 7-bit weights (the weights requantized to -64..63 from their 8-bit values, int32 biases rescaled): close
  to what `quantize_static(reduce_range=True)` makes from the float model (onnxruntime: -64..64, and one
  rounding instead of two), which the converter's profile now does;
- uint8 weights (+128, zero point 128): the same numbers, a U8U8 kernel that does not saturate, so its
  outputs are what the shipped weights give where nothing saturates (the reference for agreement).

Accuracy and agreement come from fer_edge.evaluation through the runtime; latency is one face per call,
the three timed interleaved in this process (fer_edge.bench.measure.interleaved).

    .venv/bin/python benchmarks/onnx_saturation.py --md benchmarks/results/onnx_saturation.md \
        --json benchmarks/results/onnx_saturation.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from fer_edge.atomic import write_json, write_text  # noqa: E402
from fer_edge.bundle import read_bundle, write_bundle  # noqa: E402

VARIANTS = {
    "shipped": "as shipped: 8-bit weights (U8S8)",
    "weights_7bit": "7-bit weights, requantized from the 8-bit ones (U8S8, cannot saturate)",
    "weights_uint8": "uint8 weights, same values (U8U8, cannot saturate): the reference",
}


def weight_dequantizers(model) -> list:
    """The DequantizeLinear nodes of int8 weight initializers (a QDQ model's conv/dense weights)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
            and numpy_helper.to_array(inits[n.input[0]]).dtype == np.int8]


def to_uint8_weights(model) -> int:
    """w + 128 with zero point 128: DequantizeLinear gives the same floats."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    nodes = weight_dequantizers(model)
    for node in nodes:
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.int16)
        zp = numpy_helper.to_array(inits[node.input[2]]).astype(np.int16)
        if zp.any():
            raise ValueError(f"{node.name}: weights with a non-zero zero point (not symmetric int8)")
        inits[node.input[0]].CopyFrom(numpy_helper.from_array((w + 128).astype(np.uint8), node.input[0]))
        inits[node.input[2]].CopyFrom(numpy_helper.from_array((zp + 128).astype(np.uint8), node.input[2]))
    return len(nodes)


def to_7bit_weights(model) -> int:
    """Requantize each weight channel to -64..63 (scale x ~2) and rescale the int32 bias that uses its scale."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    ratio: dict[str, np.ndarray] = {}  # weight scale name -> old scale / new scale
    for node in weight_dequantizers(model):
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float64)
        s = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * w.ndim
        shape[axis] = -1
        span = np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis)) * s if s.ndim else np.abs(w).max() * s
        s7 = np.where(span > 0, span / 63.0, s)
        scale = s.reshape(shape) / s7.reshape(shape) if s.ndim else s / s7
        w7 = np.clip(np.round(w * scale), -64, 63).astype(np.int8)
        inits[node.input[0]].CopyFrom(numpy_helper.from_array(w7, node.input[0]))
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(s7.astype(np.float32), node.input[1]))
        ratio[node.input[1]] = s / s7
    for node in model.graph.node:  # int32 bias = input scale x weight scale: follow the weight's new scale
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        b = numpy_helper.to_array(inits[node.input[0]])
        if b.dtype != np.int32:
            continue
        consumer = next(c for c in model.graph.node if node.output[0] in c.input)
        r = ratio[producer[consumer.input[1]].input[1]]
        sb = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        inits[node.input[1]].CopyFrom(numpy_helper.from_array((sb / r).astype(np.float32), node.input[1]))
        inits[node.input[0]].CopyFrom(numpy_helper.from_array(np.round(b * r).astype(np.int32), node.input[0]))
    return len(ratio)


def write_variant(src: Path, dst: Path, name: str) -> Path:
    """A copy of the bundle with its weights rewritten (manifest re-hashed; the rewrite noted in it)."""
    import onnx

    bundle = read_bundle(src)
    shutil.copytree(src, dst)
    if name == "shipped":
        return dst
    model = onnx.load(str(dst / bundle.manifest.model_file))
    count = {"weights_7bit": to_7bit_weights, "weights_uint8": to_uint8_weights}[name](model)
    onnx.save(model, str(dst / bundle.manifest.model_file))
    m = bundle.manifest
    m.quantization = {**m.quantization, "rewritten_by": f"benchmarks/onnx_saturation.py {name} ({count} weights)"}
    write_bundle(dst, m, list(m.files))
    return dst


def cpu_line() -> dict[str, Any]:
    from fer_edge.doctor.probes import cpuinfo

    cpu = cpuinfo()
    flags = set(cpu.get("flags") or [])
    return {"model": cpu.get("model"), "machine": cpu.get("machine"),
            "vnni": sorted(flags & {"avx512_vnni", "avx_vnni"}), "avx2": "avx2" in flags, "avx512f": "avx512f" in flags}


def run(bundle: Path, rounds: int, calls: int) -> dict[str, Any]:
    from fer_edge.bench.measure import interleaved
    from fer_edge.data import provenance_dataset, select_role
    from fer_edge.evaluation import evaluate
    from fer_edge.metrics import agreement
    from fer_edge.runtime import load
    from fer_edge.shipped import shipped_bundles

    with tempfile.TemporaryDirectory() as tmp:
        clfs = {name: load(write_variant(bundle, Path(tmp) / name, name)) for name in VARIANTS}
        d = clfs["shipped"].manifest.provenance["data"]
        faces = select_role(provenance_dataset(d, bundle), d, "test")
        scored = {name: evaluate(clf, faces, return_probs=True) for name, clf in clfs.items()}
        ref = scored["weights_uint8"][1]
        others = {}  # the other shipped int8 formats on this CPU, with the accuracy their conversion recorded
        for fmt, folder in shipped_bundles().items():
            if fmt != "onnx":
                clf = load(folder)
                others[f"{fmt}-int8"] = {"accuracy": evaluate(clf, faces)["accuracy"],
                                         "at_conversion": (clf.manifest.metrics.get("retention") or {}).get("accuracy"),
                                         "backend": clf.info().get("backend_package")}
        one = faces.images[:1]
        lat = interleaved({name: (lambda c=clf: c.predict_proba(one)) for name, clf in clfs.items()}, rounds, calls)
        runtime = clfs["shipped"].info()
    rows = {}
    for name, (m, probs) in scored.items():
        rows[name] = {"what": VARIANTS[name], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"],
                      "agreement_with_reference": agreement(probs, ref)["top1_agreement"],
                      "p50_ms": lat["latency"][name]["p50_ms"],
                      "ratio_to_shipped": (lat["ratios"].get(f"{name}/shipped") or {}).get("median")}
    return {"bundle": str(bundle), "cpu": cpu_line(), "other_shipped": others, "runtime": {k: runtime.get(k) for k in ("backend_package",
            "backend_version", "threads")}, "latency": lat, "rows": rows, "rounds": rounds, "calls": calls}


def markdown(res: dict[str, Any], command: str) -> str:
    cpu = res["cpu"]
    vnni = ", ".join(cpu["vnni"]) or "none"
    lines = [
        "# ONNX int8 and U8S8 saturation (x86 CPUs without VNNI)", "",
        f"Bundle `{Path(res['bundle']).relative_to(ROOT) if Path(res['bundle']).is_relative_to(ROOT) else res['bundle']}`"
        f" on its test faces (FER2013 PrivateTest), on {cpu['model']} ({cpu['machine']}; VNNI: {vnni}; "
        f"AVX2: {cpu['avx2']}; AVX512F: {cpu['avx512f']}), onnxruntime {res['runtime']['backend_version']}, "
        f"{res['runtime']['threads']} threads. Command: `{command}`.", "",
        "| variant | accuracy | macro-F1 | top-1 agreement with the reference | latency p50, one face (ms) | "
        "latency / shipped (median of rounds) |",
        "|---|---|---|---|---|---|",
    ]
    for row in res["rows"].values():
        p50 = f"{row['p50_ms']:.3f}" if row.get("p50_ms") is not None else "-"
        ratio = f"{row['ratio_to_shipped']:.2f}x" if row.get("ratio_to_shipped") else "1.00x"
        lines.append(f"| {row['what']} | {row['accuracy']:.2%} | {row['macro_f1']:.3f} | "
                     f"{row['agreement_with_reference']:.2%} | {p50} | {ratio} |")
    if res.get("other_shipped"):
        lines += ["", "The other shipped int8 bundles on the same faces and CPU (their kernels do not use U8S8):", "",
                  "| bundle | backend | accuracy here | accuracy recorded at conversion |", "|---|---|---|---|"]
        for name, o in res["other_shipped"].items():
            conv = f"{o['at_conversion']:.2%}" if o.get("at_conversion") is not None else "-"
            lines.append(f"| {name} | {o['backend']} | {o['accuracy']:.2%} | {conv} |")
    lines += ["", f"Latency: {res['rounds']} interleaved rounds of {res['calls']} calls (runtime predict_proba on one "
              "face, preprocessing included); a training ran beside some measurements: compare rows, not machines.",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from fer_edge.shipped import shipped_bundle

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, default=None, help="an ONNX int8 bundle (default: the shipped one)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--md", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    bundle = args.bundle or shipped_bundle("onnx")
    res = run(bundle, args.rounds, args.calls)
    command = "python benchmarks/onnx_saturation.py" + "".join(
        f" {flag} {val}" for flag, val in (("--bundle", args.bundle), ("--rounds", args.rounds), ("--calls", args.calls),
                                           ("--md", args.md), ("--json", args.json)) if val)
    text = markdown(res, command)
    if args.md:
        write_text(args.md, text)
    if args.json:
        write_json(args.json, res)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
