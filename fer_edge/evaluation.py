"""One evaluation for every stage: the train report, `fer-edge eval`, convert's retention, bench and
the model card score here. Faces are picked by ``fer_edge.data.select`` / ``select_role``, run through
the classifier's own preprocessing and test-time views, counted by ``fer_edge.metrics``. numpy only.

    clf = fer_edge.runtime.load("runs/edge/export/tflite-int8")   # any format, a train run too
    m = evaluate(clf, load_dataset("fer2013.csv.gz"), "test", provenance=clf.manifest.provenance["data"])
    m["accuracy"], m["macro_f1"], m["per_class"], m["confusion_matrix"], m["n"]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .data import FaceDataset, select, select_role
from .errors import DataError
from .metrics import classification_metrics

ROLES = ("train", "val", "test")
CHUNK = 1024  # faces in memory at a time: a shard cache streams from disk
PIXELS_PER_CALL = 2**20  # model-input pixels in one model call; MobileNetV2 at 224 px x 256 faces took 24 GB


def batch_size_for(spec) -> int:
    """Faces per model call for an input spec: 256 at 48 px, 20 at 224 px (its activations, not the faces,
    fill the memory: a 256-face batch at 224 px was killed for memory on a 24 GiB machine). Test-time
    views do not count: the runtime runs each view as its own call of this many inputs."""
    h, w = spec.crop or spec.size
    return int(max(1, min(256, PIXELS_PER_CALL // (h * w * spec.channels))))


def select_faces(dataset: FaceDataset, selection: str | dict | None = None, provenance: dict | None = None,
                 limit: int | None = None) -> FaceDataset:
    """The faces to score. ``selection``: None (every face), a selector (``fer_edge.data.select``)
    or a role "train"/"val"/"test", resolved with ``provenance`` (a bundle's ``provenance["data"]``:
    its quick-run subset, then that role's selector; without it, the split of that name).
    Faces without a hard label (-1, FER+ soft mode) are left out. ``limit`` keeps a fixed
    seeded sample of that many faces, in dataset order."""
    if selection is None:
        faces = dataset
    elif isinstance(selection, str):
        if selection not in ROLES:
            raise DataError(f"evaluation role must be one of {', '.join(ROLES)}, not {selection!r}")
        faces = select_role(dataset, provenance or {}, selection)
    else:
        faces = select(dataset, selection)
    if (faces.labels < 0).any():
        faces = faces.subset(faces.labels >= 0)
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be >= 1, got {limit}")
        if limit < len(faces):
            faces = faces.subset(np.sort(np.random.default_rng(0).permutation(len(faces))[:limit]))
    return faces


def split_selection(dataset: FaceDataset, split: str) -> dict[str, str] | None:
    """{"split": split} on ``dataset``; None (every face) when it has no such role or split: CK+ and JAFFE
    come without splits, so all of their faces are test data for a model trained elsewhere."""
    if split in ("train", "val", "test") and split not in dataset.roles and split not in set(dataset.splits.tolist()):
        return None
    return {"split": split}


def nameable(faces: FaceDataset, model_labels: Sequence[str]) -> tuple[FaceDataset, list[str]]:
    """``faces`` of the classes the model can name, and the classes left out (CK+ contempt has
    no FER2013 class)."""
    keep = tuple(n for n in faces.label_names if n in model_labels)
    if not keep:
        raise DataError(f"{faces.info.get('path', faces.name)}: none of its labels {list(faces.label_names)} are model labels "
                        f"{list(model_labels)}")
    dropped = [n for n in faces.label_names if n not in keep]
    return (faces.with_labels(keep) if dropped else faces), dropped


def score(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], model_labels: Sequence[str]) -> dict[str, Any]:
    """Metrics in the dataset's label order (``labels``) for predictions indexing ``model_labels``
    (the orders may differ across datasets). A predicted class the dataset lacks (e.g. neutral on
    CK+) is an error and gets its own column."""
    names = list(labels) + [n for n in model_labels if n not in labels]
    to_names = np.array([names.index(n) for n in model_labels], dtype=np.int64)
    m = classification_metrics(y_true, to_names[np.asarray(y_pred, dtype=np.int64)], names)
    m["model_labels"] = list(model_labels)
    return m


def evaluate(classifier, dataset: FaceDataset, selection: str | dict | None = None, *,
             provenance: dict | None = None, tta: str | None = None, batch_size: int | None = None,
             return_probs: bool = False):
    """Score ``classifier`` (a ``fer_edge.runtime.Classifier``) on the faces ``select_faces``
    picks: accuracy, macro-F1, balanced accuracy, per-class precision/recall/F1/support, the
    confusion matrix, n, the model's label order and the dataset classes left out.
    ``tta`` overrides the bundle's test-time views. ``batch_size``: faces per model call (default:
    ``batch_size_for`` the input). With ``return_probs``: (metrics, the (n, K)
    probabilities in the model's label order)."""
    faces, dropped = nameable(select_faces(dataset, selection, provenance), classifier.labels)
    clf = classifier.with_tta(tta) if tta is not None else classifier
    batch_size = batch_size or batch_size_for(clf.input_spec)
    probs = np.empty((len(faces), len(clf.labels)), np.float32)
    for start in range(0, len(faces), CHUNK):
        chunk = np.asarray(faces.images[start : start + CHUNK])
        probs[start : start + CHUNK] = clf.predict_proba(chunk, batch_size=batch_size)
    m = score(faces.labels, probs.argmax(1), faces.label_names, clf.labels)
    m["dropped_labels"] = dropped
    return (m, probs) if return_probs else m
