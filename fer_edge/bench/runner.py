"""Standalone bench runner for a remote device (Raspberry Pi): numpy + a TFLite interpreter only.

Copied to the device as ``fer_edge_runner.py`` beside ``fer_edge_measure.py``,
``fer_edge_environment.py`` and ``fer_edge_tensor_io.py`` (see ``SHIPPED``); needs no fer_edge
install and no OpenCV, because the host already resized/converted the evaluation faces to the
model's input size (uint8). Here the manifest's normalization (``x * scale - offset``), the
model's int8 input quantization and the output's dequantization/softmax are
``fer_edge.tensor_io``'s, the very code the runtime runs, and the interpreter is timed.

    python3 fer_edge_runner.py spec.json     # prints one line: FER_EDGE_RESULT {json}

Exit codes: 0 ok, 3 a Python package is missing, 4 bad spec/model.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time

MARKER = "FER_EDGE_RESULT "
EXIT_MISSING = 3
EXIT_BAD = 4

# fer_edge modules this runner uses, and the names they have when copied beside it on the device
# (bench/remote.py stages them). Imported when used: they need numpy, whose absence must become a
# clear error, not a traceback.
SHIPPED = {"bench.environment": "fer_edge_environment", "bench.measure": "fer_edge_measure",
           "tensor_io": "fer_edge_tensor_io"}


def _shared(module: str):
    """``fer_edge.<module>`` inside the package, else its copy beside this file on the device."""
    return importlib.import_module(f"fer_edge.{module}" if __package__ else SHIPPED[module])


def _emit(obj: dict) -> None:
    sys.stdout.write(MARKER + json.dumps(obj) + "\n")
    sys.stdout.flush()


def interpreter_module():
    """(module, package name, version): ai-edge-litert first, tflite-runtime as the Pi fallback."""
    from importlib import metadata

    try:
        from ai_edge_litert import interpreter as mod

        return mod, "ai-edge-litert", metadata.version("ai-edge-litert")
    except ImportError:
        pass
    from tflite_runtime import interpreter as mod  # ImportError propagates: nothing installed

    return mod, "tflite-runtime", metadata.version("tflite-runtime")


def check_packages() -> str:
    """'' when numpy and an interpreter import, else what is missing (for a clear error)."""
    missing = []
    try:
        importlib.import_module("numpy")
    except ImportError as exc:
        missing.append(f"numpy ({exc})")
    try:
        interpreter_module()
    except ImportError as exc:
        missing.append(f"ai-edge-litert or tflite-runtime ({exc})")
    if not missing:
        return ""
    return f"{sys.executable} (Python {sys.version.split()[0]}) lacks " + " and ".join(missing)


class Model:
    """One TFLite model with the bundle's normalization and I/O (fer_edge.tensor_io, as the runtime)."""

    def __init__(self, model_path: str, manifest: dict, threads: int):
        self.io = _shared("tensor_io")
        mod, self.package, self.version = interpreter_module()
        self.it = mod.Interpreter(model_path=model_path, num_threads=threads)
        self.it.allocate_tensors()
        self._in = self.it.get_input_details()[0]
        self._out = self.it.get_output_details()[0]
        self.batch = int(self._in["shape"][0])
        spec = manifest["input"]
        self.scale, self.offset = spec.get("scale", 1.0), spec.get("offset", [0.0])
        q = manifest.get("quantization") or {}
        self.in_q, self.out_q = q.get("input"), q.get("output")
        self.logits = q.get("output_kind") == "logits"
        mismatch = self.io.io_mismatch(self._in["dtype"], self.in_q)
        if mismatch:
            raise ValueError(f"{model_path}: {mismatch}")

    def normalize(self, u8):
        """uint8 (N,h,w,c) at the model's size -> float32, exactly as InputSpec.preprocess does."""
        return self.io.normalize(u8.astype("float32"), self.scale, self.offset)

    def run(self, x):
        """float32 (N,h,w,c) -> (N,K) probabilities, as fer_edge.runtime's Classifier.run."""
        if len(x) != self.batch:
            shape = list(self._in["shape"])
            shape[0] = len(x)
            self.it.resize_tensor_input(self._in["index"], shape, strict=False)
            self.it.allocate_tensors()
            self._in, self._out = self.it.get_input_details()[0], self.it.get_output_details()[0]
            self.batch = len(x)
        feed = self.io.model_input(x, self.in_q)
        self.it.set_tensor(self._in["index"], feed.astype(self._in["dtype"], order="C", copy=False))
        self.it.invoke()
        return self.io.probabilities(self.it.get_tensor(self._out["index"]).copy(), len(x), self.out_q, self.logits)


def run_job(job: dict, threads: int, settings: dict) -> dict:
    """Measure one bundle at one thread count (called in a fresh process)."""
    import numpy as np

    measure = _shared("bench.measure")
    out = {"rss_before_load_mb": measure.current_rss_mb()}
    inputs = np.load(job["inputs"], mmap_mode="r")  # mapped: only the sample is read before timing
    sample = np.array(inputs[: max(1, min(32, int(settings["batch"])))])
    with open(job["manifest"]) as fh:
        manifest = json.load(fh)

    t0 = time.perf_counter_ns()
    model = Model(job["model"], manifest, threads)
    model.run(model.normalize(sample[:1]))
    out["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6

    one = model.normalize(sample[:1])
    out["latency"] = measure.time_calls(lambda: model.run(one), settings["warmup"], settings["runs"])
    batch = int(settings["batch"])
    reps = -(-batch // len(sample))
    xb = model.normalize(np.concatenate([sample] * reps)[:batch])
    out["throughput_ips"] = measure.throughput(lambda: model.run(xb), batch, warmup=2)["images_per_s"]
    out["batch"] = batch
    out["peak_rss_mb"] = measure.peak_rss_mb()
    out["info"] = {"backend_package": model.package, "backend_version": model.version, "threads": threads}
    if job.get("evaluate", True):
        preds, probs = [], []
        for start in range(0, len(inputs), 64):
            p = model.run(model.normalize(np.array(inputs[start : start + 64])))
            preds.append(p.argmax(1))
            probs.append(p)
        out["predictions"] = np.concatenate(preds).tolist()
        if job.get("save_probs"):
            np.save(job["save_probs"], np.concatenate(probs))
    return out


def main(argv: list) -> int:
    if len(argv) >= 1 and argv[0] == "--job":  # child: one job, one thread count
        spec = json.load(open(argv[1]))
        job = spec["jobs"][int(argv[2])]
        try:
            job = dict(job, evaluate=argv[4] == "1")
            _emit({"ok": True, **run_job(job, int(argv[3]), spec)})
            return 0
        except Exception as exc:  # reported for this row; the other jobs go on
            _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return EXIT_BAD
    if len(argv) != 1:
        sys.stderr.write("usage: fer_edge_runner.py SPEC.json\n")
        return EXIT_BAD
    missing = check_packages()
    if missing:
        _emit({"ok": False, "error_kind": "missing-package", "error": missing})
        return EXIT_MISSING
    spec_path = argv[0]
    spec = json.load(open(spec_path))
    env = _shared("bench.environment").capture()  # its "timing" says whether this is emulation
    rows = []
    for i, job in enumerate(spec["jobs"]):
        for n, threads in enumerate(job["threads"]):
            # A fresh interpreter process per row, so peak memory is this model's alone.
            # Accuracy is evaluated once per model (the first thread count).
            args = ["--job", spec_path, str(i), str(threads), "1" if n == 0 else "0"]
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True)
            res = _parse(proc.stdout) or {"ok": False, "error": f"job exited {proc.returncode}: "
                                          + " | ".join(proc.stderr.strip().splitlines()[-3:])}
            res.update(id=job["id"], threads=threads)
            rows.append(res)
            sys.stderr.write(f"fer-edge runner: {job['id']} threads={threads}: {'ok' if res.get('ok') else res.get('error')}\n")
    _emit({"ok": True, "environment": env, "rows": rows})
    return 0


def _parse(stdout: str):
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
