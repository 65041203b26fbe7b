"""`python -m fer_edge.doctor.infer BACKEND BUNDLE`: import the backend's packages, run one real
inference of BUNDLE on the shipped sample photo, print one JSON line. Run by `fer-edge doctor` in a
child process, so an import that breaks (tflite-runtime built for NumPy 1 under NumPy 2) or a crash
is reported instead of ending the doctor."""

from __future__ import annotations

import importlib
import json
import sys
import time

# The Python modules each backend may use, in the order the runtime tries them.
MODULES = {
    "litert": ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),
    "onnxruntime": ("onnxruntime",),
    "openvino": ("openvino",),
}


def try_import(name: str) -> dict:
    top = name.split(".")[0]
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (top, name):
            return {"installed": False}
        return {"installed": True, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # noqa: BLE001 - whatever the import raises is the finding
        return {"installed": True, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    mod = sys.modules[top]
    return {"installed": True, "ok": True, "version": getattr(mod, "__version__", None)}


def sample_face(image, face_spec):
    """The photo's face cut as `predict` cuts it (YuNet or the Haar fallback); the whole photo if none."""
    from fer_edge.face import create_detector, crop_face

    try:
        faces = create_detector("auto").detect(image)
    except Exception:  # noqa: BLE001 - the detector has its own check; the model still gets a real photo
        faces = []
    return crop_face(image, faces[0], face_spec) if faces else image


def main(argv: list[str]) -> int:
    backend, bundle = argv
    out: dict = {"backend": backend, "imports": {m.split(".")[0]: try_import(m) for m in MODULES[backend]}}
    try:
        import numpy as np

        out["numpy"] = np.__version__
        from fer_edge.live.predict import read_rgb
        from fer_edge.runtime import load
        from fer_edge.shipped import sample_image

        clf = load(bundle, backend=backend, threads=1)
        face = sample_face(read_rgb(sample_image()), clf.manifest.face)
        probs = clf.predict_proba([face])  # first call: allocation and kernel set-up
        t0 = time.perf_counter()
        for _ in range(5):
            probs = clf.predict_proba([face])
        ms = (time.perf_counter() - t0) * 1000 / 5
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != (1, len(clf.labels)) or not np.all(np.isfinite(p)) or abs(p.sum() - 1.0) > 0.02:
            raise RuntimeError(f"implausible output {p.round(4).tolist()} (shape {p.shape}, sum {p.sum():.4f})")
        info = clf.info()
        out.update(ok=True, package=info.get("backend_package"), version=info.get("backend_version"),
                   ms=round(ms, 3), label=clf.labels[int(p.argmax())], score=round(float(p.max()), 4))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
