"""`fer-edge eval`: a model file or bundle on a dataset -> metrics.json, plots, report.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir, write_json
from ..bundle import MANIFEST, InputSpec, read_bundle
from ..data.dataset import select
from ..errors import ConfigError, ModelError, require_extras
from ..labels import FER7, canonical, label_set
from . import data as tdata

NORMS = {"none": (1.0, (0.0,)), "unit": (1 / 255.0, (0.0,)), "tanh": (2 / 255.0, (1.0,))}


def _load_keras(path: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for foreign/broken files
        raise ModelError(f"{path}: cannot load as a Keras model ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _model_and_spec(model_path: Path, labels, input_norm, color, interpolation):
    """(keras model, InputSpec, labels, bundle provenance or None)."""
    if model_path.is_dir() or model_path.name == MANIFEST:
        bundle = read_bundle(model_path)
        if bundle.manifest.format != "keras":
            raise ModelError(
                f"{bundle.folder}: format {bundle.manifest.format!r}; `fer-edge eval` runs Keras bundles "
                "(use `fer-edge bench` for converted models)"
            )
        return _load_keras(bundle.model_path), bundle.manifest.input, list(bundle.labels), bundle.manifest.provenance
    if not model_path.is_file():
        raise ModelError(f"{model_path}: no such model file or bundle")
    model = _load_keras(model_path)
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    h, w, c = shape[1], shape[2], shape[3]
    if h is None or w is None:
        raise ModelError(f"{model_path}: input size is not fixed ({shape}); use a bundle that states it")
    color = color or ("gray" if c == 1 else "rgb")
    scale, offset = NORMS[input_norm]
    spec = InputSpec(size=(h, w), color=color, scale=scale, offset=offset, interpolation=interpolation)
    if labels is None:
        names = list(FER7)
    elif "," in labels:
        names = [canonical(n) for n in labels.split(",")]
    else:
        names = list(label_set(labels))
    k = model.output_shape[-1]
    if len(names) != k:
        raise ConfigError(f"{model_path}: model has {k} outputs but --labels gives {len(names)} ({names})")
    return model, spec, names, None


def evaluate_model(
    model: str | Path,
    data_path: str | Path,
    kind: str | None = None,
    split: str | None = None,
    protocol: str | None = None,
    labels: str | None = None,
    input_norm: str = "none",
    color: str | None = None,
    interpolation: str = "area",
    out: str | Path | None = None,
    tsne_samples: int = 1500,
) -> dict[str, Any]:
    import warnings

    require_extras(["train"], "fer-edge eval")
    from .evaluate import features, metrics_for, predict
    from . import report

    # Keras notes that a model's named input received a plain tensor: noise here.
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    model_path = Path(model)
    keras_model, spec, model_labels, prov = _model_and_spec(model_path, labels, input_norm, color, interpolation)
    ds, kind = tdata.load(data_path, kind)
    # Compare on the labels both sides know (e.g. CK+ contempt has no FER2013 class).
    keep = tuple(n for n in ds.label_names if n in model_labels)
    if not keep:
        raise ConfigError(f"{data_path}: none of its labels {ds.label_names} are model labels {model_labels}")
    dropped = [n for n in ds.label_names if n not in keep]
    ds = ds.with_labels(keep) if keep != tuple(ds.label_names) else ds

    protocol = protocol or ("split" if split else "bundle" if prov and _same_data(prov, data_path) else "split")
    if protocol == "bundle":
        if not prov or "data" not in prov:
            raise ConfigError(f"{model_path}: not a bundle with a stored test selector; use --protocol split")
        selector = prov["data"]["test"]
        if prov["data"].get("subset"):  # quick runs reduce the dataset before selecting (data.select_role)
            ds = select(ds, prov["data"]["subset"])
    elif protocol == "all":
        selector = {}
    else:
        split = split or "test"
        selector = {"split": split}
        if split in ("train", "val", "test") and split not in ds.roles and split not in set(ds.splits.tolist()):
            selector = {}  # datasets without splits (CK+, JAFFE): every image is test data
            split = "all (dataset has no splits)"
    part = select(ds, selector) if selector else ds
    scale = (float(spec.scale), tuple(float(o) for o in spec.offset))
    x = np.asarray(tdata.to_input(part, spec))  # a shard cache is read into memory here (the selected faces)
    probs = predict(keras_model, x, scale)
    m = metrics_for(probs, part.labels, keep, model_labels)
    summary = {
        "model": str(model_path),
        "data": str(data_path),
        "kind": kind,
        "selection": selector or "all",
        "dropped_labels": dropped,
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "n": m["n"],
    }
    result = {"summary": summary, "test": m, "input": spec.to_dict()}
    if out:
        with atomic_dir(out, overwrite=True) as tmp:
            write_json(tmp / "metrics.json", result)
            (tmp / "plots").mkdir()
            report.plot_confusion(m, tmp / "plots" / "confusion_test.png", "test")
            feat, idx = features(keras_model, x, scale, tsne_samples)
            report.plot_tsne(feat, part.labels[idx], keep, tmp / "plots" / "tsne_test.png",
                             f"t-SNE of penultimate features (n={len(idx)})")
            report.write_report(tmp / "report.md", f"Evaluation of {model_path.name}", {
                "model": str(model_path), "data": f"{data_path} ({kind})", "selection": str(selector or "all"),
                "input": f"{spec.shape} {spec.color}, scale {spec.scale:.5f} offset {list(spec.offset)}",
                **({"dropped labels": ", ".join(dropped)} if dropped else {}),
            }, {"test": m}, [])
    return result


def _same_data(prov: dict[str, Any], data_path) -> bool:
    try:
        return Path(prov["data"]["path"]).resolve() == Path(data_path).resolve()
    except (KeyError, TypeError):
        return False
