"""The float source of a conversion: a Keras model file or a `fer-edge train` run (keras bundle)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundle import MANIFEST, InputSpec, read_bundle, sha256_file
from ..errors import ConfigError, ModelError
from ..labels import LABEL_SETS


@dataclass
class SourceModel:
    path: Path  # the model file
    run_dir: Path | None  # the run/bundle folder, when MODEL was one
    model: Any  # keras.Model
    name: str
    labels: list[str]
    input: InputSpec
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)
    face: Any = None

    @property
    def data(self) -> dict[str, Any] | None:
        """provenance["data"]: {"path", "kind", "labels", "train", "val", "test"} selectors."""
        return self.provenance.get("data")

    @property
    def default_out(self) -> Path:
        return (self.run_dir or self.path.parent) / "export"


def load_source(path: str | Path) -> SourceModel:
    """Load MODEL for conversion; a user mistake raises ModelError naming the file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file or run folder")
    if path.is_dir() or path.name == MANIFEST:
        return _from_bundle(path)
    return _from_file(path)


def _from_bundle(path: Path) -> SourceModel:
    b = read_bundle(path, verify=True)
    m = b.manifest
    if m.format != "keras":
        raise ModelError(
            f"{b.folder}: is a {m.format!r} bundle; convert needs the float Keras model "
            "(a `fer-edge train` run folder or a .keras file)"
        )
    model = _load_keras(b.model_path)
    _check_io(model, b.model_path, m.input.shape, len(m.labels))
    return SourceModel(
        path=b.model_path,
        run_dir=b.folder,
        model=model,
        name=m.name,
        labels=list(m.labels),
        input=m.input,
        sha256=m.files[m.model_file],
        provenance=dict(m.provenance),
        face=m.face,
    )


def _from_file(path: Path) -> SourceModel:
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"{path}: not a Keras model (.keras/.h5) or a run folder with {MANIFEST}")
    model = _load_keras(path)
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if shape is None or len(shape) != 3 or None in shape or shape[-1] not in (1, 3):
        raise ModelError(f"{path}: expected one image input (H,W,1|3), got {model.input_shape}")
    k = int(model.output_shape[-1])
    by_size = {len(v): v for v in LABEL_SETS.values()}
    if k not in by_size:
        raise ConfigError(
            f"{path}: a bare model with {k} outputs has no known label order; convert its `fer-edge train` "
            "run folder instead (its manifest names the labels)"
        )
    spec = InputSpec(size=(int(shape[0]), int(shape[1])), color="gray" if shape[-1] == 1 else "rgb")
    return SourceModel(
        path=path, run_dir=None, model=model, name=path.stem, labels=list(by_size[k]), input=spec,
        sha256=sha256_file(path),
    )


def _load_keras(path: Path):
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a Keras model file (a .keras file is a zip archive)")
    import keras

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises TypeError/ValueError/OSError for unknown layers and bad files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Lambda" in str(exc) or "Could not locate" in str(exc) or "Unknown layer" in str(exc):
            raise ModelError(
                f"{path}: unsupported layer ({msg[:300]}); fer-edge converts models of stock Keras layers only"
            ) from exc
        raise ModelError(f"{path}: cannot load as a Keras model ({msg[:300]})") from exc


def _check_io(model, path: Path, shape: tuple[int, int, int], k: int) -> None:
    got_in = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if got_in != shape:
        raise ModelError(f"{path}: model input {model.input_shape} does not match the manifest input {shape}")
    if int(model.output_shape[-1]) != k:
        raise ModelError(f"{path}: model has {model.output_shape[-1]} outputs but the manifest {k} labels")


def iter_layers(model):
    """All layers, descending into nested models (a backbone inside the classifier)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from iter_layers(layer)


def int8_risk(model) -> str | None:
    """EfficientNet-B0-like nets (swish + squeeze-excite) lose many points under int8 PTQ."""
    swish = se = False
    for layer in iter_layers(model):
        act = getattr(layer, "activation", None)
        name = getattr(act, "__name__", str(act))
        if name in ("swish", "silu"):
            swish = True
        if type(layer).__name__ == "Multiply":
            se = True
    if swish and se:
        return (
            "this model uses swish + squeeze-excite (EfficientNet-B0-like), which loses many accuracy points "
            "under int8 post-training quantization; prefer --fp16 or --dynamic for it, or train an "
            "EfficientNet-Lite0 or MobileNetV2 recipe (ReLU6, no SE) for int8"
        )
    return None
