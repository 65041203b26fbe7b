"""`fer-edge eval`: a bundle of any format, or a plain Keras model file, on a dataset ->
metrics.json, plots, report.md. Scoring is fer_edge.evaluation's, as everywhere else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_dir, write_json
from ..bundle import MANIFEST, InputSpec
from ..data import load_dataset, names_data, provenance_data
from ..errors import ConfigError, ModelError, require, require_extras
from ..evaluation import evaluate, nameable, select_faces, split_selection
from ..formats import FORMATS
from ..labels import FER7, canonical, label_set

NORMS = {"none": (1.0, (0.0,)), "unit": (1 / 255.0, (0.0,)), "tanh": (2 / 255.0, (1.0,))}


def _load_keras(path: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for foreign/broken files
        raise ModelError(f"{path}: cannot load as a Keras model ({type(exc).__name__}: {str(exc)[:200]})") from exc


# Options that describe a plain model file's input; a bundle's manifest states all of them.
PLAIN_FILE_OPTIONS = ("labels", "input_norm", "color", "interpolation")


# Files that are only ever evaluated inside a bundle: its manifest states labels and preprocessing.
BUNDLE_MODEL_SUFFIXES = tuple(dict.fromkeys(
    suffix for fmt in FORMATS.values() if fmt.name != "keras"
    for suffix in (fmt.suffix, *(Path(name).suffix for name in fmt.extra_files))))


def _refuse_bundle_files(model_path: Path) -> None:
    """A file given where its bundle folder was meant (or a bare .tflite/.onnx/OpenVINO file, which eval
    cannot read without a manifest): one line saying what to pass instead, before any extra is checked."""
    folder, suffix = model_path.parent, model_path.suffix.lower()
    if (folder / MANIFEST).is_file():
        what = "the model file" if suffix in (*BUNDLE_MODEL_SUFFIXES, ".keras") else "a file"
        raise ModelError(f"{model_path}: {what} of the bundle {folder}, not a bundle; pass the bundle folder "
                         f"(fer-edge eval {folder} --data ...)")
    if suffix in BUNDLE_MODEL_SUFFIXES:
        raise ModelError(f"{model_path}: a {model_path.suffix} file without {MANIFEST} beside it; fer-edge eval takes "
                         f"a bundle folder ({MANIFEST} + model file, e.g. from fer-edge convert) or a plain .keras file")


def _classifier(model_path: Path, labels, input_norm, color, interpolation):
    """(classifier, its Keras model or None (t-SNE needs one), the bundle's provenance["data"] or None)."""
    if model_path.is_dir() or model_path.name == MANIFEST:
        from ..runtime import load

        given = [f"--{name.replace('_', '-')}" for name, value in zip(PLAIN_FILE_OPTIONS, (labels, input_norm, color, interpolation))
                 if value is not None]
        if given:  # never overridden silently: the manifest's preprocessing is what the model was trained with
            raise ConfigError(f"{model_path}: {', '.join(given)} only apply to a plain model file; a bundle declares "
                              f"its own labels and preprocessing in {MANIFEST}")

        clf = load(model_path)  # any format; a `fer-edge train` run through the keras backend
        return clf, getattr(clf.backend, "model", None), provenance_data(clf.manifest) or None
    if not model_path.is_file():
        raise ModelError(f"{model_path}: no such model file or bundle")
    _refuse_bundle_files(model_path)
    require_extras(["train"], "fer-edge eval MODEL.keras")
    from ..runtime.keras_backend import keras_classifier

    model = _load_keras(model_path)
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    h, w, c = shape[1], shape[2], shape[3]
    if h is None or w is None:
        raise ModelError(f"{model_path}: input size is not fixed ({shape}); use a bundle that states it")
    color = color or ("gray" if c == 1 else "rgb")
    scale, offset = NORMS[input_norm or "none"]
    spec = InputSpec(size=(h, w), color=color, scale=scale, offset=offset, interpolation=interpolation or "area")
    if labels is None:
        names = list(FER7)
    elif "," in labels:
        names = [canonical(n) for n in labels.split(",")]
    else:
        names = list(label_set(labels))
    k = model.output_shape[-1]
    if len(names) != k:
        raise ConfigError(f"{model_path}: model has {k} outputs but --labels gives {len(names)} ({names})")
    return keras_classifier(model, spec, names, model_path.parent, model_path.name), model, None


def evaluate_model(
    model: str | Path,
    data_path: str | Path,
    kind: str | None = None,
    split: str | None = None,
    protocol: str | None = None,
    labels: str | None = None,
    input_norm: str | None = None,
    color: str | None = None,
    interpolation: str | None = None,
    out: str | Path | None = None,
    tsne_samples: int = 1500,
    tta: str | None = None,
) -> dict[str, Any]:
    """Score ``model`` on ``data_path``. ``labels``, ``input_norm`` (default none), ``color`` and
    ``interpolation`` (default area) describe a plain model file and are refused for a bundle.
    ``tta``: test-time views ("none", "flip", "ten_crop"), default the bundle's own."""
    import warnings

    # Keras notes that a model's named input received a plain tensor: noise here.
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    if out:
        require("matplotlib", "train", "fer-edge eval --out (plots)")
    model_path = Path(model)
    clf, keras_model, prov = _classifier(model_path, labels, input_norm, color, interpolation)
    if tta is not None:
        clf = clf.with_tta(tta)
    ds = load_dataset(data_path, kind)
    kind = kind or ds.info.get("kind", ds.name)

    protocol = protocol or ("split" if split else "bundle" if prov and names_data(prov, data_path) else "split")
    if protocol == "bundle":
        if not prov:
            raise ConfigError(f"{model_path}: not a bundle with a stored test selector; use --protocol split")
        selection, selector = "test", prov.get("test") or {"split": "test"}
    elif protocol == "all":
        selection = selector = None
    else:
        selection = selector = split_selection(ds, split or "test")
    m = evaluate(clf, ds, selection, provenance=prov)
    summary = {
        "model": str(model_path),
        "data": str(data_path),
        "kind": kind,
        "selection": selector or "all",
        "dropped_labels": m["dropped_labels"],
        "tta": clf.tta,
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "n": m["n"],
    }
    result = {"summary": summary, "test": m, "input": clf.input_spec.to_dict()}
    if out:
        _write_outputs(Path(out), result, clf, keras_model, ds, selection, prov, tsne_samples)
    return result


def _write_outputs(out: Path, result, clf, keras_model, ds, selection, prov, tsne_samples: int) -> None:
    from . import report

    s, m, spec = result["summary"], result["test"], clf.input_spec
    notes = []
    with atomic_dir(out, overwrite=True) as tmp:
        write_json(tmp / "metrics.json", result)
        (tmp / "plots").mkdir()
        report.plot_confusion(m, tmp / "plots" / "confusion_test.png", "test")
        if keras_model is not None and tsne_samples:  # 0: no t-SNE plot
            from .evaluate import features

            faces = nameable(select_faces(ds, selection, prov), clf.labels)[0]
            feat, idx = features(keras_model, spec, faces.images, tsne_samples)
            report.plot_tsne(feat, faces.labels[idx], faces.label_names, tmp / "plots" / "tsne_test.png",
                             f"t-SNE of penultimate features (n={len(idx)})")
        elif tsne_samples:
            notes.append(f"no t-SNE plot: it needs the Keras model's features; this bundle is "
                         f"{clf.manifest.format}-{clf.manifest.precision}")
        report.write_report(tmp / "report.md", f"Evaluation of {Path(s['model']).name}", {
            "model": s["model"], "runtime": f"{clf.backend_name} ({clf.manifest.format}-{clf.manifest.precision})",
            "data": f"{s['data']} ({s['kind']})", "selection": str(s["selection"]),
            "input": f"{spec.shape} {spec.color}, scale {spec.scale:.5f} offset {list(spec.offset)}",
            **({"dropped labels": ", ".join(s["dropped_labels"])} if s["dropped_labels"] else {}),
        }, {"test": m}, notes)


