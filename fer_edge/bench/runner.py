"""Standalone bench runner for a remote device (Raspberry Pi): numpy + a TFLite interpreter only.

Copied to the device as ``fer_edge_runner.py`` beside ``fer_edge_measure.py`` and
``fer_edge_environment.py``; needs no fer_edge install and no OpenCV, because the host
already resized/converted the evaluation faces to the model's input size (uint8). Here
we apply the manifest's affine normalization (``x * scale - offset``, float32, same
numpy operations as the host), the model's int8 input quantization, and time the
interpreter.

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

try:  # inside the fer_edge package
    from . import environment
except ImportError:  # copied beside its siblings on the device
    import fer_edge_environment as environment  # type: ignore[no-redef]


def _measure_module():
    """Imported late: it needs numpy, whose absence must become a clear error, not a traceback."""
    try:
        from . import measure
    except ImportError:
        import fer_edge_measure as measure  # type: ignore[no-redef]
    return measure


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
    """One TFLite model with the bundle's normalization and int8 I/O quantization."""

    def __init__(self, model_path: str, manifest: dict, threads: int):
        import numpy as np

        self.np = np
        mod, self.package, self.version = interpreter_module()
        self.it = mod.Interpreter(model_path=model_path, num_threads=threads)
        self.it.allocate_tensors()
        self._in = self.it.get_input_details()[0]
        self._out = self.it.get_output_details()[0]
        self.batch = int(self._in["shape"][0])
        spec = manifest["input"]
        self.scale = np.float32(spec.get("scale", 1.0))
        self.offset = np.asarray(spec.get("offset", [0.0]), dtype=np.float32)
        q = manifest.get("quantization") or {}
        self.in_q = q.get("input") or self._detail_q(self._in)
        self.out_q = q.get("output") or self._detail_q(self._out)
        self.logits = q.get("output_kind") == "logits"

    def _detail_q(self, detail):
        dtype = self.np.dtype(detail["dtype"])
        if dtype.kind not in "iu":
            return None
        scale, zp = detail["quantization"]
        return {"scale": float(scale), "zero_point": int(zp), "dtype": dtype.name}

    def normalize(self, u8):
        """uint8 (N,h,w,c) at the model's size -> float32, exactly as InputSpec.preprocess does."""
        np = self.np
        x = u8.astype(np.float32)
        if self.scale != 1.0:
            x *= self.scale
        if np.any(self.offset != 0):
            x -= self.offset
        return x

    def run(self, x):
        """float32 (N,h,w,c) -> (N,K) probabilities; same I/O arithmetic as fer_edge.runtime."""
        np = self.np
        if len(x) != self.batch:
            shape = list(self._in["shape"])
            shape[0] = len(x)
            self.it.resize_tensor_input(self._in["index"], shape, strict=False)
            self.it.allocate_tensors()
            self._in, self._out = self.it.get_input_details()[0], self.it.get_output_details()[0]
            self.batch = len(x)
        if self.in_q:
            info = np.iinfo(np.dtype(self.in_q["dtype"]))
            q = np.round(x / np.float32(self.in_q["scale"])) + int(self.in_q["zero_point"])
            x = np.clip(q, info.min, info.max).astype(self.in_q["dtype"])
        self.it.set_tensor(self._in["index"], np.ascontiguousarray(x, dtype=self._in["dtype"]))
        self.it.invoke()
        out = self.it.get_tensor(self._out["index"]).copy()
        if self.out_q:
            out = (out.astype(np.float32) - np.float32(self.out_q["zero_point"])) * np.float32(self.out_q["scale"])
        out = out.astype(np.float32).reshape(len(x), -1)
        if self.logits:
            out = np.exp(out - out.max(1, keepdims=True))
            out /= out.sum(1, keepdims=True)
        return out


def run_job(job: dict, threads: int, settings: dict) -> dict:
    """Measure one bundle at one thread count (called in a fresh process)."""
    import numpy as np

    measure = _measure_module()
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
    env = environment.capture()  # its "timing" says whether this is emulation
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
