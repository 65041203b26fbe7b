"""`fer-edge train`: recipe + data -> a run folder that is a bundle.

Run folder (``runs/NAME``): model.keras, manifest.json (via fer_edge.bundle), metrics.json,
history.csv, plots/*.png, report.md, checkpoints/ (for --resume). Every final file is
written to a temporary name and renamed; manifest.json is written last, so a folder with
a manifest is a finished run. LOSO runs hold one such bundle per fold under folds/ and a
top-level bundle (the first fold's model) whose metrics.json pools all folds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import paths
from ..atomic import write_json
from ..bundle import MANIFEST, InputSpec, Manifest, write_bundle
from ..data import FaceDataset, load_dataset
from ..doctor.probes import native_bf16
from ..face.framing import dataset_framing
from ..errors import ConfigError, FerEdgeError, require_extras
from ..metrics import pooled_metrics
from . import data as tdata
from .array_cache import array_key, cached_array
from .protocols import Task, protocol_config, tasks
from .recipes import PRECISIONS, Recipe, training_digest


def input_spec(recipe: Recipe) -> InputSpec:
    inp = recipe.section("input")
    size = inp.get("size", [48, 48])
    return InputSpec.from_dict({
        "size": (int(size[0]), int(size[1])),
        "color": inp.get("color", "gray"),
        "scale": float(inp.get("scale", 1.0)),
        "offset": tuple(float(o) for o in inp.get("offset", [0.0])),
        "interpolation": inp.get("interpolation", "bilinear"),
        "crop": inp.get("crop"),
        "tta": inp.get("tta", "none"),
    })


def _precision(recipe: Recipe) -> str:
    """``[train] precision``: mixed_bfloat16 trains dense convolutions faster on a CPU with AVX512-BF16, MobileNetV2
    not (training throughput in benchmarks/results/edge_study.md); weights and every artifact stay float32."""
    p = str(recipe.data["train"].get("precision", "float32"))
    if p not in PRECISIONS:
        raise ConfigError(f"[train] precision must be one of {', '.join(PRECISIONS)}, not {p!r}")
    return p


def bf16_warning(precision: str, cpu: dict[str, Any], gpus: int) -> str | None:
    """A one-line warning when mixed_bfloat16 will run on a CPU without native bfloat16 (None: fine or unknown)."""
    if precision != "mixed_bfloat16" or gpus or native_bf16(cpu) is not False:
        return None
    name = f" ({cpu['model']})" if cpu.get("model") else ""
    return (f"warning: this CPU{name} has no native bfloat16 (AVX512-BF16, AMX or ARM BF16); mixed_bfloat16 "
            "may train slower than float32 here: --precision float32 trains in float32 (same artifacts)")


def train(
    recipe: Recipe,
    data_path: str | Path,
    out: str | Path,
    kind: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    limit: int | None = None,
    strategy_name: str | None = None,
) -> dict[str, Any]:
    """Train the recipe; returns the summary metrics (also in the manifest).

    ``limit`` caps every split to about that many samples (quick runs, tests); the caps are
    seeded holdout selectors stored in provenance, so the splits stay re-creatable.
    """
    require_extras(["train"], "fer-edge train")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: it reads this once
    from . import distribute, soft_targets  # distribute: --strategy and the replica rule for batch and lr

    # Before touching --out: a bad strategy or TF_CONFIG must not cost an existing run folder.
    soft_targets.weights(recipe.data)  # e.g. a [distill] recipe without --teacher, before the data loads
    strategy = distribute.strategy_for(distribute.strategy_name(recipe, strategy_name), log)
    recipe = distribute.scaled(recipe, strategy)
    if not distribute.is_chief(strategy):  # only the chief writes the run folder
        scratch = Path(tempfile.mkdtemp(prefix="fer-edge-worker-"))
        try:
            summary = _train(recipe, data_path, scratch / "run", kind, False, log, limit, strategy, str(out))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        from . import multiworker

        # Wait for the chief's bundle, so that the whole cluster ends together (a worker that
        # leaves early reads as a crashed task to the chief's coordination service).
        summary["chief_test_accuracy"] = float(multiworker.from_chief(strategy, [0.0], "the chief's evaluation")[0])
        return summary
    out = Path(out)
    if (out / MANIFEST).is_file() and not overwrite:
        raise FerEdgeError(f"{out} holds a finished run; choose another --out or pass --overwrite")
    created = not out.exists()  # a refused run removes only a folder it made itself
    if out.exists() and not resume:
        if not overwrite and any(out.iterdir()):
            raise FerEdgeError(f"{out} already exists; pass --resume to continue it or --overwrite to start again")
        shutil.rmtree(out)
    if resume and not (out / "checkpoints").exists() and not (out / "folds").exists():
        log(f"{out}: nothing to resume, starting a new run")
    try:
        summary = _train(recipe, data_path, out, kind, resume, log, limit, strategy)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):  # refused before writing (e.g. a bad --teacher)
            out.rmdir()
        raise
    if distribute.is_multiworker(strategy):  # the bundle is written: the workers may stop
        from . import multiworker

        multiworker.from_chief(strategy, [summary["test_accuracy"]], "the end of the run")
    return summary


def _train(recipe, data_path, out: Path, kind, resume, log, limit, strategy, chief_out: str | None = None):
    """The run into ``out``; ``chief_out``: this is a non-chief worker, ``out`` a scratch folder."""
    from . import distribute, multiworker

    import warnings

    import keras

    # Keras notes on input-structure names and skipped optimizer slots are noise here.
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    seed = int(recipe.data["train"].get("seed", 0))
    keras.utils.set_random_seed(seed)
    data_cfg = recipe.data["data"]
    ds = load_dataset(data_path, kind or data_cfg.get("kind"))
    kind = kind or data_cfg.get("kind") or ds.info.get("kind", ds.name)
    ds = tdata.restrict_labels(ds, data_cfg.get("labels"))
    if data_cfg.get("drop_labels"):
        ds = ds.with_labels(tuple(n for n in ds.label_names if n not in data_cfg["drop_labels"]))
    spec = input_spec(recipe)
    pname, pcfg = protocol_config(recipe.data)
    out.mkdir(parents=True, exist_ok=True)
    log(f"recipe {recipe.name} ({recipe.source}), data {data_path} ({kind}, {len(ds)} images), "
        f"protocol {pname}: {pcfg.get('label', pname)}; input {spec.shape} {spec.color}")
    import tensorflow as tf

    from ..doctor.probes import cpuinfo

    warning = bf16_warning(_precision(recipe), cpuinfo(), len(tf.config.list_physical_devices("GPU")))
    if warning:
        log(warning)

    results = []
    multi = pcfg.get("type", "fixed") == "loso"
    if multi:  # before hours of training: every finished fold must share the settings being resumed
        for finished in sorted((out / "folds").glob(f"*/{MANIFEST}")):
            _same_recipe_as_finished(finished.parent, recipe.data)
    copies_cache = out / "checkpoints" / "augmented"  # offline copies, kept until the run is finished
    for task in tasks(recipe.data, ds, spec, seed, limit, cache=copies_cache):
        folder = out / "folds" / task.name if multi else out
        done = (folder / MANIFEST).is_file()
        if distribute.is_multiworker(strategy):  # the chief's folder decides, on every worker
            done = bool(multiworker.from_chief(strategy, [done])[0])
        if done and chief_out is not None:
            log(f"{task.name}: already finished by the chief")
            continue
        if done:  # its settings were checked before the loop
            log(f"{task.name}: already finished, reading its results")
            results.append((task, folder, json.loads((folder / "metrics.json").read_text())))
            continue
        log(f"{task.name}: train {len(task.train.y)}, val {len(task.val.y)}, test {len(task.test.y)}")
        m = _run_task(recipe, task, spec, ds, paths.portable_data_path(data_path), kind, folder, seed, resume, strategy, log)
        results.append((task, folder, m))
    shutil.rmtree(copies_cache, ignore_errors=True)  # every task is finished: GBs no resume needs
    if chief_out is not None:
        epochs = [r[2]["summary"]["epochs_run"] for r in results]
        return {"role": "worker", "task": distribute.task_name(strategy), "chief_out": chief_out,
                "epochs_run": sum(epochs)}
    if multi:
        return _pool_folds(recipe, results, spec, ds, paths.portable_data_path(data_path), kind, out, seed, log)
    return results[0][2]["summary"]


def _same_recipe_as_finished(folder: Path, recipe_data: dict[str, Any]) -> None:
    """A resumed LOSO run must not pool folds trained with different settings."""
    before = json.loads((folder / MANIFEST).read_text()).get("provenance", {}).get("recipe_data")
    if before is not None and training_digest(before) != training_digest(recipe_data):
        raise ConfigError(f"{folder}: this finished fold was trained with other recipe settings than the run "
                          "being resumed; give the same recipe and options, or --overwrite to start again")


def _provenance(recipe, task: Task, ds, data_path, kind, seed, info, extra) -> dict[str, Any]:
    pname, pcfg = protocol_config(recipe.data)
    sel = task.selectors
    data = {
        "path": data_path,
        "kind": kind,
        "labels": list(ds.label_names),
        "train": sel["train"],
        "val": sel["val"],
        "test": sel["test"],
        "protocol": pcfg.get("label", pname),
        "protocol_name": pname,
        "fold": task.name,
    }
    for key in ("note", "subset"):  # subset: a quick run's reduction, applied before the selectors
        if key in sel:
            data[key] = sel[key]
    return {
        "recipe": recipe.name,
        "recipe_source": recipe.source,
        "recipe_sha256": recipe.sha256,
        "recipe_data": recipe.data,
        "seed": seed,
        "data": data,
        "backbone": info.get("backbone"),
        "backbone_weights": info.get("backbone_weights"),
        **({"substitution": info["substitution"]} if info.get("substitution") else {}),
        **extra,
    }


def _build(recipe, spec, k, strategy):
    from .models import build_model

    if strategy is None:
        return build_model(recipe.section("model"), spec.shape, k)
    with strategy.scope():
        return build_model(recipe.section("model"), spec.shape, k)


def _run_task(recipe, task, spec, ds, data_path, kind, folder: Path, seed, resume, strategy, log) -> dict[str, Any]:
    import keras

    precision = _precision(recipe)
    keras.mixed_precision.set_global_policy(precision)
    # every task (LOSO fold) starts from the same seed: a resumed run's later folds train as they
    # would have without the interruption
    keras.utils.set_random_seed(seed)
    try:
        return _run_task_in_policy(recipe, task, spec, ds, data_path, kind, folder, seed, resume, strategy, log)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _center(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resized uint8 faces -> the model input (the centre crop when the input has a crop)."""
    return np.ascontiguousarray(spec.views(x, "none")[0])


def _run_task_in_policy(recipe, task, spec, ds, data_path, kind, folder: Path, seed, resume, strategy, log) -> dict[str, Any]:
    from ..evaluation import evaluate
    from ..runtime.keras_backend import keras_classifier
    from .evaluate import features, float32_model
    from .fitloop import fit, read_state
    from . import report

    labels = list(ds.label_names)
    k = len(labels)
    model, info = _build(recipe, spec, k, strategy)
    if info.get("substitution"):
        log(f"SUBSTITUTION: {info['substitution']}")
    mcfg = recipe.section("model")
    freeze_bn = bool(mcfg.get("freeze_bn", mcfg.get("builder") == "mobilenetv2"))
    if mcfg.get("bn_recalibrate") and resume and read_state(folder / "checkpoints") \
            and not recipe.data["train"].get("cache_features"):  # a cached-features checkpoint holds the head only
        log("BatchNorm recalibration skipped: the checkpoint being resumed holds the statistics")
    elif mcfg.get("bn_recalibrate"):
        from .data import apply_scale
        from .models import recalibrate_bn

        sample = task.train.x[np.random.default_rng(seed).permutation(len(task.train.x))[:1024]]
        changed = recalibrate_bn(model, apply_scale(_center(sample, spec), spec))
        log(f"BatchNorm recalibrated on {len(sample)} training images ({changed} layers): trainable in training mode")
    if mcfg.get("bn_momentum") is not None:
        # keras.applications' MobileNetV2 uses 0.999: its moving statistics lag far behind a
        # backbone being fine-tuned, and validation collapses (measured: 28% val after epoch 2).
        import keras

        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(mcfg["bn_momentum"])
    scale = (float(spec.scale), tuple(float(o) for o in spec.offset))
    from . import soft_targets

    targets, soft_used = soft_targets.build(recipe.data, task.train, task.selectors, labels, log,
                                            cache=folder / "checkpoints")
    t0 = time.time()
    if recipe.data["train"].get("cache_features"):
        if targets is not None:
            raise ConfigError("cache_features recipes train the head on cached features: no [ferplus]/[distill] targets")
        history = _fit_cached(recipe, model, task, folder, scale, k, seed, resume, log, strategy)
    else:
        history = fit(model, recipe.data, (task.train.x, task.train.y), (_center(task.val.x, spec), task.val.y),
                      folder / "checkpoints", scale, k, seed, resume, log, freeze_bn,
                      recipe.section("augment") if not _offline_augmented(recipe) else None, strategy,
                      crop=spec.crop, targets=targets)
    # a resumed run: its epochs' own seconds (kept in the checkpoint state) count, not just this process's
    train_secs = max(time.time() - t0, sum(float(h.get("seconds") or 0) for h in history))
    from .distribute import is_chief

    if not is_chief(strategy):  # a multiworker worker: the chief evaluates and writes the bundle
        return {"summary": {"epochs_run": len(history), "train_seconds": round(train_secs, 1)}}
    epoch_secs = [r["seconds"] for r in history if "seconds" in r]
    rates = [r["images_per_second"] for r in history if "images_per_second" in r]
    # Everything below (metrics, report, the saved model) uses the float32 model that is exported,
    # scored like its bundle will be: fer_edge.evaluation through the runtime's Classifier.
    model = float32_model(model)
    clf = keras_classifier(model, spec, labels, folder, folder.name)
    parts = {"val": _scored_faces(task.val, labels, spec), "test": _scored_faces(task.test, labels, spec)}
    metrics: dict[str, Any] = {split: evaluate(clf, faces) for split, faces in parts.items()}
    if spec.crop:  # each test-time augmentation, measured (the bundle's own tta is in val/test)
        metrics["tta"] = {}
        # a crop as large as the face has no corner crops: ten_crop would raise after training
        whole = tuple(spec.crop) == tuple(spec.size)
        for mode in ("none", "flip") if whole else ("none", "flip", "ten_crop"):
            runs = {split: metrics[split] if mode == clf.tta else evaluate(clf, faces, tta=mode)
                    for split, faces in parts.items()}
            metrics["tta"][mode] = {split: {key: m[key] for key in ("accuracy", "macro_f1")} for split, m in runs.items()}
    if soft_used.get("distill"):  # the teachers' own ensemble is a row of the study
        metrics["teacher_ensemble"] = soft_targets.ensemble_metrics(
            [t["path"] for t in soft_used["distill"]["teachers"]], task, labels, soft_used["distill"]["tta"])
    cross = _cross(recipe, clf, log)
    if cross:
        metrics["cross"] = cross
    metrics["summary"] = {
        "protocol": protocol_config(recipe.data)[1].get("label", protocol_config(recipe.data)[0]),
        "test_accuracy": metrics["test"]["accuracy"],
        "test_macro_f1": metrics["test"]["macro_f1"],
        "val_accuracy": metrics["val"]["accuracy"],
        "val_macro_f1": metrics["val"]["macro_f1"],
        "epochs_run": len(history),
        "best_epoch": _best_epoch(history),
        "train_seconds": round(train_secs, 1),
        "seconds_per_epoch": round(float(np.mean(epoch_secs)), 1) if epoch_secs else None,
        "images_per_second": round(float(np.median(rates)), 1) if rates else None,
        "precision": _precision(recipe),
        **{f"cross_{n}_accuracy": m["accuracy"] for n, m in cross.items()},
    }
    write_json(folder / "metrics.json", metrics)
    report.write_history_csv(folder / "history.csv", history)
    plots = folder / "plots"
    plots.mkdir(exist_ok=True)
    if history:
        report.plot_curves(history, plots / "curves.png")
    report.plot_confusion(metrics["val"], plots / "confusion_val.png", "validation")
    report.plot_confusion(metrics["test"], plots / "confusion_test.png", "test")
    n_tsne = int(recipe.section("report").get("tsne_samples", 1500))
    if n_tsne:  # 0: the recipe asks for no t-SNE plot
        feat, idx = features(model, spec, parts["test"].images, n_tsne, seed)
        report.plot_tsne(feat, parts["test"].labels[idx], labels, plots / "tsne_test.png",
                         f"t-SNE of penultimate features (test, n={len(idx)})", seed)
    _save_model(model, folder / "model.keras")

    prov = _provenance(recipe, task, ds, data_path, kind, seed, info, {
        "augment": recipe.section("augment"),
        **({"soft_targets": soft_used} if soft_used else {}),
        "train_seconds": round(train_secs, 1),
        "notes": list(task.notes),
    })
    notes = list(task.notes) + list(recipe.section("report").get("notes", []))
    if info.get("substitution"):
        notes.insert(0, "SUBSTITUTION: " + info["substitution"])
    facts = {
        "recipe": f"{recipe.name} (sha256 {recipe.sha256[:12]})",
        "paper": recipe.data.get("paper", "ours"),
        "data": f"{data_path} ({kind}); protocol: {prov['data']['protocol']}",
        "split sizes": f"train {len(task.train.y)}, val {len(task.val.y)}, test {len(task.test.y)}",
        "model": f"{info.get('backbone')}; weights: {info.get('backbone_weights')}; {model.count_params():,} params",
        "input": f"{spec.shape} {spec.color}, resize {spec.interpolation} to {list(spec.size)}"
        + (f", centre crop {list(spec.crop)}" if spec.crop else "") + f", scale {spec.scale} offset {list(spec.offset)}"
        + (f", test-time augmentation {spec.tta}" if spec.tta != "none" else ""),
        "training": f"{len(history)} epochs, {train_secs / 60:.1f} min, {_precision(recipe)}"
        + (f", {np.mean(epoch_secs):.0f} s/epoch, {np.median(rates):.0f} images/s" if epoch_secs else ""),
        "seed": seed,
    }
    if recipe.data.get("claim"):
        facts["paper's claim"] = recipe.data["claim"]
    report.write_report(folder / "report.md", f"Run {folder.name}: {recipe.name}", facts, metrics, notes)
    manifest = Manifest(
        name=folder.name, format="keras", precision="fp32", model_file="model.keras", labels=labels,
        input=spec, face=dataset_framing(kind, ds.info), provenance=prov,
        metrics={k2: v for k2, v in metrics["summary"].items()},
        versions=_versions(),
    )
    write_bundle(folder, manifest, ["model.keras"])
    log(f"{task.name}: test accuracy {metrics['test']['accuracy']:.4f}, macro-F1 {metrics['test']['macro_f1']:.4f} "
        f"-> {folder}")
    return metrics


def _offline_augmented(recipe) -> bool:
    _, pcfg = protocol_config(recipe.data)
    return bool(pcfg.get("copies")) or pcfg.get("type") == "augment_then_split"


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def _save_model(model, path: Path) -> None:
    """Save without optimizer state (a clean clone), to a temp name, then rename."""
    import keras

    # From the config, not clone_model: Keras 3 clones compile state, and the optimizer's
    # slots would triple the file.
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    tmp = path.with_name(f".{path.stem}-tmp{os.getpid()}.keras")
    clean.save(tmp)
    tmp.replace(path)


def _scored_faces(part, labels: list[str], spec: InputSpec) -> FaceDataset:
    """The faces a split is scored on: its selected samples; for protocols that keep only model
    inputs (augment_then_split), those inputs (in the model's colour: BGR ones are handed back as
    RGB, which the classifier converts)."""
    if part.faces is not None:
        return part.faces
    x = np.asarray(part.x)[..., ::-1] if spec.color == "bgr" else np.asarray(part.x)
    return FaceDataset("model inputs", x, part.y, tuple(labels), np.full(len(x), "all"), np.full(len(x), ""))


def _cross(recipe, clf, log) -> dict[str, Any]:
    """Cross-dataset tests named in the recipe's [[eval.cross]] tables (name, path, kind, drop, test)."""
    from ..evaluation import evaluate

    out = {}
    for c in recipe.section("eval").get("cross", []):
        path = Path(c["path"]) if Path(c["path"]).exists() else paths.data_path(*Path(c["path"]).parts, required=False)
        if path is None:
            log(f"cross-dataset {c['name']}: {c['path']} not found, skipped")
            continue
        ds = load_dataset(path, c.get("kind"))
        drop = list(c.get("drop", []))
        if drop:
            ds = ds.with_labels(tuple(n for n in ds.label_names if n not in drop))
        # test: a selector, e.g. {split = "test"}: FER2013's PrivateTest only
        out[c["name"]] = m = evaluate(clf, ds, c.get("test"))
        m["path"], m["dropped"] = paths.portable_data_path(path), drop
        log(f"cross-dataset {c['name']}: accuracy {m['accuracy']:.4f} on {m['n']} images")
    return out


def _fit_cached(recipe, model, task, folder, scale, k, seed, resume, log, strategy):
    """Frozen backbone: compute its features once (cached as npz), train only the head."""
    import keras

    from .evaluate import predict
    from .fitloop import fit
    from .models import PREFIX_HEAD

    spec = input_spec(recipe)

    stages = recipe.stages
    if any(s.get("trainable", "all") != "head" for s in stages):
        raise ConfigError("cache_features needs every stage to have trainable = \"head\"")
    head_layers = [layer for layer in model.layers if layer.name.startswith(PREFIX_HEAD)]
    feat_model = keras.Model(model.inputs, head_layers[0].input)
    cache_dir = folder.parent / ".cache"  # beside the run: runs of the same backbone share it
    feats = {}
    for split, part in (("train", task.train), ("val", task.val)):
        t0 = time.time()
        feats[split] = cached_array(cache_dir, f"features-{array_key(part.x, recipe.section('model'))}",
                                    lambda: predict(feat_model, _center(part.x, spec), spec), log)
        log(f"{split} features {feats[split].shape} in {time.time() - t0:.0f}s")
    finp = keras.Input(feats["train"].shape[1:], name="features")
    x = finp
    for layer in head_layers:
        x = layer(x)
    head_model = keras.Model(finp, x, name="head_only")
    return fit(head_model, recipe.data, (feats["train"], task.train.y), (feats["val"], task.val.y),
               folder / "checkpoints", (1.0, (0.0,)), k, seed, resume, log, False, None, strategy)


def _best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The 1-based epoch whose weights were kept: the first with the highest validation accuracy (fitloop's rule)."""
    accs = [h.get("val_accuracy") for h in history]
    if not accs or any(a is None for a in accs):
        return None
    return int(np.argmax(accs)) + 1


def _pool_folds(recipe, results, spec, ds, data_path, kind, out: Path, seed, log) -> dict[str, Any]:
    """LOSO: pool every fold's test predictions; the top-level bundle carries the first fold's model."""
    from . import report

    labels = list(ds.label_names)
    pooled = pooled_metrics([m["test"]["confusion_matrix"] for _, _, m in results], labels)
    # epochs per fold: whether early stopping on the held-out person or the epoch cap ended each fold
    per_fold = {t.name: {"accuracy": m["test"]["accuracy"], "n": m["test"]["n"],
                         "epochs_run": m["summary"].get("epochs_run"), "best_epoch": m["summary"].get("best_epoch")}
                for t, _, m in results}
    accs = [v["accuracy"] for v in per_fold.values()]
    first_task, first_dir, first_m = results[0]
    metrics = {
        "val": first_m["val"],
        "test": pooled,
        "per_fold": per_fold,
        "summary": {
            "protocol": protocol_config(recipe.data)[1].get("label", "loso"),
            "test_accuracy": pooled["accuracy"],
            "test_macro_f1": pooled["macro_f1"],
            "fold_accuracy_mean": float(np.mean(accs)),
            "fold_accuracy_std": float(np.std(accs)),
            "folds": len(results),
            "train_seconds": round(sum(m["summary"].get("train_seconds", 0) for _, _, m in results), 1),
            "precision": _precision(recipe),
            "model": f"the top-level model.keras is fold {first_task.name}'s model (test = that subject)",
        },
    }
    write_json(out / "metrics.json", metrics)
    (out / "plots").mkdir(exist_ok=True)
    report.plot_confusion(pooled, out / "plots" / "confusion_test.png", "LOSO pooled test")
    for name in ("curves.png", "tsne_test.png", "confusion_val.png"):
        src = first_dir / "plots" / name
        if src.is_file():
            shutil.copyfile(src, out / "plots" / name)
    shutil.copyfile(first_dir / "history.csv", out / "history.csv")
    tmp = out / f".model-tmp{os.getpid()}.keras"
    shutil.copyfile(first_dir / "model.keras", tmp)
    tmp.replace(out / "model.keras")
    fold_prov = json.loads((first_dir / MANIFEST).read_text())["provenance"]
    fold_prov["data"]["folds"] = {t.name: t.selectors["test"] for t, _, _ in results}
    notes = [f"{len(results)} folds; per fold accuracy: " + ", ".join(f"{n} {v['accuracy']:.2%}" for n, v in per_fold.items()),
             f"fold accuracy mean {np.mean(accs):.2%} +- {np.std(accs):.2%}",
             metrics["summary"]["model"]] + list(first_task.notes[1:])
    report.write_report(out / "report.md", f"Run {out.name}: {recipe.name} (LOSO)", {
        "recipe": f"{recipe.name} (sha256 {recipe.sha256[:12]})",
        "paper": recipe.data.get("paper", "ours"),
        "data": f"{data_path} ({kind}); protocol: leave-one-subject-out",
        **({"paper's claim": recipe.data["claim"]} if recipe.data.get("claim") else {}),
    }, metrics, notes)
    manifest = Manifest(
        name=out.name, format="keras", precision="fp32", model_file="model.keras", labels=labels,
        input=spec, face=dataset_framing(kind, ds.info), provenance=fold_prov, metrics=metrics["summary"], versions=_versions(),
    )
    write_bundle(out, manifest, ["model.keras"])
    log(f"LOSO pooled test accuracy {pooled['accuracy']:.4f} over {len(results)} folds -> {out}")
    return metrics["summary"]
