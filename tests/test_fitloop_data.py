"""The training input pipeline: a dataset too large to copy into the tf.data graph is gathered from
its numpy array by index, and gives exactly the batches of the in-graph path."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the training pipeline needs the train extra")


@pytest.mark.parametrize("seed, soft, weights", [(7, False, False), (7, True, True), (None, False, True)])
def test_gathered_batches_equal_the_in_graph_ones(monkeypatch, seed, soft, weights):
    from fer_edge.training import fitloop

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (203, 12, 12, 1), dtype=np.uint8)
    y = rng.random((203, 4)).astype(np.float32) if soft else rng.integers(0, 4, 203)
    w = rng.random(203).astype(np.float32) if weights else None

    def batches(skip=0):
        ds = fitloop.dataset(x, y, w, 32, None, seed, (1 / 255, (0.5,)), 4, True, skip_batches=skip)
        return [tuple(t.numpy() for t in b) for b in ds]

    in_graph, in_graph_resumed = batches(), batches(skip=5)
    monkeypatch.setattr(fitloop, "IN_GRAPH_BYTES", 0)  # every array is "large" now
    gathered, gathered_resumed = batches(), batches(skip=5)
    assert len(gathered) == len(in_graph) == 7  # 203 faces in batches of 32, the last one short
    # an epoch resumed after its 5th batch gets exactly the batches that were left
    assert len(in_graph_resumed) == len(gathered_resumed) == 2
    for a, b in zip(in_graph + in_graph[5:], gathered + gathered_resumed):
        assert len(a) == len(b) == (3 if weights else 2)
        for ta, tb in zip(a, b):
            np.testing.assert_array_equal(ta, tb)
    for a, b in zip(in_graph[5:], in_graph_resumed):
        for ta, tb in zip(a, b):
            np.testing.assert_array_equal(ta, tb)
    if seed is not None:  # shuffled: not the array's order
        assert not np.array_equal(in_graph[0][0], ((x[:32].astype(np.float32) / 255) - 0.5))


def test_pipeline_runs_without_autotuning():
    """An autotuned iterator's model thread can sleep out its period (up to 60 s) when fit destroys
    the iterator (benchmarks/fit_epoch_stall.py); the training and validation pipelines have none."""
    from fer_edge.training import fitloop

    x = np.zeros((10, 4, 4, 1), np.uint8)
    ds = fitloop.dataset(x, np.zeros(10, int), None, 4, None, 0, (1.0, (0.0,)), 3, True)
    assert ds.options().autotune.enabled is False
    assert sum(len(b[0]) for b in ds) == 10


def test_offline_copies_are_kept_for_a_resume(tmp_path):
    # The JAFFE paper's 79,449 copies at 224 px take tens of minutes: a resumed run reads them back.
    from fer_edge.training.augment import augment_copies

    x = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 1), dtype=np.uint8)
    cfg = {"rotation": 15, "shift": 0.1}
    first, src = augment_copies(x, cfg, 3, seed=0, cache=tmp_path)
    (kept,) = tmp_path.glob("copies-*.npy")
    np.testing.assert_array_equal(np.load(kept), first)
    np.save(kept, np.zeros_like(first))  # what the next call returns must come from the file
    again, src2 = augment_copies(x, cfg, 3, seed=0, cache=tmp_path)
    assert not again.any() and np.array_equal(src, src2)
    other, _ = augment_copies(x, cfg, 3, seed=1, cache=tmp_path)  # another seed: another key, computed
    assert other.any() and len(list(tmp_path.glob("copies-*.npy"))) == 2


@pytest.mark.parametrize("n, train_cfg", [
    (96, {"epochs": 2}),  # 12 full batches
    # 13 batches, the last of 4 faces, class-balanced sample weights; the stop is in stage 2's first epoch
    (100, {"class_balance": "balanced", "stages": [{"epochs": 1, "trainable": "all"},
                                                    {"epochs": 1, "trainable": "all", "lr": 0.02}]}),
])
def test_a_run_killed_inside_an_epoch_resumes_at_its_next_batch(tmp_path, monkeypatch, n, train_cfg):
    """Mid-epoch checkpoints: a run stopped after batch 3 of its last epoch resumes at batch 4 and ends with
    the weights and per-epoch training metrics of a run that was never stopped."""
    import json

    import keras

    from fer_edge.errors import ConfigError
    from fer_edge.training import fitloop

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 6, 6, 1), dtype=np.uint8)
    y = rng.integers(0, 3, n)
    recipe = {"train": {"batch_size": 8, "optimizer": "sgd", "lr": 0.05, "schedule": "cosine", **train_cfg}}
    steps = -(-n // 8)

    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(3, activation="softmax")])

    def run(folder, resume, log=lambda s: None, faces=n):
        return fitloop.fit(model(), recipe, (x[:faces], y[:faces]), (x[:16], y[:16]), folder / "checkpoints",
                           (1 / 255, (0.5,)), 3, 0, resume, log)

    whole = run(tmp_path / "whole", False)

    class Killed(Exception):
        pass

    real_save = fitloop.save_checkpoint

    def save_then_die(ckdir, m, opt, state):
        real_save(ckdir, m, opt, state)
        if state.get("partial") and state["epoch"] == 1 and state["partial"]["batches"] == 3:
            raise Killed

    monkeypatch.setattr(fitloop, "MID_EPOCH_SECONDS", 0.0)  # a mid-epoch checkpoint after every batch
    monkeypatch.setattr(fitloop, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        run(tmp_path / "cut", False)
    monkeypatch.undo()  # the resumed run checkpoints as a real one: at the end of each epoch
    ck = tmp_path / "cut" / "checkpoints"
    state = json.loads((ck / "state.json").read_text())
    assert (state["epoch"], state["partial"]["batches"], state["checkpoint"]) == (1, 3, "epoch-002-batch-000003")
    assert [p.name for p in ck.glob("epoch-*")] == ["epoch-002-batch-000003"]  # only the newest is kept
    with pytest.raises(ConfigError, match=rf"state.json: the run stopped after batch 3 of {steps} \({n} faces\)"):
        run(tmp_path / "cut", True, faces=n - 10)  # other faces: other batches; never skip the wrong ones
    lines: list[str] = []
    resumed = run(tmp_path / "cut", True, lines.append)
    assert f"resuming epoch 2/2 after batch 3/{steps}" in lines[0] and f"epoch 2/2 from batch 4/{steps}" in lines
    assert "epoch 1/2" not in lines  # the finished epoch is not trained again
    for name in ("whole", "cut"):  # both finished: the last epoch's checkpoint only
        assert [p.name for p in (tmp_path / name / "checkpoints").glob("epoch-*")] == ["epoch-002"]
    a, b = model(), model()
    a.load_weights(tmp_path / "whole" / "checkpoints" / "epoch-002" / "model.weights.h5")
    b.load_weights(ck / "epoch-002" / "model.weights.h5")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    assert [r["epoch"] for r in resumed] == [1, 2]
    for ra, rb in zip(whole, resumed):  # epoch 2's loss and accuracy cover all its batches, not the last ones
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5)
        assert rb["accuracy"] == pytest.approx(ra["accuracy"], rel=1e-5)
        assert rb["val_accuracy"] == pytest.approx(ra["val_accuracy"], abs=1e-6)


def test_a_perfect_validation_accuracy_ends_early_stopping_with_the_same_best_weights(tmp_path, monkeypatch):
    """Once validation accuracy is 100% no epoch can gain on it: the run stops there (and a run resumed from
    a checkpoint after such an epoch finishes at once) with the best weights patience would have kept."""
    import json

    import keras

    from fer_edge.training import fitloop

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 32)
    x = (y[:, None, None, None] * 120 + rng.integers(0, 8, (96, 6, 6, 1))).astype(np.uint8)  # separable
    recipe = {"train": {"batch_size": 8, "optimizer": "sgd", "lr": 0.5, "epochs": 8, "early_stopping_patience": 2}}

    def run(folder, resume=False, log=lambda s: None):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
        hist = fitloop.fit(m, recipe, (x, y), (x, y), folder / "checkpoints", (1 / 255, (0.5,)), 3, 0, resume, log)
        return hist, m.get_weights()

    lines: list[str] = []
    hist, weights = run(tmp_path / "rule", log=lines.append)
    perfect_at = next(r["epoch"] for r in hist if r["val_accuracy"] >= 1.0)
    assert perfect_at <= 6 and [r["epoch"] for r in hist] == list(range(1, perfect_at + 1))
    assert any("cannot improve" in s for s in lines)
    state = json.loads((tmp_path / "rule" / "checkpoints" / "state.json").read_text())
    assert state["stopped_early"] and state["best_val_accuracy"] == 1.0

    monkeypatch.setattr(fitloop, "_perfect", lambda best, patience: False)  # patience alone decides
    hist_p, weights_p = run(tmp_path / "patience")
    assert len(hist_p) == perfect_at + 2  # two epochs without a gain, as the rule foresaw
    for a, b in zip(weights, weights_p):  # both end on the best epoch's weights
        np.testing.assert_array_equal(a, b)

    # a run that went on past its perfect epoch without the rule (as jaffe_paper did) and was killed inside
    # the next one: resumed with it, it finishes at once with the best weights
    class Killed(Exception):
        pass

    real_save = fitloop.save_checkpoint

    def save_then_die(ckdir, m, opt, st):
        real_save(ckdir, m, opt, st)
        if st.get("partial") and st["epoch"] == perfect_at:
            raise Killed

    monkeypatch.setattr(fitloop, "MID_EPOCH_SECONDS", 0.0)
    monkeypatch.setattr(fitloop, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        run(tmp_path / "cut")
    monkeypatch.undo()
    lines.clear()
    resumed, weights_r = run(tmp_path / "cut", resume=True, log=lines.append)
    assert [r["epoch"] for r in resumed] == list(range(1, perfect_at + 1))
    assert any("cannot improve; its best weights are final" in s for s in lines)
    assert not any(s.startswith("epoch ") for s in lines)  # nothing trained again
    for a, b in zip(weights, weights_r):
        np.testing.assert_array_equal(a, b)
