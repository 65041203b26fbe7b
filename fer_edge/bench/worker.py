"""Measure one bundle with one backend in a fresh process (so peak memory is its own).

Run by the bench as ``python -m fer_edge.bench.worker SPEC.json OUT.json``; the
spec names the bundle, backend, threads, warm-up/runs/batch and the sample and
evaluation files the parent prepared (no dataset parsing in here).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from . import measure


def _load(spec: dict[str, Any]):
    from ..runtime import load

    kw: dict[str, Any] = {"backend": spec["backend"], "threads": spec.get("threads")}
    if spec["backend"] == "keras":
        kw["device"] = spec.get("device", "cpu")
    if spec.get("tta"):
        kw["tta"] = spec["tta"]
    if spec.get("precision_hint"):
        kw["precision_hint"] = spec["precision_hint"]
    if spec.get("providers"):
        kw["providers"] = spec["providers"]
    return load(spec["bundle"], **kw)


def measure_bundle(spec: dict[str, Any]) -> dict[str, Any]:
    """All measurements for one spec; the order keeps memory and timings honest."""
    out: dict[str, Any] = {"rss_before_load_mb": measure.current_rss_mb()}
    sample = np.load(spec["sample"])  # a few uint8 faces, read before any timing

    t0 = time.perf_counter_ns()
    clf = _load(spec)
    clf.predict_proba(sample[:1])
    out["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6

    one = clf.preprocess(sample[:1])
    face = sample[:1]
    out["latency"] = measure.time_calls(lambda: clf.run(one), spec["warmup"], spec["runs"])
    out["latency_e2e"] = measure.time_calls(lambda: clf.predict_proba(face), spec["warmup"], spec["runs"])
    batch = int(spec["batch"])
    reps = int(np.ceil(batch / len(sample)))
    xb = clf.preprocess(np.concatenate([sample] * reps)[:batch])
    tp = measure.throughput(lambda: clf.run(xb), batch, warmup=2)
    out["throughput_ips"] = tp["images_per_s"]
    out["batch"] = batch
    out["peak_rss_mb"] = measure.peak_rss_mb()  # before evaluation: the model's own footprint
    out["info"] = clf.info()

    if spec.get("evalset"):
        from ..data import load_npz
        from ..evaluation import evaluate

        m = evaluate(clf, load_npz(spec["evalset"]))
        out.update(accuracy=m["accuracy"], macro_f1=m["macro_f1"], eval_n=m["n"], eval_set=spec["eval_set"])
    return out


def main(argv: list[str]) -> int:
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    try:
        result = {"ok": True, **measure_bundle(spec)}
        code = 0
    except Exception as exc:  # reported as this row's error; the bench goes on with the others
        from ..errors import FerEdgeError

        if not isinstance(exc, FerEdgeError):
            traceback.print_exc()
        from ..errors import MissingExtraError

        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, FerEdgeError) else str(exc),
                  "not_installed": isinstance(exc, MissingExtraError)}
        code = 1
    out_path.write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
