"""Int8 post-training quantization choices, selected on validation (PublicTest), reported on PrivateTest.

Each variant quantizes the float edge model, runs it on FER2013 PublicTest (used to choose) and
PrivateTest (reported), and prints accuracy and top-1 agreement with the float Keras model:

- TFLite: calibration-set size / seed with the converter's min/max ranges, percentile ranges
  (fer_edge/export/tflite_ranges.py), fer-edge's empirical bias correction
  (fer_edge/export/tflite_bias.py, one or two passes), and keeping the classifier head in float
  (denylisted FULLY_CONNECTED / MEAN / SOFTMAX);
- ONNX Runtime (quantize_static, QDQ): MinMax vs Percentile ranges, with and without fer-edge's
  empirical bias correction (fer_edge/export/onnx_bias.py);
- OpenVINO (NNCF): fast vs full bias correction, range estimators, and fer-edge's empirical bias
  correction on top (fer_edge/export/openvino_bias.py).

The model is the graph `fer-edge convert` exports (after fer_edge/export/simplify.py's exact rewrites).

    .venv/bin/python benchmarks/int8_calibration_study.py --model runs/edge_long \
        --md benchmarks/results/int8_calibration_study.md

Slow-ish (about 6 minutes on 2 cores); needs fer-edge[all].
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
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
    ap.add_argument("--md", help="write the table here as Markdown")
    args = ap.parse_args(argv)

    import tensorflow as tf

    from _eval_splits import load_eval_splits, tflite_argmax

    from fer_edge.export.calibration import build_calibration, from_dataset
    from fer_edge.export.simplify import simplify_for_export

    t_start = time.time()
    ev = load_eval_splits(args.model)
    src = ev.src
    xv, xt = ev.x["val"], ev.x["test"]
    rows = [("float Keras", "-", ev.accuracy("val", ev.float_pred["val"]), 1.0,
             ev.accuracy("test", ev.float_pred["test"]), 1.0)]
    print(f"float: val {rows[0][2]:.4f} test {rows[0][4]:.4f}", flush=True)

    def record(toolchain: str, variant: str, pv: np.ndarray, pt: np.ndarray) -> None:
        row = (toolchain, variant, ev.accuracy("val", pv), ev.agreement("val", pv),
               ev.accuracy("test", pt), ev.agreement("test", pt))
        rows.append(row)
        print(f"{toolchain} {variant}: val {row[2]:.4f} agree {row[3]:.4f} | test {row[4]:.4f} agree {row[5]:.4f}", flush=True)

    calib = build_calibration(src, None, 300)
    train = ev.role("train")
    with tempfile.TemporaryDirectory(prefix="fer-edge-int8-study-") as tmp:
        saved = Path(tmp) / "saved_model"
        deploy, _ = simplify_for_export(src.model)
        deploy.export(str(saved), verbose=False)

        # --- TFLite
        run_tflite = tflite_argmax

        def tflite_converter(cal):
            conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = cal.representative_dataset
            return conv

        for size, seed in ((300, 0), (300, 1), (100, 0), (1000, 0), (2000, 0)):
            cal = calib if (size, seed) == (300, 0) else from_dataset(train, src.input, size, "study", seed=seed)
            conv = tflite_converter(cal)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            flat = conv.convert()
            record("tflite int8", f"min/max, {size} images, seed {seed}", run_tflite(flat, xv), run_tflite(flat, xt))
            if (size, seed) == (300, 0):
                from fer_edge.export.tflite_bias import correct_biases

                reference = tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()
                fixed, _ = correct_biases(flat, reference, calib.x)
                record("tflite int8", "min/max, 300 images, seed 0, + bias correction, 1 pass",
                       run_tflite(fixed, xv), run_tflite(fixed, xt))
                fixed, _ = correct_biases(fixed, reference, calib.x)
                record("tflite int8", "min/max, 300 images, seed 0, + bias correction, 2 passes",
                       run_tflite(fixed, xv), run_tflite(fixed, xt))
                # percentile activation ranges (fer_edge/export/tflite_ranges.py), then the MLIR quantizer
                from tensorflow.lite.python import convert as tflite_convert

                from fer_edge.export.tflite_ranges import percentile_ranges

                conv = tflite_converter(calib)
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                conv._experimental_calibrate_only = True
                calibrated = conv.convert()
                for pct in (99.999, 99.99):
                    narrowed, _ = percentile_ranges(calibrated, calib.x, pct)
                    flat_p = tflite_convert.mlir_quantize(narrowed, False, input_data_type=tf.float32,
                                                          output_data_type=tf.float32)
                    record("tflite int8", f"percentile {pct} ranges", run_tflite(flat_p, xv), run_tflite(flat_p, xt))
                    for passes in (1, 2):
                        flat_p, _ = correct_biases(flat_p, reference, calib.x)
                        shipped = " (shipped)" if (pct, passes) == (99.999, 1) else ""
                        record("tflite int8", f"percentile {pct} ranges, + bias correction, {passes} pass"
                               + ("es" if passes > 1 else "") + shipped, run_tflite(flat_p, xv), run_tflite(flat_p, xt))
        for ops in (["FULLY_CONNECTED"], ["FULLY_CONNECTED", "MEAN", "SOFTMAX"]):
            opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=ops)
            dbg = tf.lite.experimental.QuantizationDebugger(
                converter=tflite_converter(calib), debug_dataset=calib.representative_dataset, debug_options=opts)
            flat = dbg.get_nondebug_quantized_model()
            record("tflite int8", f"300 images, float {'/'.join(ops)}", run_tflite(flat, xv), run_tflite(flat, xt))

        # --- ONNX Runtime
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        from fer_edge.export.keras_onnx import keras_to_onnx
        from fer_edge.export.onnx_bias import correct_qdq_biases

        fp32, pre = Path(tmp) / "fp32.onnx", Path(tmp) / "fp32.pre.onnx"
        keras_to_onnx(deploy, src.input.shape, "input", fp32, 17)
        quant_pre_process(str(fp32), str(pre))

        def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return np.concatenate([sess.run(None, {"input": x[i : i + 256]})[0].argmax(1) for i in range(0, len(x), 256)])

        for method in ("MinMax", "Percentile"):
            q = Path(tmp) / f"int8_{method}.onnx"
            quantize_static(str(pre), str(q), calib.onnx_reader("input"), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=getattr(CalibrationMethod, method))
            record("onnx int8", f"{method} ranges", run_onnx(q, xv), run_onnx(q, xt))
            correct_qdq_biases(q, pre, calib.x, "input")
            record("onnx int8", f"{method} ranges, + bias correction" + (" (shipped)" if method == "Percentile" else ""),
                   run_onnx(q, xv), run_onnx(q, xt))

        # --- OpenVINO / NNCF
        import nncf
        import openvino as ov
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        h, w, c = src.input.shape
        base = ov.convert_model(str(saved), input=[(-1, h, w, c)])
        core = ov.Core()

        def run_ov(model, x: np.ndarray) -> np.ndarray:
            compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            return np.concatenate([compiled(x[i : i + 256])[0].argmax(1) for i in range(0, len(x), 256)])

        from fer_edge.export.openvino_bias import correct_ov_biases

        def ranges(name: str) -> dict:
            return {"advanced_parameters": AdvancedQuantizationParameters(
                activations_range_estimator_params=getattr(RangeEstimatorParametersSet, name))}

        variants = {
            "fast bias correction (NNCF default)": ({}, False),
            "full bias correction": (dict(fast_bias_correction=False), False),
            "fast bias correction, MEAN_QUANTILE ranges": (ranges("MEAN_QUANTILE"), False),
            "full bias correction, HISTOGRAM ranges": (dict(fast_bias_correction=False, **ranges("HISTOGRAM")), False),
            "full bias correction, MINMAX ranges": (dict(fast_bias_correction=False, **ranges("MINMAX")), False),
            "full bias correction, MINMAX ranges, + empirical bias correction (shipped)":
                (dict(fast_bias_correction=False, **ranges("MINMAX")), True),
        }
        for name, (extra, empirical) in variants.items():
            kw = {"preset": nncf.QuantizationPreset.MIXED, "subset_size": len(calib), "fast_bias_correction": True, **extra}
            q = nncf.quantize(base.clone(), calib.nncf_dataset(), **kw)
            if empirical:
                correct_ov_biases(q, base, calib.x)
            record("openvino int8", name, run_ov(q, xv), run_ov(q, xt))

    lines = [
        "# Int8 post-training quantization choices (chosen on PublicTest, reported on PrivateTest)",
        "",
        f"Model: `{args.model}` (float Keras). Calibration: 300 stratified training images unless stated "
        "(the same set as `fer-edge convert`). INFERENCE_PRECISION_HINT=f32 for OpenVINO.",
        "",
        "| toolchain | variant | PublicTest acc % | agree % | PrivateTest acc % | agree % |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c * 100:.2f} | {d * 100:.2f} | {e * 100:.2f} | {f * 100:.2f} |" for a, b, c, d, e, f in rows]
    lines += ["", f"Wall time {(time.time() - t_start) / 60:.1f} min. Produced by: "
              f"`python benchmarks/int8_calibration_study.py --model {args.model}"
              + (f" --md {args.md}`" if args.md else "`"), ""]
    text = "\n".join(lines)
    print(text)
    if args.md:
        write_text(args.md, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
