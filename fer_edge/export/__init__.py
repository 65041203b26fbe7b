"""Conversion of a float Keras model to on-device formats (`fer-edge convert`).

    from fer_edge.export.pipeline import convert
    report = convert("runs/edge", fmt="all", precision="int8")   # -> ConvertReport
    for art in report.artifacts: print(art.path, art.status, art.retention["top1_agreement"])

Modules: source (load MODEL), calibration (one set for TFLite / ONNX Runtime / NNCF),
tflite / onnx / openvino (exporters named in fer_edge.formats.FORMATS), qat (+ qat_worker),
profiles (convert/profiles/*.toml), retention (evaluation through fer_edge.runtime),
pipeline (the command), report (its table). Heavy toolkits are imported inside functions.
"""
