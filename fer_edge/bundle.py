"""Self-describing model bundles: a model file plus ``manifest.json``.

This module is the single owner of the manifest schema. Training, conversion,
the runtime and the benchmarks all read and write bundles through it, so the
preprocessing and label order travel with the model and nothing is guessed from
file names. It depends on numpy and the standard library only.

A bundle is a folder::

    manifest.json
    model.keras | model.tflite | model.onnx | model.xml + model.bin
    (optional) report.md, metrics.json, plots/...

Input contract: the runtime turns a uint8 face crop (H, W) or (H, W, 3 RGB) into
the model input with ``InputSpec.preprocess``: resize to ``size`` with
``interpolation``, convert to ``color`` ("gray" -> 1 channel, "rgb"/"bgr" -> 3),
cast to float32, then ``x * scale - offset`` per channel (``offset``/``scale`` are
usually identity because Keras models carry their own normalization layers).
For int8-I/O models the float input is then quantized with ``quantization.input``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import tensor_io
from .atomic import write_json
from .errors import ModelError

SCHEMA = "fer-edge/bundle@1"
MANIFEST = "manifest.json"


TTA_MODES = ("none", "flip", "ten_crop")  # views averaged by the runtime (InputSpec.views)


@dataclass
class InputSpec:
    size: tuple[int, int]  # (height, width) the face is resized to
    color: str = "gray"  # "gray" | "rgb" | "bgr"
    scale: float = 1.0  # x_model = x_uint8 * scale - offset
    offset: tuple[float, ...] = (0.0,)
    interpolation: str = "area"  # "area" | "bilinear" | "bicubic" (OpenCV names, lower case)
    layout: str = "NHWC"
    dtype: str = "float32"
    # (height, width) of the model input cut from the resized face: the centre crop, or with
    # ``tta`` several crops. None: the model takes the whole resized face.
    crop: tuple[int, int] | None = None
    tta: str = "none"  # "none" | "flip" | "ten_crop": the views the runtime averages

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def shape(self) -> tuple[int, int, int]:
        """The model input (h, w, c): the crop when there is one."""
        h, w = self.crop or self.size
        return (int(h), int(w), self.channels)

    @property
    def n_views(self) -> int:
        return {"none": 1, "flip": 2, "ten_crop": 10}[self.tta]

    def resize(self, images: np.ndarray) -> np.ndarray:
        """A batch of uint8 faces, (N,H,W) gray or (N,H,W,3) RGB -> float32 (N,*size,c), 0..255."""
        import cv2  # base dependency; imported lazily so manifests load without it

        batch = np.asarray(images)
        if batch.dtype != np.uint8:
            raise ModelError(f"expected uint8 images, got {batch.dtype}")
        if batch.ndim not in (3, 4):
            raise ModelError(f"expected a batch (N,H,W) or (N,H,W,3), got shape {batch.shape}")
        interp = _INTERP[self.interpolation]
        h, w = int(self.size[0]), int(self.size[1])
        out = np.empty((len(batch), h, w, self.channels), dtype=np.float32)
        for i, img in enumerate(batch):
            img = _to_color(img, self.color)
            if img.shape[:2] != (h, w):
                img = cv2.resize(img, (w, h), interpolation=interp)
            out[i] = img.reshape(h, w, self.channels)
        return out

    def views(self, resized: np.ndarray, tta: str | None = None) -> list[np.ndarray]:
        """The model-input views of resized faces (N,*size,c): the centre crop first, then
        for ``flip`` its mirror image, for ``ten_crop`` the four corner crops and the five
        mirrored. Any array type with numpy slicing works (uint8 or float)."""
        tta = self.tta if tta is None else tta
        if tta not in TTA_MODES:
            raise ModelError(f"tta must be one of {', '.join(TTA_MODES)}, not {tta!r}")
        H, W = resized.shape[1:3]
        h, w = self.shape[:2]
        if (H, W) != (int(self.size[0]), int(self.size[1])):
            raise ModelError(f"expected faces resized to {tuple(self.size)}, got {(H, W)}")
        top, left = (H - h) // 2, (W - w) // 2
        crops = [(top, left)]
        if tta == "ten_crop":
            if (H, W) == (h, w):
                raise ModelError("tta 'ten_crop' needs an input crop smaller than the resized face")
            crops += [(0, 0), (0, W - w), (H - h, 0), (H - h, W - w)]
        out = [resized[:, t : t + h, c : c + w] for t, c in crops]
        if tta != "none":
            out += [v[:, :, ::-1] for v in out]
        return out

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """A batch of uint8 faces, (N,H,W) gray or (N,H,W,3) RGB -> float32 model input (N,h,w,c):
        resize, centre crop (if any), then normalize."""
        return self.normalize(np.ascontiguousarray(self.views(self.resize(images), "none")[0]))

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """Resized float32 pixels 0..255 -> model input (``x * scale - offset``), in place."""
        return tensor_io.normalize(x, self.scale, self.offset)

    def preprocess_one(self, image: np.ndarray) -> np.ndarray:
        """One uint8 face, (H,W) gray or (H,W,3) RGB -> float32 (1,h,w,c)."""
        return self.preprocess(np.asarray(image)[None])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        d["offset"] = list(self.offset)
        d["crop"] = list(self.crop) if self.crop else None
        d["channels"] = self.channels
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        d = dict(d)
        d.pop("channels", None)
        crop = d.get("crop")
        spec = cls(**{**d, "size": tuple(d["size"]), "offset": tuple(d.get("offset", (0.0,))),
                      "crop": tuple(int(c) for c in crop) if crop else None})
        if spec.color not in ("gray", "rgb", "bgr"):
            raise ModelError(f"input color must be gray, rgb or bgr, not {spec.color!r}")
        if spec.interpolation not in _INTERP:
            raise ModelError(f"input interpolation must be one of {sorted(_INTERP)}, not {spec.interpolation!r}")
        if spec.tta not in TTA_MODES:
            raise ModelError(f"input tta must be one of {', '.join(TTA_MODES)}, not {spec.tta!r}")
        if spec.crop and not all(0 < c <= s for c, s in zip(spec.crop, spec.size)):
            raise ModelError(f"input crop {list(spec.crop)} must fit inside size {list(spec.size)}")
        if spec.tta == "ten_crop" and tuple(spec.crop or spec.size) == tuple(spec.size):
            raise ModelError("input tta 'ten_crop' needs a crop smaller than size")
        return spec


def _interp_table() -> dict[str, int]:
    # cv2 constants, written out so this module imports without OpenCV.
    return {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3}


_INTERP = _interp_table()
INTERPOLATIONS = tuple(_INTERP)  # the names InputSpec.interpolation accepts


def _to_color(img: np.ndarray, color: str) -> np.ndarray:
    import cv2

    gray_in = img.ndim == 2 or img.shape[-1] == 1
    if color == "gray":
        return img if gray_in else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if gray_in:
        img = cv2.cvtColor(img.reshape(img.shape[0], img.shape[1]), cv2.COLOR_GRAY2RGB)
    return img if color == "rgb" else img[..., ::-1]


@dataclass
class FaceSpec:
    """How a face is cut from a larger image (shared by training data prep and live)."""

    margin: float = 0.2  # extra border around the detector box, as a fraction of its size
    align: bool = False  # rotate so the eyes are level (needs landmarks)
    square: bool = True


@dataclass
class Manifest:
    name: str
    format: str  # a key of fer_edge.formats.FORMATS
    precision: str  # a key of fer_edge.quantization.QUANT_CONFIGS
    model_file: str
    labels: list[str]
    input: InputSpec
    face: FaceSpec = field(default_factory=FaceSpec)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    quantization: dict[str, Any] = field(default_factory=dict)  # io scales/zero points, calibration set
    provenance: dict[str, Any] = field(default_factory=dict)  # recipe, dataset, protocol, seed, source model
    metrics: dict[str, Any] = field(default_factory=dict)  # summary metrics (full ones in metrics.json)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "name": self.name,
            "format": self.format,
            "precision": self.precision,
            "model_file": self.model_file,
            "files": self.files,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "face": asdict(self.face),
            "quantization": self.quantization,
            "provenance": self.provenance,
            "metrics": self.metrics,
            "versions": self.versions,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "manifest") -> "Manifest":
        if d.get("schema") != SCHEMA:
            raise ModelError(f"{where}: schema is {d.get('schema')!r}, expected {SCHEMA!r}")
        missing = [k for k in ("name", "format", "precision", "model_file", "labels", "input") if k not in d]
        if missing:
            raise ModelError(f"{where}: missing fields {missing}")
        try:
            return cls(
                name=d["name"],
                format=d["format"],
                precision=d["precision"],
                model_file=d["model_file"],
                labels=list(d["labels"]),
                input=InputSpec.from_dict(d["input"]),
                face=FaceSpec(**d.get("face", {})),
                files=dict(d.get("files", {})),
                quantization=dict(d.get("quantization", {})),
                provenance=dict(d.get("provenance", {})),
                metrics=dict(d.get("metrics", {})),
                versions=dict(d.get("versions", {})),
                created=d.get("created", ""),
            )
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelError(f"{where}: malformed manifest ({exc})") from exc


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def base_versions() -> dict[str, str]:
    from . import __version__

    return {"fer_edge": __version__, "python": platform.python_version(), "numpy": np.__version__}


def write_bundle(folder: str | Path, manifest: Manifest, model_files: list[str]) -> Manifest:
    """Hash ``model_files`` (already inside ``folder``) into the manifest and write it.

    Call this inside ``atomic_dir`` so a failure leaves nothing behind.
    """
    folder = Path(folder)
    manifest.files = {name: sha256_file(folder / name) for name in model_files}
    if manifest.model_file not in manifest.files:
        raise ValueError(f"model_file {manifest.model_file} not among {model_files}")
    manifest.versions = {**base_versions(), **manifest.versions}
    manifest.created = manifest.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    write_json(folder / MANIFEST, manifest.to_dict())
    return manifest


@dataclass
class Bundle:
    folder: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.folder / self.manifest.model_file

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels


def read_bundle(path: str | Path, verify: bool = True) -> Bundle:
    """Read a bundle folder (or its manifest.json); verify each file's sha256."""
    path = Path(path)
    folder = path.parent if path.name == MANIFEST else path
    if not folder.exists():
        raise ModelError(f"{folder}: no such bundle (folder or manifest.json expected)")
    if not folder.is_dir():
        raise ModelError(f"{folder}: not a bundle folder; a bundle is a folder with {MANIFEST} and the model file")
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise ModelError(f"{folder}: no {MANIFEST}; not a fer-edge bundle")
    try:
        data = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{mpath}: not valid JSON ({exc})") from exc
    manifest = Manifest.from_dict(data, where=str(mpath))
    if verify:
        if not manifest.files:
            raise ModelError(f"{mpath}: lists no files with sha256")
        for name, digest in manifest.files.items():
            fpath = folder / name
            if not fpath.is_file():
                raise ModelError(f"{mpath}: lists {name}, which is missing from {folder}")
            actual = sha256_file(fpath)
            if actual != digest:
                raise ModelError(
                    f"{fpath}: sha256 {actual[:12]}... does not match the manifest ({digest[:12]}...); "
                    "the model file was changed or the manifest belongs to another model"
                )
    return Bundle(folder=folder, manifest=manifest)
