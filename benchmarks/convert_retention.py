"""Accuracy retention, agreement, size and conversion time of every converted artifact.

Converts a `fer-edge train` run (default: the first of runs/edge_long, runs/edge_full, runs/edge_quick that exists)
to TFLite / ONNX / OpenVINO at each precision with fer_edge.export.pipeline.convert, evaluates each
artifact THROUGH fer_edge.runtime on the run's test selector (FER2013 PrivateTest for the edge
recipe) against the float Keras model, and writes a Markdown report with the targets checked:
int8 within 1.0 accuracy point of Keras float (stretch 0.5), >= 97% top-1 agreement, ~4x smaller
than float32.

    .venv/bin/python benchmarks/convert_retention.py --model runs/edge_full \
        --md benchmarks/results/convert_retention.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
PLAN = [("all", "fp32"), ("all", "fp16"), ("tflite", "dynamic"), ("all", "int8")]


def default_model() -> Path:
    for name in ("edge_long", "edge_full", "edge_quick"):
        if (ROOT / "runs" / name / "manifest.json").is_file():
            return ROOT / "runs" / name
    sys.exit("no runs/edge_long, runs/edge_full or runs/edge_quick; pass --model")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="bundles go here (default <run>/export)")
    ap.add_argument("--calib-size", type=int, default=None)
    ap.add_argument("--only", default=None, help="comma list of precisions to run (default fp32,fp16,dynamic,int8)")
    ap.add_argument("--md", type=Path, default=ROOT / "benchmarks/results/convert_retention.md")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--qat", action="store_true", help="also QAT int8 TFLite, compared with post-training int8")
    ap.add_argument("--qat-train-size", type=int, default=None)
    args = ap.parse_args()

    from fer_edge.bundle import read_bundle
    from fer_edge.export.pipeline import convert

    model = args.model or default_model()
    src = read_bundle(model).manifest
    plan = [p for p in PLAN if args.only is None or p[1] in args.only.split(",")]
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"fer-edge-bench-work-{os.getpid()}"
    reports, started, float_ref = [], time.time(), None
    for fmt, precision in plan:
        print(f"== {fmt} {precision}", flush=True)
        rep = convert(model, fmt=fmt, precision=precision, calib_size=args.calib_size, out=args.out,
                      overwrite=True, workdir=work, reference=float_ref, progress=lambda m: print(m, flush=True))
        reports.append(rep)
        float_ref = rep.float_reference  # the float model is scored once
    if args.qat:
        print("== tflite int8 QAT", flush=True)
        opts = {"train_size": args.qat_train_size} if args.qat_train_size else True
        reports.append(convert(model, fmt="tflite", precision="int8", calib_size=args.calib_size, out=args.out,
                               overwrite=True, workdir=work, qat=opts, reference=float_ref,
                               progress=lambda m: print(m, flush=True)))
    total = time.time() - started

    arts = [a for r in reports for a in r.artifacts]
    ref = reports[0].reference
    sizes = {(a.format, a.precision): a.size_bytes for a in arts}
    rows, checks = [], []
    for a in arts:
        r = a.retention
        rows.append(
            f"| {a.format} | {a.precision}{' QAT' if a.qat else ''} | {a.status} | {a.size_bytes / 1e6:.2f} | "
            f"{sizes.get((a.format, 'fp32'), 0) / a.size_bytes:.2f}x | {a.convert_seconds:.1f} | "
            f"{100 * r['accuracy']:.2f} | {r['accuracy_delta_pp']:+.2f} | {100 * r['macro_f1']:.2f} | "
            f"{r['macro_f1_delta_pp']:+.2f} | {100 * r['top1_agreement']:.2f} | {r['mean_abs_prob_diff']:.4f} | "
            f"{r['runtime']['backend']}{' ' + r['runtime']['precision_hint'] if r['runtime']['precision_hint'] else ''} |"
        )
        if a.precision == "int8" and not a.qat:
            drop = -r["accuracy_delta_pp"]
            ratio = sizes.get((a.format, "fp32"), 0) / a.size_bytes
            checks.append(
                f"| {a.format} int8 | {drop:+.2f} pp {'PASS' if drop <= 1.0 else 'FAIL'}"
                f"{' (stretch 0.5: ' + ('PASS' if drop <= 0.5 else 'FAIL') + ')'} | "
                f"{100 * r['top1_agreement']:.2f}% {'PASS' if r['top1_agreement'] >= 0.97 else 'FAIL'} | "
                f"{ratio:.2f}x {'PASS' if ratio >= 3.5 else 'FAIL'} |"
            )
    first = arts[0].retention["runtime"]
    import numpy as np

    conf_line = ""
    if float_ref is not None:  # the float model's own test probabilities
        probs = np.sort(float_ref.probs, axis=1)
        margin = probs[:, -1] - probs[:, -2]
        conf_line = (f"Float model confidence: median top-1 probability {np.median(probs[:, -1]):.3f}; "
                     f"{100 * (margin < 0.05).mean():.1f}% of test faces have a top-1/top-2 margin below 0.05 "
                     "(quantization flips mostly those).")
    int8_arts = [a for a in arts if a.precision == "int8"]
    calib = read_bundle(int8_arts[0].path).manifest.quantization.get("calibration", {}) if int8_arts else {}
    qat_lines = []
    for a in arts:
        if a.qat:
            q = read_bundle(a.path).manifest.quantization["profile"]["qat"]
            ptq = next(b for b in arts if b.format == "tflite" and b.precision == "int8" and not b.qat)
            better = a.retention["accuracy"] - ptq.retention["accuracy"]
            qat_lines.append(
                f"QAT (tflite int8): {q['epochs']} epoch(s) at lr {q['learning_rate']} on {q['train_images']} "
                f"training images ({q['fit_seconds']:.0f} s fit), tf_keras rebuild max |diff| {q['rebuild_max_abs_diff']:.1e}; "
                f"accuracy {100 * a.retention['accuracy']:.2f}% vs post-training int8 {100 * ptq.retention['accuracy']:.2f}% "
                f"({100 * better:+.2f} pp): QAT {'beats' if better > 0 else 'does not beat'} PTQ here."
            )
    import ai_edge_litert
    import onnxruntime
    import openvino
    import tensorflow as tf

    cmd = "python benchmarks/convert_retention.py " + " ".join(sys.argv[1:])
    md = [
        "# Conversion retention: every artifact evaluated through fer_edge.runtime",
        "",
        f"Model: `{model.relative_to(ROOT) if model.is_relative_to(ROOT) else model}` ({src.name}, recipe "
        f"`{src.provenance.get('recipe', '?')}`, keras sha256 {src.files['model.keras'][:12]}...), "
        f"input {src.input.size[0]}x{src.input.size[1]} {src.input.color}.",
        f"Test data: `{arts[0].retention['test_data']}` selector `{json.dumps(arts[0].retention['test_selector'])}` "
        f"(FER2013 PrivateTest), n = {ref['n']}.",
        f"Float Keras reference: accuracy **{100 * ref['accuracy']:.2f}%**, macro-F1 {100 * ref['macro_f1']:.2f}%.",
        conf_line,
        f"Calibration (int8): {calib.get('size', '-')} images from `{calib.get('source', '-')}`, stratified by "
        "class, training data only, preprocessed by the bundle's InputSpec (the same set for all three toolchains).",
        *qat_lines,
        "",
        "| format | precision | status | size MB | fp32/this | convert s | acc % | d acc pp | macro-F1 % | d F1 pp | top-1 agree % | mean abs prob diff | runtime |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## Targets (int8)",
        "",
        "| artifact | accuracy drop vs Keras float (<= 1.0 pp) | top-1 agreement (>= 97%) | fp32 size / int8 size (~4x, checked >= 3.5x) |",
        "|---|---|---|---|",
        *checks,
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the end; conversion "
        f"times are indicative), Python {platform.python_version()}; TensorFlow {tf.__version__}, "
        f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}, onnxruntime {onnxruntime.__version__}, "
        f"OpenVINO {openvino.get_version()} (INFERENCE_PRECISION_HINT set explicitly, shown per row). "
        f"Evaluation threads: {first['threads']}. Total wall time {total / 60:.1f} min.",
        "",
        f"Produced by: `{cmd.strip()}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text("\n".join(md))
    print("\n".join(md))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=2))


if __name__ == "__main__":
    main()
