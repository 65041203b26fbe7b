"""Classifier: a loaded bundle + one backend, with the bundle's own preprocessing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..bundle import Bundle, InputSpec, Manifest, read_bundle
from ..errors import ConfigError, ModelError
from ..formats import get_format
from ..tensor_io import io_mismatch, model_input, probabilities
from .backends import backend_class


@dataclass
class Prediction:
    label: str
    score: float
    scores: dict[str, float]


class Classifier:
    """Runs one bundle. Build it with :func:`load`; the interpreter/session is built once."""

    def __init__(self, bundle: Bundle, backend, backend_name: str, tta: str | None = None):
        self.bundle = bundle
        self.manifest: Manifest = bundle.manifest
        self.input_spec: InputSpec = bundle.manifest.input
        if tta is not None:  # override the bundle's declared test-time augmentation
            try:
                self.input_spec = InputSpec.from_dict({**self.input_spec.to_dict(), "tta": tta})
            except ModelError as exc:
                spec = self.input_spec
                raise ConfigError(f"{bundle.folder}: cannot use tta {tta!r} ({exc}); this bundle's input is "
                                  f"{'x'.join(map(str, spec.size))} with crop {list(spec.crop) if spec.crop else 'none'}") from None
        self.tta = self.input_spec.tta
        self.labels: list[str] = list(bundle.manifest.labels)
        self.backend = backend
        self.backend_name = backend_name
        q = self.manifest.quantization or {}
        self._in_q = q.get("input")
        self._out_q = q.get("output")
        self._logits = q.get("output_kind") == "logits"
        mismatch = io_mismatch(backend.input_dtype, self._in_q)
        if mismatch:
            raise ModelError(f"{bundle.folder}: {mismatch}")

    # -- inference -------------------------------------------------------------------------
    def run(self, x: np.ndarray) -> np.ndarray:
        """Already-preprocessed float32 (N,h,w,c) -> (N,K) probabilities. No preprocessing inside
        (int8-I/O models still quantize the input and dequantize the output: that is the model's I/O)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_spec.shape:
            raise ModelError(f"expected input (N,{','.join(map(str, self.input_spec.shape))}), got {x.shape}")
        out = probabilities(self.backend.run(model_input(x, self._in_q)), len(x), self._out_q, self._logits)
        if out.shape[1] != len(self.labels):
            raise ModelError(
                f"{self.bundle.folder}: model outputs {out.shape[1]} scores but the manifest has {len(self.labels)} labels"
            )
        return out

    def with_tta(self, tta: str) -> "Classifier":
        """This classifier with other test-time views (the same backend: nothing is reloaded)."""
        return self if tta == self.tta else Classifier(self.bundle, self.backend, self.backend_name, tta=tta)

    def preprocess(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """uint8 face crops (a list of any sizes, or a batch array) -> float32 (N,h,w,c)."""
        if isinstance(faces, np.ndarray):
            return self.input_spec.preprocess(faces)
        faces = list(faces)
        if not faces:
            return np.zeros((0, *self.input_spec.shape), np.float32)
        return np.concatenate([self.input_spec.preprocess_one(np.asarray(f)) for f in faces])

    def views(self, faces: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """uint8 faces -> the model inputs of each test-time view (InputSpec.views), float32."""
        spec = self.input_spec
        if isinstance(faces, np.ndarray):
            resized = spec.resize(faces)
        else:
            faces = list(faces)
            resized = (np.concatenate([spec.resize(np.asarray(f)[None]) for f in faces]) if faces
                       else np.zeros((0, *spec.size, spec.channels), np.float32))
        # np.array copies: without a crop the centre view is ``resized`` itself and the mirrored
        # view shares its memory, so normalizing in place would scale the mirror twice.
        return [spec.normalize(np.array(v, np.float32)) for v in spec.views(resized)]

    def _proba(self, faces) -> np.ndarray:
        """Probabilities averaged over the bundle's test-time views (one view without TTA)."""
        if self.tta == "none":
            return self.run(self.preprocess(faces))
        return np.mean([self.run(v) for v in self.views(faces)], axis=0).astype(np.float32)

    def predict_proba(self, faces: Sequence[np.ndarray] | np.ndarray, batch_size: int = 64) -> np.ndarray:
        """A list or batch of uint8 faces (gray (H,W) or RGB (H,W,3)) -> (N,K) float32 probabilities."""
        n = len(faces)
        out = np.zeros((n, len(self.labels)), np.float32)
        for start in range(0, n, batch_size):
            out[start : start + batch_size] = self._proba(faces[start : start + batch_size])
        return out

    def predict(self, face: np.ndarray) -> Prediction:
        """One uint8 face, gray (H,W) or RGB (H,W,3)."""
        probs = self._proba(np.asarray(face)[None])[0]
        best = int(probs.argmax())
        return Prediction(
            label=self.labels[best],
            score=float(probs[best]),
            scores={name: float(p) for name, p in zip(self.labels, probs)},
        )

    def info(self) -> dict[str, Any]:
        b = self.backend
        out = {
            "backend": self.backend_name,
            "backend_package": getattr(b, "package", self.backend_name),
            "backend_version": b.version,
            "threads": b.threads,
            "precision_hint": b.precision_hint,
            "model_file": str(self.bundle.model_path),
            "format": self.manifest.format,
            "precision": self.manifest.precision,
            "tta": self.tta,
        }
        if hasattr(b, "providers"):
            out["providers"] = list(b.providers)
        return out

    def __repr__(self) -> str:
        return f"Classifier({self.bundle.folder}, {self.backend_name}, {self.manifest.format}-{self.manifest.precision})"


def load(
    bundle_path: str | os.PathLike,
    backend: str | None = None,
    threads: int | None = None,
    precision_hint: str | None = None,
    providers: list | None = None,
    tta: str | None = None,
    device: str | None = None,
) -> Classifier:
    """Load a bundle folder (sha256-verified) and build its backend once.

    backend: "litert" | "onnxruntime" | "openvino"; default from the bundle's format.
    threads: default all cores (os.cpu_count()); reported by ``info()``.
    precision_hint: OpenVINO only ("f32" default, "f16", "bf16").
    providers: ONNX Runtime execution providers (default CPU only).
    tta: test-time augmentation ("none", "flip", "ten_crop"); default the bundle's own.
    device: keras backend only ("cpu" default, "gpu").
    """
    b = read_bundle(Path(bundle_path), verify=True)
    fmt = get_format(b.manifest.format)
    name = backend or fmt.backend
    if not name:
        raise ConfigError(
            f"{b.folder}: a {fmt.name!r} bundle has no on-device runtime; convert it first "
            f"(fer-edge convert {b.folder} --format tflite --int8)"
        )
    if precision_hint is not None and name != "openvino":
        raise ConfigError(f"precision_hint applies to the openvino backend only, not {name!r}")
    if device is not None and name != "keras":
        raise ConfigError(f"device applies to the keras backend only, not {name!r}")
    if device not in (None, "cpu", "gpu"):  # anything else would silently run on the CPU
        raise ConfigError(f"device must be 'cpu' or 'gpu', not {device!r}")
    if providers is not None and name != "onnxruntime":
        raise ConfigError(f"providers apply to the onnxruntime backend only, not {name!r}")
    if threads is not None and int(threads) < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    cls = backend_class(name, fmt.name)
    nthreads = int(threads) if threads else (os.cpu_count() or 1)
    kw = {"device": device} if device is not None else {}
    impl = cls(b.model_path, threads=nthreads, precision_hint=precision_hint, providers=providers, **kw)
    return Classifier(b, impl, name, tta=tta)
