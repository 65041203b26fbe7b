"""Soft training targets: FER+ crowd votes and teacher ensembles, mixed with the hard label.

A recipe may ask for either or both::

    [ferplus]                   # FER+ votes as an auxiliary target (Training rows only)
    weight = 0.3
    votes = "ferplus/fer2013new.csv"

    [distill]                   # knowledge distillation from finished runs (or --teacher RUN)
    teachers = ["runs/teacher_a", "runs/teacher_b"]
    weight = 0.5
    temperature = 2.0
    tta = "flip"                # views the teachers average (InputSpec.views)

The target of a training face is ``(1 - wf - wd) * one_hot(label) + wf * votes + wd * teachers``.
The FER2013 label is never replaced: FER+ relabels many fear faces, and the test labels are
FER2013's. A face without usable FER+ votes gives its FER+ share to its label.

Leak guards: FER+ votes are read only for rows whose FER+ ``Usage`` is ``Training``; a teacher
must have been trained on exactly the student's training selector (so it never saw validation
or test faces).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import paths
from ..bundle import MANIFEST, InputSpec, sha256_file
from ..errors import ConfigError, DataError, ModelError


def weights(recipe_data: dict[str, Any]) -> tuple[float, float]:
    """(FER+ weight, teacher weight) of a recipe; both 0 when it asks for no soft targets.
    The keys and ranges of both tables are checked by the recipe schema (recipe_schema.py)."""
    fp = recipe_data.get("ferplus") or {}
    ds = recipe_data.get("distill")
    wf = float(fp.get("weight", 0.0))
    wd = 0.0
    if ds is not None:
        if not ds.get("teachers"):
            # a distillation recipe run without teachers would silently train a plain model
            raise ConfigError(f"recipe {recipe_data.get('name')!r} distills ([distill]) but names no teacher: "
                              "pass --teacher RUN (repeat for an ensemble)")
        wd = float(ds.get("weight", 0.5))  # 0.5: the schema's and --teacher's default
    if wf + wd >= 1.0:
        raise ConfigError(f"soft-target weights must leave the label a share: ferplus {wf} + distill {wd} >= 1")
    return wf, wd


def _row_numbers(sources: np.ndarray) -> np.ndarray:
    """FER2013 data-row numbers from ``sources`` ("fer2013.csv.gz:row 17")."""
    try:
        return np.array([int(str(s).rsplit(":row ", 1)[1]) for s in sources], np.int64)
    except (IndexError, ValueError) as exc:
        raise ConfigError("[ferplus] needs FER2013 csv data (sources 'file:row N'); this dataset has other sources") from exc


def ferplus_distribution(votes_path: Path, rows: np.ndarray, labels: list[str],
                         csv_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) FER+ vote distributions over ``labels`` for FER2013 ``rows``, and a mask of the rows
    that have one. FER+ classes outside ``labels`` (contempt) are dropped before renormalizing.
    Raises if any requested row is not a FER+ Training row."""
    from ..data.ferplus import LABEL_NAMES, read_votes, votes_to_labels

    vrows, votes, usages, _, n_rows = read_votes(votes_path)
    if csv_rows != n_rows:
        raise DataError(f"{votes_path}: FER+ votes are aligned with the full fer2013.csv ({n_rows} rows); "
                        f"the training csv has {csv_rows if csv_rows is not None else 'an unknown number of'} rows")
    index = {int(r): i for i, r in enumerate(vrows)}
    pos = np.array([index.get(int(r), -1) for r in rows])
    found = pos >= 0
    not_train = [int(r) for r, p in zip(rows, pos) if p >= 0 and usages[p] != "Training"]
    if not_train:
        raise DataError(f"{votes_path}: FER+ rows {not_train[:5]} are not Training rows; "
                        "votes of validation/test faces must never reach training")
    _, soft8, keep8, _ = votes_to_labels(votes, "soft")
    cols = [LABEL_NAMES.index(n) if n in LABEL_NAMES else -1 for n in labels]
    dist = np.zeros((len(rows), len(labels)), np.float32)
    sel = pos[found]
    part = np.stack([soft8[sel, c] if c >= 0 else np.zeros(len(sel), np.float32) for c in cols], axis=1)
    total = part.sum(1, keepdims=True)
    usable = keep8[sel] & (total[:, 0] > 0)
    dist[np.flatnonzero(found)[usable]] = part[usable] / total[usable]
    mask = np.zeros(len(rows), bool)
    mask[np.flatnonzero(found)[usable]] = True
    return dist, mask


def _teacher(path: Path, student_selectors: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        raise ConfigError(f"{path}: teacher is not a finished training run (no {MANIFEST})")
    m = json.loads(mpath.read_text())
    if m.get("format") != "keras":
        raise ConfigError(f"{path}: a teacher must be a Keras training run, not a {m.get('format')!r} bundle")
    if list(m.get("labels", [])) != list(labels):
        raise ConfigError(f"{path}: teacher labels {m.get('labels')} differ from the student's {labels}")
    data = m.get("provenance", {}).get("data", {})
    for key in ("train", "val", "test", "subset"):
        if data.get(key) != student_selectors.get(key):
            raise ConfigError(
                f"{path}: teacher was trained with {key} selector {data.get(key)}, the student uses "
                f"{student_selectors.get(key)}; a teacher must share the student's split so it never saw its val/test faces")
    return m


def teacher_distribution(teacher_paths: list[str], train_faces, selectors: dict[str, Any], labels: list[str],
                         temperature: float, tta: str, log: Callable[[str], None],
                         cache: Path | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The teachers' averaged, temperature-softened probabilities on the training faces, and
    each teacher's provenance (path, model sha256, recipe, seed, its own val/test accuracy).

    ``cache``: a folder (the run's checkpoints) keeping each teacher's probabilities, so that
    ``--resume`` does not predict again (ten-crop of two teachers: ~10 min on 2 cores)."""
    if temperature <= 0:
        raise ConfigError(f"[distill] temperature must be > 0, not {temperature}")
    from .array_cache import array_key, cached_array

    probs, records = [], []
    faces_key = array_key(train_faces.images) if cache is not None else None
    for tp in teacher_paths:
        tp = Path(tp)
        m = _teacher(tp, selectors, labels)
        try:  # before the teacher's predictions: e.g. ten_crop of a teacher without a crop
            InputSpec.from_dict({**m["input"], "tta": tta})
        except ModelError as exc:
            raise ConfigError(f"{tp}: [distill] tta {tta!r} does not fit this teacher's input ({exc})") from None
        model_sha = sha256_file(tp / m["model_file"])
        # keyed by what the probabilities depend on: the model's bytes, the views and the faces
        p = cached_array(cache, f"teacher-{model_sha[:16]}-{tta}-{faces_key}",
                         lambda: _predict_all(_teacher_classifier(tp, m, tta), train_faces.images), log)
        p = np.power(np.clip(p, 1e-12, 1.0), 1.0 / temperature)  # softmax(logits / T)
        probs.append(p / p.sum(1, keepdims=True))
        records.append({
            "path": str(tp.resolve()),
            "model_sha256": model_sha,
            "recipe": m.get("provenance", {}).get("recipe"),
            "seed": m.get("provenance", {}).get("seed"),  # two teachers of one recipe differ by it
            "val_accuracy": m.get("metrics", {}).get("val_accuracy"),
            "test_accuracy": m.get("metrics", {}).get("test_accuracy"),
        })
        log(f"teacher {tp}: {records[-1]['recipe']}, val accuracy {records[-1]['val_accuracy']}")
    return np.mean(probs, axis=0).astype(np.float32), records


def build(recipe_data: dict[str, Any], train_part, selectors: dict[str, Any], labels: list[str],
          log: Callable[[str], None], cache: Path | None = None) -> tuple[np.ndarray | None, dict[str, Any]]:
    """(N, K) training targets, or None when the recipe asks for none; plus what was used
    (for the manifest's provenance). ``cache``: where teachers' probabilities are kept for a resume."""
    wf, wd = weights(recipe_data)
    if not wf and not wd:
        return None, {}
    if train_part.faces is None:
        raise ConfigError("soft targets need the training faces; this protocol does not keep them")
    if not isinstance(train_part.x, np.ndarray):  # a shard cache streams its faces: no per-face targets yet
        raise ConfigError("[ferplus] / [distill] soft targets need the dataset in memory; train from the dataset "
                          "itself (e.g. fer2013.csv.gz), not from a `data prepare --shards` cache")
    k = len(labels)
    y = train_part.y
    onehot = np.eye(k, dtype=np.float32)[y]
    target = (1.0 - wf - wd) * onehot
    used: dict[str, Any] = {}
    if wf:
        fp = recipe_data["ferplus"]
        vpath = Path(fp.get("votes", "ferplus/fer2013new.csv"))
        vpath = vpath if vpath.is_file() else paths.data_path(*vpath.parts)
        dist, mask = ferplus_distribution(vpath, _row_numbers(train_part.faces.sources), labels,
                                          train_part.faces.info.get("csv_rows"))
        target += wf * np.where(mask[:, None], dist, onehot)
        used["ferplus"] = {"weight": wf, "votes": paths.portable_data_path(vpath), "sha256": sha256_file(vpath),
                           "rows_with_votes": int(mask.sum()), "rows": int(len(mask))}
        log(f"FER+ votes ({vpath}): {int(mask.sum())} of {len(mask)} training faces, weight {wf}")
    if wd:
        dcfg = recipe_data["distill"]
        t = float(dcfg.get("temperature", 2.0))
        tta = str(dcfg.get("tta", "flip"))
        dist, records = teacher_distribution(list(dcfg["teachers"]), train_part.faces, selectors, labels, t, tta, log,
                                             cache)
        target += wd * dist
        used["distill"] = {"weight": wd, "temperature": t, "tta": tta, "teachers": records}
    return target.astype(np.float32), used


def _predict_all(clf, images) -> np.ndarray:
    """A teacher's probabilities on every training face, in batches its input and views allow."""
    from ..evaluation import batch_size_for

    return clf.predict_proba(images, batch_size=batch_size_for(clf.input_spec))


def _teacher_classifier(path, manifest: dict[str, Any], tta: str):
    """A teacher run as a runtime Classifier (its own preprocessing and views), on the trainer's device."""
    import keras

    from ..runtime.keras_backend import keras_classifier

    model = keras.models.load_model(Path(path) / manifest["model_file"], compile=False)
    return keras_classifier(model, InputSpec.from_dict(manifest["input"]), manifest["labels"], path, tta=tta)


def ensemble_metrics(teacher_paths: list[str], task, labels: list[str], tta: str) -> dict[str, Any]:
    """Accuracy and macro-F1 of the teachers' averaged probabilities on the task's val and test faces."""
    from ..evaluation import evaluate, score, select_faces

    out: dict[str, Any] = {"teachers": [str(p) for p in teacher_paths], "tta": tta}
    teachers = [_teacher_classifier(tp, json.loads((Path(tp) / MANIFEST).read_text()), tta) for tp in teacher_paths]
    for split, part in (("val", task.val), ("test", task.test)):
        faces = select_faces(part.faces)  # the faces each teacher is scored on (hard labels)
        probs = np.mean([evaluate(t, faces, return_probs=True)[1] for t in teachers], axis=0)
        res = score(faces.labels, probs.argmax(1), faces.label_names, labels)
        out[split] = {"accuracy": res["accuracy"], "macro_f1": res["macro_f1"]}
    return out
