"""Quantization-aware training (QAT) -> int8 TFLite, via tensorflow-model-optimization in a subprocess.

EXPERIMENTAL, not exposed on the command line: measured on the edge model (runs/edge_full,
FER2013 PrivateTest, see benchmarks/results/convert_retention.md) QAT int8 scored 54.92% vs
64.36% for post-training int8 (1 epoch, 6,000 images, lr 1e-5), so PTQ is the supported path.
Reachable as ``fer_edge.export.pipeline.convert(..., qat=True)``.

The parent (Keras 3) writes a layer-by-layer spec of the (flat) functional model, its weights,
a stratified fine-tuning subset of the training selector and the calibration set; the worker
(TF_USE_LEGACY_KERAS=1, tf_keras) rebuilds, fine-tunes with fake quantization and converts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..data import provenance_dataset, select_role
from ..errors import ModelError, require
from .calibration import stratified_indices
from .context import ExportContext, ExportResult

DEFAULTS = {"epochs": 1, "learning_rate": 1e-5, "batch_size": 64, "train_size": 6000,
            "ema_decay": 0.9, "range_warmup_epochs": 3}


def graph_spec(model) -> dict[str, Any]:
    """Layers in order with their inbound layer names; refuses nested models and shared layers."""
    layers = []
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "InputLayer":
            layers.append({"name": layer.name, "class": cls, "shape": list(layer.batch_shape[1:])})
            continue
        if hasattr(layer, "layers"):
            raise ModelError(f"QAT needs a flat model; {layer.name} is a nested model (rebuild the backbone inline)")
        if len(layer._inbound_nodes) != 1:
            raise ModelError(f"QAT cannot rebuild shared layer {layer.name}")
        node = layer._inbound_nodes[0]
        cfg = {k: v for k, v in layer.get_config().items()
               if not k.endswith(("_initializer", "_regularizer", "_constraint")) and k != "quantization_config"}
        cfg["dtype"] = "float32"
        layers.append({"name": layer.name, "class": cls, "config": cfg,
                       "inbound": [t._keras_history[0].name for t in node.input_tensors]})
    return {
        "layers": layers,
        "inputs": [t._keras_history[0].name for t in model.inputs],
        "outputs": [t._keras_history[0].name for t in model.outputs],
    }


def export_tflite_qat(ctx: ExportContext, out_dir: Path) -> ExportResult:
    """Exporter for `--qat`: int8 TFLite from quantization-aware fine-tuning."""
    require("tensorflow_model_optimization", "train", "quantization-aware training")
    require("tf_keras", "train", "quantization-aware training")
    src = ctx.source
    if src.data is None:
        raise ModelError(f"{src.path}: QAT fine-tunes on the training data; convert the `fer-edge train` run folder")
    opts = {**DEFAULTS, **(ctx.qat or {}), "int8_io": ctx.int8_io}
    work = ctx.workdir / "qat"
    work.mkdir(parents=True, exist_ok=True)
    spec = graph_spec(src.model)
    spec["options"] = opts
    (work / "spec.json").write_text(json.dumps(spec, default=_jsonable))
    weights = {}
    for layer in src.model.layers:
        ws = layer.get_weights()
        if ws:
            weights[f"{layer.name}::n"] = np.array(len(ws))
            weights.update({f"{layer.name}::{i}": w for i, w in enumerate(ws)})
    np.savez(work / "weights.npz", **weights)
    train = select_role(provenance_dataset(src.data, src.run_dir), src.data, "train")
    idx = stratified_indices(train.labels, int(opts["train_size"]), seed=1)
    calib = ctx.calibration().x
    reference = src.model.predict(calib, verbose=0)
    x = src.input.preprocess(train.images[idx])
    # Fine-tuning targets are the float model's own probabilities (self-distillation): QAT should
    # learn to survive quantization, not drift away from the model it replaces.
    soft = np.asarray(src.model.predict(x, batch_size=128, verbose=0), dtype=np.float32)
    np.savez(work / "data.npz", x=x.astype(np.float16), y=train.labels[idx], soft=soft, calib=calib,
             reference=reference)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "fer_edge.export.qat_worker", str(work)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()][-1:] or ["no output"]
        raise ModelError(f"{src.path}: quantization-aware training failed ({tail[0][:300]})")
    result = json.loads((work / "result.json").read_text())
    flat = (work / "model.tflite").read_bytes()
    from .tflite import METADATA_NAME, add_metadata, io_quantization

    quant = io_quantization(flat) if ctx.int8_io else {}
    meta = ctx.embedded_metadata("tflite", {**quant, "output_kind": ctx.output_kind(), "qat": True})
    (out_dir / "model.tflite").write_bytes(add_metadata(flat, METADATA_NAME, ctx.metadata_json(meta).encode()))
    settings = {"converter": "tfmot quantize_apply + TFLiteConverter.from_keras_model (tf_keras)", "qat": {
        **opts, "train_images": int(len(idx)), **{k: result[k] for k in ("rebuild_max_abs_diff", "prefit_top1_agreement", "fit_seconds", "history", "float_layers")}}}
    return ExportResult(["model.tflite"], quantization=quant, versions=result["versions"], settings=settings)


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable in a layer config: {type(obj).__name__}")
