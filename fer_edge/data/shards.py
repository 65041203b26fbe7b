"""A face cache larger than RAM: ``fer-edge data prepare PATH --out DIR --shards``.

    DIR/cache.json        schema, label names, roles, split names, counts, face shape, shards, reader info
    DIR/shard-00000.npy   (n, h, w) uint8 faces, detected/cropped and resized once
    DIR/labels.npy        (N,) int16 label index;  DIR/splits.npy (N,) uint8 index into cache.json "splits"
    DIR/sources.txt       one source per line (relative to the dataset root);  DIR/subjects.txt when known

Faces are written in a seeded random order, so every shard is a random sample of the
dataset and reading shard by shard (shards and faces within a shard shuffled each
epoch) mixes classes as well as a global shuffle. The folder is written under a
temporary name and renamed, never left half-written.

``read_shards`` returns a FaceDataset whose ``images`` is a ``ShardedImages``: labels,
splits and sources are in memory, pixels stay on disk; selections stay lazy, and
``tf_dataset`` streams one shard at a time, so training memory stays flat as the
dataset grows. Code that needs a plain array (evaluation sets, a BN sample) gets one
through ``np.asarray``, which reads just the selected faces.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..atomic import atomic_dir, write_json
from ..errors import DataError
from .dataset import BadItem, FaceDataset
from .listing import Item

SCHEMA = "fer-edge/shard-cache@1"
META = "cache.json"


def is_shard_cache(path: Path) -> bool:
    meta = Path(path) / META
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("schema") == SCHEMA
    except (OSError, ValueError):
        return False


# ------------------------------------------------------------------ writing


def write_shards(faces: Iterable[tuple[Item, np.ndarray]], out: str | Path, *, name: str, root: str,
                 label_names: tuple[str, ...], roles: dict[str, str], info: dict, skipped: list[BadItem],
                 shard_size: int = 4096, overwrite: bool = False,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Stream ``faces`` (already in the order to store) into shards under ``out``; returns cache.json."""
    if shard_size < 1:
        raise DataError(f"--shard-size must be >= 1, got {shard_size}")
    out = Path(out)
    index = {n: i for i, n in enumerate(label_names)}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        buf: list[np.ndarray] = []
        shards: list[dict[str, Any]] = []
        labels: list[int] = []
        split_names: list[str] = []
        split_idx: list[int] = []
        subjects: list[str | None] = []
        shape = None
        first_source = ""
        with open(tmp / "sources.txt", "w", encoding="utf-8") as sources:

            def flush() -> None:
                if buf:
                    fname = f"shard-{len(shards):05d}.npy"
                    np.save(tmp / fname, np.stack(buf))
                    shards.append({"file": fname, "n": len(buf)})
                    buf.clear()
                    if progress:
                        progress(f"{len(labels)} faces in {len(shards)} shards")

            for item, face in faces:
                if shape is None:
                    shape, first_source = face.shape, item.source
                elif face.shape != shape:
                    raise DataError(f"{item.source}: face is {face.shape[1]}x{face.shape[0]} but {first_source} is "
                                    f"{shape[1]}x{shape[0]}; pass --size")
                if item.split not in split_names:
                    split_names.append(item.split)
                buf.append(face)
                labels.append(index[item.label])
                split_idx.append(split_names.index(item.split))
                subjects.append(item.subject)
                sources.write(_relative(item.source, root).replace("\n", " ") + "\n")
                if len(buf) == shard_size:
                    flush()
            flush()
        if not labels:
            raise DataError(f"{root}: no faces could be read, nothing to cache")
        if len(split_names) > 255:
            raise DataError(f"{root}: {len(split_names)} split names; a shard cache holds at most 255")
        np.save(tmp / "labels.npy", np.asarray(labels, np.int16))
        np.save(tmp / "splits.npy", np.asarray(split_idx, np.uint8))
        if all(s is not None for s in subjects):
            (tmp / "subjects.txt").write_text("".join(f"{s}\n" for s in subjects))
        y, sp = np.asarray(labels), np.asarray(split_idx)
        meta = {
            "schema": SCHEMA, "name": name, "root": root, "label_names": list(label_names), "roles": roles,
            "splits": split_names, "num_samples": len(labels), "image_shape": list(shape), "shards": shards,
            "counts": {s: {n: int(((sp == i) & (y == k)).sum()) for k, n in enumerate(label_names)}
                       for i, s in enumerate(split_names)},
            "info": info, "skipped": [{"source": b.source, "problem": b.problem} for b in skipped],
        }
        write_json(tmp / META, meta)
    return meta


def _relative(source: str, root: str) -> str:
    try:
        return os.path.relpath(source, root) if root and Path(source).is_relative_to(root) else source
    except ValueError:
        return source


def shuffled(items: list[Item], seed: int) -> list[Item]:
    """The order faces are stored in: a seeded permutation (each shard a random sample)."""
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order]


def dataset_faces(ds: FaceDataset, seed: int) -> Iterator[tuple[Item, np.ndarray]]:
    """An in-memory FaceDataset as (item, face) pairs in the shuffled storage order."""
    for i in np.random.default_rng(seed).permutation(len(ds)):
        subject = None if ds.subjects is None else str(ds.subjects[i])
        yield Item(str(ds.sources[i]), ds.label_names[ds.labels[i]], str(ds.splits[i]), subject=subject), ds.images[i]


# ------------------------------------------------------------------ reading


class ShardedImages:
    """Faces on disk, (N, h, w) uint8, read shard by shard.

    ``index`` picks (and orders) faces of the whole cache; ``transform`` maps a chunk of
    faces to what the caller wants (``training.data.to_input``: the model input size).
    """

    def __init__(self, folder: Path, shards: list[dict[str, Any]], face_shape: tuple[int, ...],
                 index: np.ndarray | None = None, transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 item_shape: tuple[int, ...] | None = None):
        self.folder = Path(folder)
        self.shards = shards
        self.face_shape = tuple(face_shape)
        self.offsets = np.cumsum([0] + [int(s["n"]) for s in shards])
        self.index = np.arange(self.offsets[-1]) if index is None else np.asarray(index, np.int64)
        self.transform = transform
        self.item_shape = tuple(item_shape) if item_shape is not None else self.face_shape

    # array-like surface used by FaceDataset and the training code
    dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self),) + self.item_shape

    @property
    def ndim(self) -> int:
        return 1 + len(self.item_shape)

    def _with(self, index: np.ndarray) -> "ShardedImages":
        return ShardedImages(self.folder, self.shards, self.face_shape, index, self.transform, self.item_shape)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return np.asarray(self._with(self.index[[int(key)]]))[0]
        if isinstance(key, tuple):  # pixel slicing (e.g. a centre crop): on the selected faces, in memory
            return np.asarray(self)[key]
        key = np.asarray(key) if not isinstance(key, slice) else key
        return self._with(self.index[key])

    def mapped(self, transform: Callable[[np.ndarray], np.ndarray], item_shape: tuple[int, ...]) -> "ShardedImages":
        prev = self.transform
        fn = transform if prev is None else (lambda x: transform(prev(x)))
        return ShardedImages(self.folder, self.shards, self.face_shape, self.index, fn, item_shape)

    def chunks(self, seed: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(positions in self, faces) one shard at a time; with ``seed`` the shard order and the
        faces within each shard are shuffled."""
        shard_of = np.searchsorted(self.offsets, self.index, side="right") - 1
        order = np.argsort(shard_of, kind="stable")
        starts = np.searchsorted(shard_of[order], np.arange(len(self.shards) + 1))
        rng = np.random.default_rng(seed) if seed is not None else None
        shard_order = rng.permutation(len(self.shards)) if rng is not None else range(len(self.shards))
        for s in shard_order:
            pos = order[starts[s]:starts[s + 1]]
            if not len(pos):
                continue
            if rng is not None:
                pos = rng.permutation(pos)
            data = self._load(s)
            faces = data[self.index[pos] - self.offsets[s]]
            del data
            yield pos, (self.transform(faces) if self.transform else faces)

    def _load(self, s: int) -> np.ndarray:
        path = self.folder / self.shards[s]["file"]
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read this shard ({exc}); run `fer-edge data prepare` again") from exc
        if data.shape != (int(self.shards[s]["n"]),) + self.face_shape:
            raise DataError(f"{path}: shard holds {data.shape}, cache.json says "
                            f"{(int(self.shards[s]['n']),) + self.face_shape}; run `fer-edge data prepare` again")
        return data

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, np.uint8)
        for pos, faces in self.chunks():
            out[pos] = faces
        return out if dtype is None else out.astype(dtype)

    def tobytes(self) -> bytes:
        return np.asarray(self).tobytes()

    def tf_dataset(self, y: np.ndarray, w: np.ndarray | None, batch: int, seed: int | None):
        """tf.data batches (pixels uint8, y[, w]) streamed one shard at a time."""
        import tensorflow as tf

        y = np.asarray(y)
        parts = (y,) if w is None else (y, np.asarray(w, np.float32))

        def gen():
            xs: list[np.ndarray] = []
            ps: list[np.ndarray] = []
            held = 0
            for pos, faces in self.chunks(seed):
                xs.append(faces)
                ps.append(pos)
                held += len(pos)
                while held >= batch:  # full batches across shard boundaries
                    x_all, p_all = np.concatenate(xs), np.concatenate(ps)
                    yield (x_all[:batch], *(a[p_all[:batch]] for a in parts))
                    xs, ps, held = [x_all[batch:]], [p_all[batch:]], held - batch
            if held:
                x_all, p_all = np.concatenate(xs), np.concatenate(ps)
                yield (x_all, *(a[p_all] for a in parts))

        sig = (tf.TensorSpec((None,) + self.item_shape, tf.uint8),
               *(tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype)) for a in parts))
        return tf.data.Dataset.from_generator(gen, output_signature=sig)


def read_shards(path: str | Path, skip_bad: bool = False) -> FaceDataset:
    path = Path(path)
    meta_path = path / META
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{meta_path}: not a readable shard cache ({exc})") from exc
    if meta.get("schema") != SCHEMA:
        raise DataError(f"{meta_path}: schema {meta.get('schema')!r}, expected {SCHEMA!r}; "
                        "run `fer-edge data prepare --shards` again")
    try:
        labels = np.load(path / "labels.npy").astype(np.int64)
        split_names = np.asarray(meta["splits"])
        splits = split_names[np.load(path / "splits.npy")]
        sources = np.asarray((path / "sources.txt").read_text(encoding="utf-8").splitlines())
        subjects = (np.asarray((path / "subjects.txt").read_text().splitlines())
                    if (path / "subjects.txt").is_file() else None)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: shard cache is incomplete ({exc}); run `fer-edge data prepare` again") from exc
    n = int(meta["num_samples"])
    images = ShardedImages(path, meta["shards"], tuple(meta["image_shape"]))
    if not (len(labels) == len(splits) == len(sources) == len(images) == n):
        raise DataError(f"{path}: shard cache lists {n} faces but holds {len(images)} faces, {len(labels)} labels, "
                        f"{len(sources)} sources; run `fer-edge data prepare` again")
    info = {**meta.get("info", {}), "cache": str(path)}
    if "kind" in info:  # what was cached; this dataset's own kind is "shards" (the path reads back as one)
        info["source_kind"] = info.pop("kind")
    return FaceDataset(
        name=meta["name"], images=images, labels=labels, label_names=tuple(meta["label_names"]), splits=splits,
        sources=sources, subjects=subjects, roles=dict(meta.get("roles", {})),
        skipped=[BadItem(b["source"], b["problem"]) for b in meta.get("skipped", [])],
        root=meta.get("root", ""), info=info,
    )
