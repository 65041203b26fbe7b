"""Repro: ``model.fit`` called once per epoch (as ``fitloop.fit`` does) sometimes returns seconds
after its last batch, when tf.data autotuning is on; ``fitloop.dataset`` now turns it off.

Cause (TensorFlow 2.21): an autotuned pipeline's iterator runs a ``tf_data_model`` thread that
sleeps between optimisations (10 ms, doubling, capped at 60 s: wake-ups ~41, 82, 142, 202 ... s
after the iterator starts). Destroying the iterator cancels it and joins that thread. The cancel
callback notifies the thread *before* the CancellationManager sets its cancelled flag, so the
thread can wake, still read "not cancelled", and sleep out the rest of its period: a lost wake-up.
With ``TF_CPP_VMODULE=model=2`` a stalled epoch shows a second "Waiting for N ms" line at the
moment fit's training iterator is destroyed (N = the stall). edge_plain44_kd's ~85-100 s epochs
therefore ended at exactly 142.2 s in about half the epochs.

A tiny model (Dense on 8x8) with a sleep after each batch: ~no CPU. The race is rarer here than in
the training (about half its epochs); the model thread's logging makes it show up more often:

    TF_CPP_VMODULE=model=2 nice -n 19 .venv/bin/python benchmarks/fit_epoch_stall.py 2>/dev/null  # ~4 min

Measured (2 cores, beside the running training; defaults: 30 fits of 8 batches + 0.4 s sleeps, ~3.7 s):
    autotune on,  model=2 logging: 3/30 fits stalled (1.7-1.8 s each: returned at 5.5 s, the 5.1 s wake-up),
                                   twice; without the logging 0/30 (and 0/12 pinned to one core)
    autotune off (fitloop.dataset): 0/30 with and 0/30 without the logging; no tf_data_model thread at all
                                   (0 model.cc log lines)
    ~25 s epochs (--batches 40 --sleep 0.6, autotune on, no logging; a draft of this script): 1 of 8 fits
                                   returned at 41.8 s, 16.5 s after its last batch (the 41 s wake-up)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def run(autotune: bool, epochs: int, batches: int, sleep: float) -> list[dict]:
    import keras
    import tensorflow as tf

    from fer_edge.training.augment import build_augmenter
    from fer_edge.training.fitloop import dataset

    batch, k = 64, 7
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch * batches, 10, 10, 1), dtype=np.uint8)
    y = rng.integers(0, k, len(x))
    scale = (1 / 255.0, (0.0,))
    # edge_plain44.toml's [augment], cutting 8x8 from 10x10
    cfg = {"hflip": True, "random_crop": True, "rotation": 10, "brightness": 0.2, "contrast": 0.2, "erasing": 0.5}
    augment = build_augmenter(cfg, 0, (8, 8))

    def pipeline(ds):
        opt = tf.data.Options()
        opt.autotune.enabled = autotune  # on: the pipeline before the fix
        return ds.with_options(opt)

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(k, "softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    marks: dict[str, float] = {}
    cb = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: (time.sleep(sleep), marks.__setitem__("last_batch", time.time())),
        on_train_end=lambda logs: marks.__setitem__("train_end", time.time()),
    )
    val_ds = pipeline(dataset(x[: batch * 5, :8, :8], y[: batch * 5], None, batch, None, None, scale, k, True))
    rows = []
    for epoch in range(epochs):  # one fit per epoch with a fresh train pipeline and the reused val_ds, as fitloop
        marks.clear()
        t0 = time.time()
        train_ds = pipeline(dataset(x, y, None, batch, augment, epoch, scale, k, True))
        model.fit(train_ds, validation_data=val_ds, epochs=epoch + 1, initial_epoch=epoch, verbose=0, callbacks=[cb])
        t_ret = time.time()
        row = {"autotune": autotune, "epoch": epoch + 1, "last_batch_s": round(marks["last_batch"] - t0, 1),
               "fit_return_s": round(t_ret - t0, 1), "stall_s": round(t_ret - marks["train_end"], 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="fit calls per setting")
    ap.add_argument("--batches", type=int, default=8, help="training batches per epoch")
    ap.add_argument("--sleep", type=float, default=0.4, help="seconds slept after each training batch")
    ap.add_argument("--autotune", choices=["on", "off", "both"], default="both")
    args = ap.parse_args()
    settings = {"on": [True], "off": [False], "both": [True, False]}[args.autotune]
    for autotune in settings:
        rows = run(autotune, args.epochs, args.batches, args.sleep)
        stalls = [r["stall_s"] for r in rows if r["stall_s"] >= 0.5]
        print(f"autotune {'on' if autotune else 'off'}: {len(stalls)}/{len(rows)} fits returned >= 0.5 s after "
              f"their last batch (stalls {stalls}); max fit {max(r['fit_return_s'] for r in rows)} s", flush=True)


if __name__ == "__main__":
    main()
