"""The epoch loop: stages, optimizer/schedule, class balancing, checkpoints and resume.

A checkpoint is a folder ``checkpoints/epoch-NNN/`` (weights + optimizer variables),
written with ``atomic_dir`` and then recorded in ``checkpoints/state.json`` (also atomic),
so a kill -9 at any moment leaves the previous complete checkpoint in place and
``--resume`` continues from the epoch after it. An epoch that runs longer than
``MID_EPOCH_SECONDS`` also leaves ``checkpoints/epoch-NNN-batch-BBBBBB/`` every that many
seconds: ``--resume`` then continues epoch NNN at batch BBBBBB + 1 (the epoch's batches are
a fixed function of the seed and the epoch, so the skipped ones are exactly those trained).
Multi-worker and multi-replica training checkpoint at epoch ends only.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..atomic import atomic_dir, write_json
from ..errors import ConfigError
from .models import set_trainable
from .recipes import full_digest, training_digest

STATE = "state.json"
# A kill loses at most this much of a long epoch (one epoch of JAFFE's paper protocol: ~70 min on 2 cores).
MID_EPOCH_SECONDS = 600.0


# ---------------------------------------------------------------- optimizer / loss


def make_optimizer(train: dict[str, Any], stage: dict[str, Any], steps_per_epoch: int):
    import keras

    lr = float(stage.get("lr", train.get("lr", 1e-3)))
    epochs = int(stage["epochs"])
    sched = stage.get("schedule", train.get("schedule", "constant"))
    total = max(1, epochs * steps_per_epoch)
    if sched == "constant":
        rate = lr
    elif sched == "cosine":
        warm = int(float(stage.get("warmup_epochs", train.get("warmup_epochs", 0))) * steps_per_epoch)
        warm = min(warm, total - 1)
        if warm:
            rate = keras.optimizers.schedules.CosineDecay(
                lr * 0.1, total - warm, alpha=0.01, warmup_target=lr, warmup_steps=warm
            )
        else:
            rate = keras.optimizers.schedules.CosineDecay(lr, total, alpha=0.01)
    elif sched == "step":  # e.g. EfficientNet paper: x0.9 every 10 epochs
        every = int(stage.get("decay_every_epochs", train.get("decay_every_epochs", 10)))
        rate = keras.optimizers.schedules.ExponentialDecay(
            lr, every * steps_per_epoch, float(stage.get("decay_rate", train.get("decay_rate", 0.9))), staircase=True
        )
    else:
        raise ConfigError(f"unknown schedule {sched!r}; choose constant, cosine or step")
    name = stage.get("optimizer", train.get("optimizer", "adam"))
    wd = train.get("weight_decay")
    if name == "adam":
        return keras.optimizers.Adam(rate)
    if name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=float(wd or 1e-4))
    if name == "sgd":
        # weight_decay: Keras' decoupled decay (w -= lr * wd * w each step), all weights.
        return keras.optimizers.SGD(rate, momentum=float(train.get("momentum", 0.9)),
                                    nesterov=bool(train.get("nesterov", False)),
                                    weight_decay=float(wd) if wd else None)
    raise ConfigError(f"unknown optimizer {name!r}; choose adam, adamw or sgd")


def class_weights(y: np.ndarray, k: int, mode: str) -> np.ndarray:
    """Per-class weights: none (1), balanced (N/(K*n_c)) or sqrt (its square root); mean 1 over samples."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    if mode == "none":
        w = np.ones(k)
    elif mode in ("balanced", "sqrt"):
        w = np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 0.0)
        if mode == "sqrt":
            w = np.sqrt(w)
    else:
        raise ConfigError(f"unknown class_balance {mode!r}; choose none, balanced or sqrt")
    w = w / (w[y].mean() if len(y) else 1.0)
    return w.astype(np.float32)


def stage_of(stages: list[dict[str, Any]], epoch: int) -> tuple[int, int]:
    """(stage index, first epoch of that stage) for a 0-based epoch."""
    start = 0
    for i, st in enumerate(stages):
        if epoch < start + int(st["epochs"]):
            return i, start
        start += int(st["epochs"])
    return len(stages) - 1, start - int(stages[-1]["epochs"])


# ---------------------------------------------------------------- data pipeline

# Arrays above this many bytes are not copied into the tf.data graph: batches are gathered from the
# numpy array by index instead. A graph constant over 2 GB cannot be serialized, and the copy (plus
# the shuffled copy) would triple the memory of e.g. JAFFE's 79,449 copies at 224 px (4 GB).
IN_GRAPH_BYTES = 1 << 30


def _gathered(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, order: np.ndarray, batch: int):
    """The same batches as from_tensor_slices((x[order], y[order][, w[order]])).batch(batch), without copying x."""
    import tensorflow as tf

    arrays = (x, y) if w is None else (x, y, w)

    def take(idx):
        return tuple(a[idx] for a in arrays)

    def load(idx):
        parts = tf.numpy_function(take, [idx], [tf.as_dtype(a.dtype) for a in arrays], stateful=False)
        for part, a in zip(parts, arrays):
            part.set_shape((None, *a.shape[1:]))
        return tuple(parts)

    return tf.data.Dataset.from_tensor_slices(order).batch(batch).map(load)


def epoch_order(n: int, seed: int) -> np.ndarray:
    """The order of an epoch's ``n`` in-memory training faces (``dataset``'s shuffle)."""
    return np.random.default_rng(seed).permutation(n)


def dataset(x, y, w, batch: int, augment: Callable | None, seed: int | None, scale, num_classes: int, smooth: bool,
            share: Callable | None = None, skip_batches: int = 0):
    """Batches of (pixels, targets[, sample weights]). ``y`` is int labels (one-hot here) or
    already a (N, K) float target distribution (soft targets: FER+ votes, teachers).
    ``share``: a transform of the raw global batches that keeps this worker's part of each
    (``multiworker.replica_slices``), applied before the costly map.
    ``skip_batches``: leave out the first batches (an epoch resumed from a mid-epoch checkpoint);
    the rest are the same batches as without it."""
    import tensorflow as tf

    streamed = not isinstance(x, np.ndarray)  # a shard cache (data/shards.py) shuffles as it reads
    by_index = not streamed and x.nbytes > IN_GRAPH_BYTES
    order = epoch_order(len(x), seed) if seed is not None and not streamed else None
    if order is not None and not by_index:
        x, y = x[order], y[order]
        w = None if w is None else w[order]
    first = skip_batches * batch
    if skip_batches and not streamed and not by_index:
        x, y = x[first:], y[first:]
        w = None if w is None else w[first:]
    soft = np.ndim(y) == 2
    scale_v, offset_v = scale

    def prep(xb, yb, *rest):
        xb = tf.cast(xb, tf.float32)
        if augment is not None:
            xb = augment(xb)
        if scale_v != 1.0:
            xb = xb * scale_v
        if any(o != 0 for o in offset_v):
            xb = xb - tf.constant(offset_v, tf.float32)
        yb = tf.one_hot(yb, num_classes) if smooth and not soft else yb
        return (xb, yb, *rest)

    if streamed:  # one shard in memory at a time: flat memory however large the dataset
        ds = x.tf_dataset(y, w, batch, seed).skip(skip_batches)
    elif by_index:
        ds = _gathered(x, y, w, (np.arange(len(x)) if order is None else order)[first:], batch)
    else:
        parts = (x, y) if w is None else (x, y, w)
        ds = tf.data.Dataset.from_tensor_slices(parts).batch(batch)
    if share is not None:
        ds = share(ds)
    return without_autotune(ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))


def without_autotune(ds):
    """``ds`` with tf.data autotuning off. TF's autotune thread can miss the wake-up when its iterator is destroyed
    (it runs the cancel callback before the cancelled flag is set) and sleeps out its period (10 ms doubling, up to
    60 s): fit returned ~50 s after its epoch in half the edge_plain44_kd epochs (benchmarks/fit_epoch_stall.py).
    AUTOTUNE then means a fixed min(16, cores) calls, what autotuning chose here (2 on 2 cores)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


# ---------------------------------------------------------------- checkpoints


def read_state(ckdir: Path) -> dict[str, Any] | None:
    p = ckdir / STATE
    if not p.is_file():
        return None
    return json.loads(p.read_text())


def save_checkpoint(ckdir: Path, model, optimizer, state: dict[str, Any]) -> None:
    """``state["epoch"]``: epochs finished; ``state["partial"]``, when present: the batches of the next
    epoch trained since (a mid-epoch checkpoint)."""
    part = state.get("partial")
    name = f"epoch-{state['epoch'] + 1:03d}-batch-{part['batches']:06d}" if part else f"epoch-{state['epoch']:03d}"
    with atomic_dir(ckdir / name, overwrite=True) as tmp:
        model.save_weights(tmp / "model.weights.h5")
        np.savez(tmp / "optimizer.npz", *[np.asarray(v) for v in optimizer.variables])
    write_json(ckdir / STATE, {**state, "checkpoint": name})
    for old in [*ckdir.glob("epoch-*"), *ckdir.glob(".epoch-*")]:  # the newest only (and no temp of a killed save)
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(ckdir: Path, state: dict[str, Any], model, optimizer) -> None:
    folder = ckdir / state["checkpoint"]
    model.load_weights(folder / "model.weights.h5")
    optimizer.build(model.trainable_variables)
    with np.load(folder / "optimizer.npz") as z:
        values = [z[f"arr_{i}"] for i in range(len(z.files))]
    if len(values) != len(optimizer.variables):
        raise ConfigError(
            f"{folder}: checkpoint optimizer has {len(values)} variables, the rebuilt one {len(optimizer.variables)}; "
            "was the recipe changed since the run started?"
        )
    for var, val in zip(optimizer.variables, values):
        var.assign(val)


def _mid_epoch_saver(every_s: float, save: Callable[[int, dict[str, Any]], None]):
    """A Keras callback that calls ``save(batches done in this fit call, running logs)`` every ``every_s`` seconds."""
    import keras

    class MidEpochCheckpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.last = time.time()

        def on_train_batch_end(self, batch, logs=None):
            if time.time() - self.last >= every_s:
                save(batch + 1, dict(logs or {}))
                self.last = time.time()

    return MidEpochCheckpoint()


def _merge_partial(partial: dict[str, Any] | None, logs: dict[str, Any], faces: int) -> dict[str, float]:
    """Training metrics over a resumed epoch: the checkpoint's (``partial``: over its first batches) and
    this call's running ``logs`` (over ``faces`` faces), combined as Keras averages them over an epoch: by
    faces (the loss: batch means weighted by batch size, sample weights inside; compiled metrics: unweighted)."""
    out = {}
    for k, v in logs.items():
        if k.startswith("val_") or not isinstance(v, (int, float, np.floating, np.integer)):
            continue
        if partial and k in partial["metrics"]:
            out[k] = (partial["faces"] * float(partial["metrics"][k]) + faces * float(v)) / (partial["faces"] + faces)
        else:
            out[k] = float(v)
    return out


def save_best(ckdir: Path, model) -> None:
    tmp = ckdir / "best-tmp.weights.h5"
    model.save_weights(tmp)
    tmp.replace(ckdir / "best.weights.h5")


# ---------------------------------------------------------------- the loop


def fit(
    model,
    recipe_data: dict[str, Any],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    ckdir: Path,
    scale: tuple[float, tuple[float, ...]],
    num_classes: int,
    seed: int,
    resume: bool,
    log: Callable[[str], None],
    freeze_bn: bool = True,
    augment_cfg: dict[str, Any] | None = None,
    strategy=None,
    crop: tuple[int, int] | None = None,
    targets: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` in place through the recipe's stages; returns the history rows.

    ``train`` holds resized faces; with ``crop`` the augmenter cuts the model input from them
    (``val`` is already at the model input). ``targets``: (N, K) soft training targets that
    replace the one-hot labels (``soft_targets.py``); class weights still follow the hard labels.
    At the end the model holds the best-validation-accuracy weights.

    Under MultiWorkerMirroredStrategy the epochs run ``multiworker.Loop`` instead of
    ``model.fit``; only the chief reads and writes ``ckdir``, and sends its state to the workers.
    """
    import keras

    from . import distribute, multiworker
    from .augment import build_augmenter
    from .recipes import Recipe

    tr_cfg = recipe_data["train"]
    stages = Recipe("", recipe_data, "", "").stages
    total = sum(int(s["epochs"]) for s in stages)
    batch = int(tr_cfg.get("batch_size", 64))
    smooth = float(tr_cfg.get("label_smoothing", 0.0))
    cw = class_weights(train[1], num_classes, tr_cfg.get("class_balance", "none"))
    w_train = cw[train[1]] if tr_cfg.get("class_balance", "none") != "none" else None
    # each worker augments its own slices: its own random stream, or slice k of every worker would get
    # the same flips and crops (the pipeline that cuts the batches stays seeded alike on all workers)
    aug_seed = seed + 7919 * distribute.worker_rank(strategy)
    augment = build_augmenter(augment_cfg or {}, aug_seed, crop) if (augment_cfg or crop) else None
    steps = int(np.ceil(len(train[0]) / batch))
    patience = tr_cfg.get("early_stopping_patience")
    multi = distribute.is_multiworker(strategy)
    chief = distribute.is_chief(strategy)
    if chief:
        ckdir.mkdir(parents=True, exist_ok=True)

    state = read_state(ckdir) if resume and chief else None
    recipe_hash = training_digest(recipe_data)
    # full_digest: checkpoints written before prose was left out of the digest still resume
    if state and state.get("recipe_sha256", recipe_hash) not in (recipe_hash, full_digest(recipe_data)):
        # e.g. --teacher or --epochs left out of the resume command: never carry on with another recipe
        raise ConfigError(f"{ckdir.parent}: --resume with a different recipe or different options (--epochs, --precision, --teacher, ...) "
                          "than the run was started with; give the same command, or --overwrite to start again")
    start = int(state["epoch"]) if state else 0
    history: list[dict[str, Any]] = list(state["history"]) if state else []
    best = float(state["best_val_accuracy"]) if state else -1.0
    since_best = int(state.get("since_best", 0)) if state else 0
    # a perfect validation accuracy already decides early stopping: no later epoch can beat it (a gain must
    # be strict), so patience would end the run with these best weights; the epochs between change nothing
    decided = bool(state) and _perfect(best, patience) and not state.get("stopped_early")
    finished = bool(state) and (bool(state.get("stopped_early")) or start >= total or decided)
    partial = state.get("partial") if state and not finished else None  # resuming inside epoch start + 1
    if multi:  # the workers follow the chief's checkpoint
        start, best, since_best, finished, inside = multiworker.from_chief(
            strategy, [start, best, since_best, finished, bool(partial)])
        start, since_best, finished, best = int(start), int(since_best), bool(finished), float(best)
        if bool(inside):  # every process stops here, not only the chief
            raise ConfigError(f"{ckdir.parent}: this run stopped inside an epoch; resume it without multi-worker "
                              "training")
    n_faces = len(train[0])
    if partial and (partial.get("steps"), partial.get("n")) != (steps, n_faces):
        raise ConfigError(f"{ckdir / STATE}: the run stopped after batch {partial['batches']} of {partial.get('steps')} "
                          f"({partial.get('n')} faces) in epoch {start + 1}; this command gives {steps} batches of "
                          f"{n_faces} faces: resume with the same --data and --limit, or --overwrite to start again")
    # Mid-epoch checkpoints only where the epoch's batches are a fixed list (no replica drops a short last batch).
    mid_epoch = not multi and distribute.replicas(strategy) == 1
    if partial:
        log(f"resuming epoch {start + 1}/{total} after batch {partial['batches']}/{steps} "
            f"(mid-epoch checkpoint; best val accuracy so far {best:.4f})")
    elif state:
        log(f"resuming after epoch {start}/{total} (best val accuracy so far {best:.4f})")
    if decided and start < total:
        at = next((r["epoch"] for r in history if r.get("val_accuracy", 0.0) >= best), start)
        log(f"early stopping: val accuracy {best:.4f} in epoch {at} cannot improve; its best weights are final")
    elif finished:
        log("run had already finished training; finishing its artifacts")
    if finished:
        if chief:
            model.load_weights(ckdir / "best.weights.h5")
        return history

    def val_pipeline(share=None):
        return dataset(val[0], val[1], None, batch, None, None, scale, num_classes, True, share)

    val_ds = (multiworker.distributed(strategy, val_pipeline) if multi
              else distribute.without_empty_replicas(val_pipeline(), strategy))
    verbose = 1 if sys.stdout.isatty() else 2
    compiled_stage = None
    for epoch in range(start, total):
        si, s_start = stage_of(stages, epoch)
        stage = stages[si]
        if compiled_stage != si:
            scope = strategy.scope() if strategy is not None else _null()
            with scope:
                set_trainable(model, stage.get("trainable", "all"), freeze_bn)
                opt = make_optimizer(tr_cfg, stage, steps)
                if multi:  # variables made here, not inside a step
                    opt.build(model.trainable_variables)
                else:
                    model.compile(
                        optimizer=opt,
                        loss=keras.losses.CategoricalCrossentropy(label_smoothing=smooth),
                        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                    )
            if state and epoch == start and (epoch > s_start or partial):
                with strategy.scope() if strategy is not None else _null():  # optimizer slots are built here
                    load_checkpoint(ckdir, state, model, opt)  # mid-stage: restore weights + optimizer
            elif state and epoch == start:
                model.load_weights(ckdir / state["checkpoint"] / "model.weights.h5")
            if multi:
                with strategy.scope():
                    multiworker.sync_from_chief(strategy, list(model.weights) + list(opt.variables))
                loop = multiworker.Loop(strategy, model, opt, smooth)
            compiled_stage = si
            n_train = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
            log(f"stage {si + 1}/{len(stages)}: trainable={stage.get('trainable', 'all')} "
                f"({n_train:,} trainable params), epochs {s_start + 1}-{s_start + int(stage['epochs'])}")
        resumed = partial if epoch == start else None
        skip = int(resumed["batches"]) if resumed else 0
        t0 = time.time() - (float(resumed["seconds"]) if resumed else 0.0)
        train_y = train[1] if targets is None else targets

        def faces_in(first: int, last: int) -> int:
            """Faces in batches first..last-1 of this epoch (only the last batch may be short)."""
            return min(last * batch, n_faces) - first * batch

        def train_pipeline(share=None):
            return dataset(train[0], train_y, w_train, batch, augment, seed * 1000 + epoch, scale, num_classes, True,
                           share, skip_batches=skip)

        def save_partial(done: int, logs: dict[str, Any]) -> None:
            if chief and skip + done < steps:  # the epoch's own checkpoint follows its last batch
                save_checkpoint(ckdir, model, opt, {
                    "epoch": epoch, "total": total, "history": history, "best_val_accuracy": best,
                    "since_best": since_best, "stopped_early": False, "recipe_sha256": recipe_hash,
                    "partial": {"batches": skip + done, "steps": steps, "n": n_faces, "faces": faces_in(0, skip + done),
                                "seconds": round(time.time() - t0, 1),
                                "metrics": _merge_partial(resumed, logs, faces_in(skip, skip + done))}})

        log(f"epoch {epoch + 1}/{total}" + (f" from batch {skip + 1}/{steps}" if skip else ""))
        if multi:
            row = loop.epoch(multiworker.distributed(strategy, train_pipeline), val_ds, epoch + 1)
            lr = multiworker.learning_rate(opt)
        else:
            h = model.fit(distribute.without_empty_replicas(train_pipeline(), strategy), validation_data=val_ds,
                          epochs=epoch + 1, initial_epoch=epoch, verbose=verbose,
                          callbacks=[_mid_epoch_saver(MID_EPOCH_SECONDS, save_partial)] if mid_epoch else None)
            row = {k: float(v[-1]) for k, v in h.history.items()}
            row.update(_merge_partial(resumed, row, faces_in(skip, steps)))  # training metrics over the whole epoch
            lr = float(np.asarray(opt.learning_rate))
        secs = time.time() - t0
        # images/s: training images per wall-clock second of the whole epoch (validation pass included)
        row = {"epoch": epoch + 1, "stage": si + 1, **row, "lr": lr, "seconds": round(secs, 1),
               "images_per_second": round(n_faces / secs, 1)}
        history.append(row)
        improved = row.get("val_accuracy", 0.0) > best
        if improved:
            best = row["val_accuracy"]
            since_best = 0
            if chief:
                save_best(ckdir, model)
        else:
            since_best += 1
        perfect = _perfect(best, patience) and epoch + 1 < total
        stop = perfect or (bool(patience) and since_best >= int(patience))
        if chief:
            save_checkpoint(ckdir, model, opt, {
                "epoch": epoch + 1, "total": total, "history": history, "best_val_accuracy": best,
                "since_best": since_best, "stopped_early": stop, "recipe_sha256": recipe_hash,
            })
        log(f"epoch {epoch + 1}/{total}: loss {row['loss']:.4f} acc {row['accuracy']:.4f} "
            f"val_loss {row.get('val_loss', float('nan')):.4f} val_acc {row.get('val_accuracy', float('nan')):.4f} "
            f"lr {row['lr']:.2e} {secs:.0f}s {row['images_per_second']:.0f} img/s{' *best' if improved else ''}")
        if stop:
            log(f"early stopping: val accuracy {best:.4f} cannot improve; the best weights are final" if perfect
                else f"early stopping: no val accuracy gain for {patience} epochs")
            break
    if multi:
        log(f"{distribute.task_name(strategy)}: weights after epoch {history[-1]['epoch']}: sha256 "
            f"{multiworker.weights_digest(model)} (the same on every worker)")
    if chief:
        model.load_weights(ckdir / "best.weights.h5")
    return history


def _perfect(best: float, patience) -> bool:
    """Early stopping is on and the best validation accuracy is 100%: no epoch can gain on it."""
    return bool(patience) and best >= 1.0


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
