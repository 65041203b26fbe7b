"""benchmarks/reproduce_papers.py: every row builds a schema-valid recipe at its budget, the Wilson
interval is right, and the table is written from run folders (finished, interrupted, failed, not run)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from fer_edge.errors import ConfigError

from tiny_recipe import tiny_recipe

REPO = Path(__file__).resolve().parent.parent
pytest.importorskip("pydantic", reason="the recipe schema needs the train extra")


@pytest.fixture
def rp(tmp_path, monkeypatch):
    name = "reproduce_papers_under_test"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "reproduce_papers.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, mod)  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path / "runs" / "papers")
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(mod, "TABLE", tmp_path / "results" / "papers.md")
    monkeypatch.setattr(mod, "ROWS", tmp_path / "results" / "papers_rows.json")
    (tmp_path / "results").mkdir()
    return mod


def test_every_row_builds_its_budget(rp):
    for key, row in rp.RUNS.items():
        d = rp.build_recipe(key).data
        assert d["train"]["epochs"] == row.epochs, key
        for table, values in row.edits.items():
            for k, v in values.items():
                assert d[table][k] == v, (key, table, k)
        proto = d["data"]["protocols"][d["data"]["protocol"]]
        assert all(proto[k] == v for k, v in row.changes.items()), key
        assert row.mark in ("paper's", "reduced", "not runnable here"), key
    assert rp.build_recipe("cnn_m3_k2_lr001").data["model"]["kernel"] == 2
    assert rp.build_recipe("cnn_m3_k3_lr001").data["model"]["kernel"] == 3
    jaffe = rp.build_recipe("jaffe_paper").data
    assert jaffe["input"]["size"] == [224, 224] and jaffe["data"]["protocols"]["paper"]["copies"] == 373
    dev = rp.build_recipe("jaffe_dev_paper").data
    assert dev["train"]["lr"] == 0.001 and dev["model"]["normalize"] == "none"
    # the four deviation checks: lr x input scaling; the paper-budget rows keep the paper's raw input
    scaling = {k: (rp.build_recipe(k).data["train"]["lr"], rp.build_recipe(k).data["model"]["normalize"])
               for k in ("jaffe_dev_paper", "jaffe_dev_lr", "jaffe_dev_norm", "jaffe_dev_ours")}
    assert sorted(scaling.values()) == [(0.0001, "none"), (0.0001, "tanh"), (0.001, "none"), (0.001, "tanh")]
    assert {rp.build_recipe(k).data["model"]["normalize"] for k in ("jaffe_paper", "jaffe_loso")} == {"none"}
    # the BatchNorm checks: the control differs from them in BatchNorm mode only (all float32, raw input); BN
    # trains only after recalibration (the shared weights have it folded)
    bn = {k: rp.build_recipe(k).data for k in ("jaffe_dev_norm_f32", "jaffe_dev_bn", "jaffe_dev_paper_bn")}
    assert {d["train"].get("precision", "float32") for d in bn.values()} == {"float32"}
    assert [(d["train"]["lr"], d["model"].get("freeze_bn", True), d["model"].get("bn_recalibrate", False))
            for d in bn.values()] == [(0.0001, True, False), (0.0001, False, True), (0.001, False, True)]
    # the precision check is its bfloat16 row in float32, and does not claim bfloat16 in its reasons
    assert rp.row_digest("cnn_m3_k3_lr003_f32") == rp.row_digest("cnn_m3_k3_lr003", "float32")
    assert "bfloat16 where" not in rp.RUNS["cnn_m3_k3_lr003_f32"].why
    # a row's claim replaces the recipe file's (Table 1's other cells share a recipe)
    assert rp.build_recipe("cnn_m3_k2_lr001").data["claim"] == "77.3% (Table 1)"
    # --precision replaces the row's (float32 where bfloat16 is emulated), schema-checked like the rest
    assert rp.build_recipe("cnn_m1").data["train"]["precision"] == "mixed_bfloat16"
    assert rp.build_recipe("cnn_m1", precision="float32").data["train"]["precision"] == "float32"
    smoke = rp.build_recipe("jaffe_loso", smoke=True).data
    assert smoke["train"]["epochs"] == 1 and smoke["data"]["protocols"]["loso"]["folds"] == 1


def test_a_misspelled_edit_is_refused_naming_the_row(rp, monkeypatch):
    bad = rp.Row("x", "custom_cnn_fer4", rp.FER, 1, "b", "reduced", "w", "c", edits={"train": {"epochz": 3}})
    monkeypatch.setitem(rp.RUNS, "bad_row", bad)
    with pytest.raises(ConfigError, match=r"row bad_row.*train\.epochz"):
        rp.build_recipe("bad_row")


@pytest.mark.parametrize("k,n", [(101, 128), (0, 128), (1790, 2515)])
def test_wilson_interval_matches_the_closed_form(rp, k, n):
    pytest.importorskip("scipy")
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = rp.wilson_interval(k, n)
    assert lo == pytest.approx(max(0.0, centre - half), abs=1e-9) and hi == pytest.approx(centre + half, abs=1e-9)


def _finished_cnn(folder: Path, correct: list[int]):
    """A finished 4-class run folder: manifest, metrics (confusion matrix on the diagonal + errors), history."""
    folder.mkdir(parents=True)
    labels = ["happy", "sad", "neutral", "surprise"]
    cm = [[correct[i] if i == j else 10 for j in range(4)] for i in range(4)]
    n = sum(map(sum, cm))
    per_class = {c: {"f1": 0.5 + i / 10, "precision": 0, "recall": 0, "support": 0} for i, c in enumerate(labels)}
    test = {"n": n, "accuracy": sum(correct) / n, "macro_f1": 0.6, "per_class": per_class, "confusion_matrix": cm}
    summary = {"test_accuracy": test["accuracy"], "test_macro_f1": 0.6, "epochs_run": 2, "precision": "float32"}
    (folder / "metrics.json").write_text(json.dumps({"test": test, "val": test, "summary": summary}))
    (folder / "manifest.json").write_text("{}")
    (folder / "history.csv").write_text(
        "epoch,seconds,images_per_second,accuracy,val_accuracy\n1,100,200,0.5,0.4\n2,300,400,0.75,0.625\n")
    return n


def test_table_from_run_folders(rp):
    pytest.importorskip("scipy")
    out = rp.OUT
    n = _finished_cnn(out / "cnn_m3_k3_lr003", [800, 400, 450, 350])
    (out / "cnn_m3_k3_lr003.result.json").write_text(json.dumps(
        {"status": "done", "dedup": {"accuracy": 0.7, "macro_f1": 0.65, "n": 2328, "removed": 187}}))
    ck = out / "cnn_m1" / "checkpoints"
    ck.mkdir(parents=True)
    (ck / "state.json").write_text(json.dumps({"epoch": 3, "total": 35, "best_val_accuracy": 0.61,
                                               "history": [{"seconds": 60, "images_per_second": 300}] * 3,
                                               "partial": {"batches": 120, "seconds": 20.0, "metrics": {}}}))
    (out / "cnn_m1.result.json").write_text(json.dumps({"status": "running", "pid": 1}))
    long_reason = "cannot load ResNet50 weights | " + "offline " * 100
    (out / "efficientnet_b0.result.json").write_text(json.dumps({"status": "failed", "reason": "x " + "b" * 600}))
    (out / "resnet50.result.json").write_text(json.dumps({"status": "failed", "reason": long_reason}))

    results = rp.all_results()
    assert results["cnn_m3_k3_lr003"]["last_epoch"] == {"accuracy": 0.75, "val_accuracy": 0.625}  # for the notes
    rp.write_table(results)
    text = rp.TABLE.read_text()
    rows: dict[str, str] = {}
    for line in text.splitlines():  # the main table's row of each key (the CNN section repeats some keys)
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].lstrip("| "), line)
    done = rows["cnn_m3_k3_lr003"]
    assert f"{2000 / n:.2%}" in done and "PrivateTest minus 187 train duplicates, n=2328" in done
    assert "0.11 h" in done and "| 300 |" in done  # 400 s of epochs; median of 200 and 400 images/s
    assert "67.99%" in done  # the earlier, reduced-budget number stays in its column
    assert "epoch 3/35 and 120 batches of epoch 4, best val 61.00%" in rows["cnn_m1"] and rp.NOT_YET in rows["cnn_m1"]
    assert "failed: cannot load ResNet50 weights / offline" in rows["resnet50"]  # a "|" would split the cell
    assert "offline ... |" in rows["resnet50"] and len(rows["resnet50"]) < len(long_reason) + 600  # whole words, cut
    assert "failed: x " + "b" * 494 + " ... |" in rows["efficientnet_b0"]  # one long word: cut, not dropped
    # The reference models come from the committed results (a new machine has no run folders).
    study = {r["run"]: r for r in json.loads((REPO / "benchmarks/results/edge_study_rows.json").read_text())}
    assert f"- ours, edge_plain44_kd: {study['edge_plain44_kd']['test_acc']:.2%}" in text
    assert "- peer (fer mini-Xception), peer-keras-fp32: " in text
    assert rows["cnn_m2"].count(rp.NOT_YET) == 1 and "71.01%" in rows["cnn_m2"]
    # The CNN section: the claim's interval on 128 images, ours on the full test with its own interval, F1s.
    cnn = [line for line in text.splitlines() if line.startswith("| cnn_m3_k3_lr003 |")][-1]
    lo, hi = rp.wilson_interval(101, 128)
    assert f"101/128: {lo:.1%}-{hi:.1%}" in cnn
    lo, hi = rp.wilson_interval(2000, n)
    assert f"2000/{n}" in cnn and f"{lo:.1%}-{hi:.1%}" in cnn
    assert "0.50 / 0.60 / 0.70 / 0.80 | 0.88 / 0.59 / 0.72 / 0.91" in cnn


def _manifest_of(rp, folder: Path, key: str, **overrides):
    """A manifest whose provenance holds the recipe the row trained (its digest decides if a record is current);
    _finished_cnn's summary says float32, so the overrides say it too."""
    data = rp.build_recipe(key).data
    data["train"].update(overrides)
    (folder / "manifest.json").write_text(json.dumps({"provenance": {"recipe_data": data}}))


JAFFE7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _loso_at_cap_10(rp, monkeypatch):
    """Pin jaffe_loso at an epoch cap of 10 without earlier caps: these tests fix their folds' epochs."""
    import dataclasses

    row = dataclasses.replace(rp.RUNS["jaffe_loso"], epochs=10, earlier_caps=())
    monkeypatch.setitem(rp.RUNS, "jaffe_loso", row)
    return row

def _finished_fold(rp, folder: Path, subject: str, correct: int, epochs: int, best: int, recipe_data=None):
    """A finished one-fold LOSO run folder (as `train` leaves it): 21 test faces, `correct` of them right."""
    folder.mkdir(parents=True)
    cm = [[0] * 7 for _ in range(7)]
    cm[0][0], cm[0][1] = correct, 21 - correct
    test = {"confusion_matrix": cm, "labels": JAFFE7, "accuracy": correct / 21, "n": 21}
    per_fold = {f"loso-{subject}": {"accuracy": correct / 21, "n": 21, "epochs_run": epochs, "best_epoch": best}}
    (folder / "metrics.json").write_text(json.dumps(
        {"test": test, "per_fold": per_fold, "summary": {"precision": "float32", "test_accuracy": correct / 21}}))
    data = recipe_data or rp.build_recipe("jaffe_loso", precision="float32", subject=subject).data
    (folder / "manifest.json").write_text(json.dumps({"provenance": {"recipe_data": data}}))
    (folder / "folds" / f"loso-{subject}").mkdir(parents=True)
    (folder / "folds" / f"loso-{subject}" / "history.csv").write_text(
        "epoch,seconds,images_per_second\n" + "".join(f"{e},60,30\n" for e in range(1, epochs + 1)))
    (folder / "folds" / f"loso-{subject}" / "manifest.json").write_text("{}")


def test_a_loso_row_finishes_over_several_machines(rp, monkeypatch, tmp_path):
    # Each fold is its own run folder, recorded as it ends: a machine that is recycled mid-row loses only the
    # fold in progress, and the next one trains the subjects not yet recorded, then pools all ten.
    pytest.importorskip("scipy")
    import shutil

    _loso_at_cap_10(rp, monkeypatch)
    out = rp.OUT
    for subject in ("KA", "KL"):
        _finished_fold(rp, out / "jaffe_loso" / f"loso-{subject}", subject, 9, 5, 2)
    state = out / "jaffe_loso" / "loso-KM" / "folds" / "loso-KM" / "checkpoints"  # interrupted mid-fold, where
    state.mkdir(parents=True)                                                    # a one-fold LOSO run keeps it
    (state / "state.json").write_text(json.dumps({"epoch": 2, "total": 10, "best_val_accuracy": 0.5}))
    first = rp.row_result("jaffe_loso")
    assert first["status"] == "partial"
    assert first["progress"] == "2 of 10 folds finished (2 here, 0 recorded earlier); KM: epoch 2/10, best val 50.00%"
    (state / "state.json").write_text(json.dumps({"epoch": 2, "total": 10, "best_val_accuracy": 0.5,
                                                  "partial": {"batches": 40}}))  # a mid-epoch checkpoint
    assert rp.row_result("jaffe_loso")["progress"].endswith("KM: epoch 2/10 and 40 batches of epoch 3, best val 50.00%")
    (state / "state.json").write_text(json.dumps({"epoch": 0, "total": 10, "best_val_accuracy": -1,
                                                  "partial": {"batches": 7}}))  # inside the first epoch
    assert rp.row_result("jaffe_loso")["progress"].endswith("KM: epoch 0/10 and 7 batches of epoch 1")
    (state / "state.json").write_text(json.dumps({"epoch": 2, "total": 10, "best_val_accuracy": 0.5}))
    rp.save_row_records(rp.all_results())
    assert set(rp.load_row_records()["jaffe_loso"]["folds"]) == {"KA", "KL"}

    shutil.rmtree(out)  # the next machine: only the records are left
    assert rp.row_result("jaffe_loso")["progress"] == "2 of 10 folds finished (0 here, 2 recorded earlier)"
    rp.write_table(rp.all_results(evaluate=False))  # the unfinished row shows the folds so far
    row = [x for x in rp.TABLE.read_text().splitlines() if x.startswith("| jaffe_loso |")][0]
    assert "folds KA 9/21, KL 9/21 (18/42 = 42.9% pooled)" in row
    trained = []

    def fake_train(recipe, data, fold_out, **kw):  # what the trainer leaves: a finished one-fold run folder
        subject = recipe.data["data"]["protocols"]["loso"]["folds"]
        assert len(subject) == 1 and recipe.data["train"]["precision"] == "float32"
        assert len(rp.load_row_records()["jaffe_loso"]["folds"]) == 2 + len(trained)  # each fold recorded as it ends
        trained.append(subject[0])
        _finished_fold(rp, fold_out, subject[0], 8, 10 if subject[0] == "YM" else 4, 1, recipe.data)

    monkeypatch.setattr("fer_edge.training.trainer.train", fake_train)
    (tmp_path / "data" / "jaffe").mkdir(parents=True)
    monkeypatch.setenv("FER_EDGE_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "argv", ["reproduce_papers.py", "--only", "jaffe_loso", "--precision", "float32"])
    rp.main()
    assert trained == [s for s in rp.JAFFE_SUBJECTS if s not in ("KA", "KL")]
    stored = rp.load_row_records()["jaffe_loso"]
    assert stored["status"] == "done" and len(stored["folds"]) == 10
    assert stored["summary"]["test_accuracy"] == pytest.approx((2 * 9 + 8 * 8) / 210)
    text = rp.TABLE.read_text()
    row = [x for x in text.splitlines() if x.startswith("| jaffe_loso |")][0]
    assert f"{82 / 210:.2%} pooled LOSO" in row and "1 of 10 folds ran to the cap of 10" in row
    assert "- jaffe_loso: folds KA, KL (2 of 10) from records of " in text
    # folds share one precision: the row refuses to add bfloat16 folds to float32 ones
    monkeypatch.setattr(sys, "argv", ["reproduce_papers.py", "--only", "jaffe_loso", "--precision", "mixed_bfloat16"])
    rp.main()
    assert json.loads((out / "jaffe_loso.result.json").read_text())["reason"].startswith(
        "row jaffe_loso: 10 folds are finished in float32")
    # a fold folder here trained with other settings is not pooled: its current record counts if there is one,
    # else the row is unfinished and training it again says why
    stale = out / "jaffe_loso" / "loso-YM"
    data = json.loads((stale / "manifest.json").read_text())
    data["provenance"]["recipe_data"]["train"]["lr"] = 0.5
    (stale / "manifest.json").write_text(json.dumps(data))
    assert rp.row_result("jaffe_loso")["status"] == "done"
    rec = json.loads(rp.ROWS.read_text())
    del rec["rows"]["jaffe_loso"]["folds"]["YM"]
    rp.ROWS.write_text(json.dumps(rec))
    assert rp.row_result("jaffe_loso")["status"] == "partial"
    monkeypatch.setattr(sys, "argv", ["reproduce_papers.py", "--only", "jaffe_loso", "--resume"])
    rp.main()
    assert "loso-YM: a fold trained with other settings" in json.loads((out / "jaffe_loso.result.json").read_text())["reason"]
    # a fold recorded for another definition of the row does not count: it trains again
    rec = json.loads(rp.ROWS.read_text())
    rec["rows"]["jaffe_loso"]["folds"]["KA"]["digest"] = "0" * 64
    rp.ROWS.write_text(json.dumps(rec))
    shutil.rmtree(out / "jaffe_loso" / "loso-KA", ignore_errors=True)
    assert rp.row_result("jaffe_loso")["status"] == "partial"



def test_a_raised_loso_cap_keeps_the_folds_that_stopped_early_and_retrains_the_capped_one(rp, monkeypatch, tmp_path):
    # jaffe_loso's cap raised from 10 to 20: at a constant lr a fold that early stopping ended (at epoch 4, or at
    # the cap itself with 3 epochs without gain) trains alike under either cap and counts; the fold that the cap
    # ended (its best epoch the last) trains again from scratch, its old folder kept beside
    pytest.importorskip("scipy")
    import dataclasses
    import shutil

    base = _loso_at_cap_10(rp, monkeypatch)
    out = rp.OUT / "jaffe_loso"
    for subject in rp.JAFFE_SUBJECTS:  # trained at the cap of 10, recorded, then the machine is gone
        epochs, best = {"UY": (10, 10), "NM": (10, 7)}.get(subject, (4, 1))
        _finished_fold(rp, out / f"loso-{subject}", subject, 9, epochs, best)
    rp.save_row_records(rp.all_results())
    shutil.rmtree(rp.OUT)
    raised = dataclasses.replace(base, epochs=20, earlier_caps=(10,))
    monkeypatch.setitem(rp.RUNS, "jaffe_loso", raised)
    first = rp.row_result("jaffe_loso")
    assert first["status"] == "partial" and first["stale_here"] == [] and first["capped"] == {"UY": 10}
    assert first["progress"] == ("9 of 10 folds finished (0 here, 9 recorded earlier); "
                                 "UY ran to the earlier cap of 10: to train again at 20")
    # the same folds as folders here (the machine that trained them): UY's is moved aside, then trained again
    for subject in rp.JAFFE_SUBJECTS:
        epochs, best = {"UY": (10, 10), "NM": (10, 7)}.get(subject, (4, 1))
        _finished_fold(rp, out / f"loso-{subject}", subject, 9, epochs, best,
                       rp.build_recipe("jaffe_loso", precision="float32", subject=subject, epochs=10).data)
    rp.ROWS.unlink()
    here = rp.row_result("jaffe_loso")
    assert here["capped"] == {"UY": 10} and here["progress"].startswith("9 of 10 folds finished (9 here, 0 recorded")
    trained = []

    def fake_train(recipe, data, fold_out, **kw):
        assert not fold_out.exists() and (fold_out.parent / "loso-UY.cap10" / "metrics.json").is_file()
        assert recipe.data["train"]["epochs"] == 20
        trained.append(fold_out.name)
        _finished_fold(rp, fold_out, "UY", 12, 13, 10, recipe.data)

    monkeypatch.setattr("fer_edge.training.trainer.train", fake_train)
    (tmp_path / "data" / "jaffe").mkdir(parents=True)
    monkeypatch.setenv("FER_EDGE_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "argv", ["reproduce_papers.py", "--only", "jaffe_loso", "--resume"])
    rp.main()
    assert trained == ["loso-UY"]
    done = rp.row_result("jaffe_loso")
    assert done["status"] == "done" and done["test_correct"] == 9 * 9 + 12 and done["capped"] == {}
    assert done["per_fold"]["loso-UY"] == {"epochs_run": 13, "best_epoch": 10}
    assert rp._fold_epochs(done["per_fold"], 20) == "; epochs per fold 4-13 (best 1-10), 0 of 10 folds ran to the cap of 20"
    assert "capped" not in rp.load_row_records()["jaffe_loso"]  # what the table derives is not recorded
    # an earlier cap means nothing to a schedule that spans the epochs: the row refuses it, naming itself
    monkeypatch.setitem(rp.RUNS, "jaffe_loso", dataclasses.replace(
        raised, edits={**raised.edits, "train": {**raised.edits["train"], "schedule": "cosine"}}))
    with pytest.raises(rp.FerEdgeError, match="row jaffe_loso: earlier_caps needs a constant lr in one stage, not "
                                              "1 stage.s. with schedule cosine"):
        rp.build_recipe("jaffe_loso")


def test_finished_rows_survive_a_new_machine(rp, monkeypatch):
    # runs/papers/ stays on the machine that trained: a finished row's record is committed beside the table,
    # and a machine without the run folder writes the same rows from it and does not train the row again.
    pytest.importorskip("scipy")
    import shutil

    out = rp.OUT
    _finished_cnn(out / "cnn_m3_k3_lr003", [800, 400, 450, 350])
    _manifest_of(rp, out / "cnn_m3_k3_lr003", "cnn_m3_k3_lr003", precision="float32")
    (out / "cnn_m3_k3_lr003.result.json").write_text(json.dumps(
        {"status": "done", "dedup": {"accuracy": 0.7, "macro_f1": 0.65, "n": 2328, "removed": 187},
         "cpu": "AMD EPYC"}))
    (out / "resnet50.result.json").write_text(json.dumps({"status": "failed", "reason": "no weights offline"}))
    rp._record_and_write()
    here = rp.TABLE.read_text()
    stored = rp.load_row_records()
    assert set(stored) == {"cnn_m3_k3_lr003", "resnet50"}  # done and failed rows; unrun rows are not recorded
    assert stored["cnn_m3_k3_lr003"]["source"] == "run folder runs/papers/cnn_m3_k3_lr003"
    assert stored["cnn_m3_k3_lr003"]["test_correct"] == 2000
    assert stored["cnn_m3_k3_lr003"]["digest"] == rp.row_digest("cnn_m3_k3_lr003", "float32")
    assert "| 0.11 h (AMD EPYC, float32) |" in here  # wall time on which CPU, in which precision
    assert "Rows read from committed records" not in here

    shutil.rmtree(out)  # the next machine
    rp.write_table(rp.all_results())
    there = rp.TABLE.read_text()
    assert [x for x in there.splitlines() if x.startswith("| ")] == [x for x in here.splitlines() if x.startswith("| ")]
    assert "- cnn_m3_k3_lr003: recorded " in there and "run folder runs/papers/cnn_m3_k3_lr003; AMD EPYC, float32" in there
    monkeypatch.setattr(sys, "argv", ["reproduce_papers.py", "--only", "cnn_m3_k3_lr003", "--resume"])
    monkeypatch.setattr(rp, "run_one", lambda *a, **k: pytest.fail("a committed row was trained again"))
    rp.main()
    assert rp.TABLE.read_text() == there
    # a run folder, when present, takes precedence over the committed record
    _finished_cnn(out / "cnn_m3_k3_lr003", [900, 400, 450, 350])
    assert rp.row_result("cnn_m3_k3_lr003", evaluate=False)["test_correct"] == 2100


def test_a_failure_keeps_the_committed_result_and_stale_records_retrain(rp, monkeypatch):
    pytest.importorskip("scipy")
    import shutil

    out = rp.OUT
    _finished_cnn(out / "cnn_m1", [800, 400, 450, 350])
    _manifest_of(rp, out / "cnn_m1", "cnn_m1", precision="float32")
    rp.save_row_records(rp.all_results(evaluate=False))
    good = rp.load_row_records()["cnn_m1"]
    # a --retrain (or a resume refused for other options) that fails: shown while its folder is here, not committed
    shutil.rmtree(out / "cnn_m1")
    (out / "cnn_m1.result.json").write_text(json.dumps({"status": "failed", "reason": "--resume with other options"}))
    results = rp.all_results(evaluate=False)
    assert results["cnn_m1"]["status"] == "failed"
    rp.save_row_records(results)
    assert rp.load_row_records()["cnn_m1"] == good
    (out / "cnn_m1.result.json").unlink()
    assert rp.row_result("cnn_m1", evaluate=False)["test_correct"] == 2000

    # the row's definition changes after it was recorded: its record no longer counts, and it trains again
    stale = out / "stale"
    _finished_cnn(stale / "cnn_m2", [800, 400, 450, 350])
    _manifest_of(rp, stale / "cnn_m2", "cnn_m2", epochs=3, precision="float32")
    rp.save_row_records({"cnn_m2": rp.row_result("cnn_m2", out_root=stale, evaluate=False)})
    r = rp.row_result("cnn_m2", evaluate=False)
    assert r["status"] == "stale"
    rp.write_table(rp.all_results(evaluate=False))
    row = [x for x in rp.TABLE.read_text().splitlines() if x.startswith("| cnn_m2 |")][0]
    assert "trained a recipe this row no longer defines" in row
    trained = {}
    monkeypatch.setattr(rp, "run_one", lambda key, resume, precision=None, after_fold=None, retrain=False: trained.update({key: precision})
                        or {"status": "failed", "reason": "test"})
    monkeypatch.setattr(sys, "argv", ["reproduce_papers.py", "--only", "cnn_m1,cnn_m2", "--precision", "float32"])
    rp.main()
    assert trained == {"cnn_m2": "float32"}  # the current record is skipped; --precision reaches the run


def test_leak_free_cells_fail_softly_and_point_to_their_row(rp, monkeypatch):
    # A leak-free evaluation that fails leaves its row finished (the table says why); the leaking JAFFE
    # paper row shows the pooled LOSO number beside it; the ResNet rows show the paper's own holdout score.
    pytest.importorskip("scipy")
    _loso_at_cap_10(rp, monkeypatch)
    out = rp.OUT

    def broken(run, role="test"):
        raise OSError(f"{run}: no dataset here ({role})")

    monkeypatch.setattr(rp, "dedup_eval", broken)
    _finished_cnn(out / "cnn_m2", [800, 400, 450, 350])
    for i, subject in enumerate(rp.JAFFE_SUBJECTS):  # LOSO: one run folder per held-out subject
        epochs, best = {"KA": (10, 7), "KL": (4, 1)}.get(subject, (5, 2))
        _finished_fold(rp, out / "jaffe_loso" / f"loso-{subject}", subject, 8 + i % 2, epochs, best)
    for key, test_acc in (("jaffe_paper", 0.95), ("resnet50_sub", 0.6)):
        folder = out / key
        folder.mkdir(parents=True)
        summary = {"test_accuracy": test_acc, "test_macro_f1": 0.4, "fold_accuracy_mean": 0.4,
                   "fold_accuracy_std": 0.1, "epochs_run": 3}
        (folder / "metrics.json").write_text(json.dumps({"summary": summary, "val": {"accuracy": 0.625}}))
        (folder / "manifest.json").write_text("{}")
    (out / "resnet50_sub_96").mkdir(parents=True)  # a finished ResNet row whose duplicate-free holdout score exists
    (out / "resnet50_sub_96" / "metrics.json").write_text(json.dumps(
        {"summary": {"test_accuracy": 0.55, "test_macro_f1": 0.4}, "val": {"accuracy": 0.6}}))
    (out / "resnet50_sub_96" / "manifest.json").write_text("{}")
    (out / "resnet50_sub_96.result.json").write_text(json.dumps(
        {"status": "done", "dedup": {"accuracy": 0.54, "macro_f1": 0.4, "n": 3301, "removed": 288},
         "dedup_val": {"accuracy": 0.58, "macro_f1": 0.4, "n": 5500, "removed": 242}}))
    results = rp.all_results()
    assert results["cnn_m2"]["status"] == "done"
    rp.write_table(results)
    rows = {}
    for line in rp.TABLE.read_text().splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].lstrip("| "), line)
    assert "leak-free evaluation failed: OSError" in rows["cnn_m2"]
    lo, hi = rp.wilson_interval(85, 210)
    pooled = f"{85 / 210:.2%} pooled LOSO (85/210; Wilson 95% {lo:.1%}-{hi:.1%}"  # 8 or 9 of 21 right per fold
    assert pooled in rows["jaffe_loso"] and pooled in rows["jaffe_paper"]
    assert "(row jaffe_loso, 20 copies/image)" in rows["jaffe_paper"]  # the leak-free number's own budget
    assert "folds KA 8/21, KL 9/21, KM 8/21, KR 9/21, MK 8/21" in rows["jaffe_loso"]  # each subject's score
    assert rows["jaffe_loso"].count("85/210") == 1  # the pooled count once
    assert ("on the 20% holdout of Training (the paper's test set; LEAKS: the same holdout chose the best epoch) "
            "62.50% (its duplicate-free score failed: OSError" in rows["resnet50_sub"])
    assert ("62.50% (its duplicate-free score failed" not in rows["resnet50_sub_96"]
            and "60.00%, 58.00% without its 242 faces pixel-identical to a training face (n=5500; still chosen on "
                "this holdout)" in rows["resnet50_sub_96"])
    # LOSO: the epochs each fold ran, and how many the cap (not the held-out person's curve) stopped
    assert "epochs per fold 4-10 (best 1-7), 1 of 10 folds ran to the cap of 10 (" in rows["jaffe_loso"]
    # a run resumed over folds finished before best_epoch was recorded: no partial best range; older: nothing
    mixed = {"loso-KA": {"epochs_run": 3}, "loso-KL": {"epochs_run": 10, "best_epoch": 2}}
    assert rp._fold_epochs(mixed, 10) == "; epochs per fold 3-10, 1 of 2 folds ran to the cap of 10 (KL: best epoch 2 of 10)"
    # a capped fold whose best epoch is its last: the cap stopped a curve still rising, and the row says which
    rising = {"loso-KA": {"epochs_run": 4, "best_epoch": 1}, "loso-UY": {"epochs_run": 10, "best_epoch": 10}}
    assert rp._fold_epochs(rising, 10) == ("; epochs per fold 4-10 (best 1-10), 1 of 2 folds ran to the cap of 10 "
                                           "(UY: best epoch 10 of 10, still rising)")
    assert rp._fold_epochs({"loso-KA": {"accuracy": 0.4}}, 10) == ""


def test_a_broken_record_file_is_one_line_naming_it(rp):
    rp.ROWS.write_text('{"rows": {"cnn_m1": <<<<<<< HEAD')
    with pytest.raises(SystemExit, match=r"papers_rows.json: not a paper-row record file \(JSONDecodeError"):
        rp.all_results()
    rp.ROWS.write_text('{"rows": []}')
    with pytest.raises(SystemExit, match="'rows' is not an object"):
        rp.load_row_records()


def test_one_training_row_at_a_time(rp):
    with rp._Lock():
        with pytest.raises(SystemExit, match="another reproduce_papers.py run holds"):
            with rp._Lock():
                pass


def test_unfinished_row_needs_resume(rp, monkeypatch):
    (rp.OUT / "cnn_m1" / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr(sys, "argv", ["reproduce_papers.py", "--only", "cnn_m1"])
    with pytest.raises(SystemExit, match="pass --resume"):
        rp.main()


def test_row_references_do_not_chain(rp):
    # _ours follows a "row:KEY" leak-free cell into KEY's own cell: a reference to another reference
    # (or to itself) would recurse without end when the table is written.
    for key, row in rp.RUNS.items():
        if row.leak_free and row.leak_free.startswith("row:"):
            target = row.leak_free[4:]
            assert target in rp.RUNS and target != key, key
            assert not (rp.RUNS[target].leak_free or "").startswith("row:"), key


DEDUP_RECIPE = tiny_recipe("""
name = "dedup_tiny"
[data.protocols.holdout]
label = "train less a 20% holdout / test"
train = { holdout = { fraction = 0.2 } }
val = { holdout = { fraction = 0.2 } }
[model]
widths = [8]
[train]
epochs = 1
[augment]
hflip = false
[report]
tsne_samples = 0
""")


def test_dedup_eval_drops_faces_the_model_trained_on(rp, tmp_path):
    # Every training face is stored twice (as FER2013 repeats faces), and 5 test faces copy a training face.
    # test: minus copies of any training face; val (the ResNet paper's holdout of Training): minus copies of the
    # training part only, so a face whose twin is also in the holdout stays.
    import cv2
    import numpy as np

    from fer_edge.data import load_dataset, select_role
    from fer_edge.labels import FER7
    from fer_edge.training.recipes import load_recipe
    from fer_edge.training.trainer import train

    from inthewild_fixtures import faces

    pool = faces(120, seed=3)
    _, first = np.unique(pool.reshape(len(pool), -1), axis=0, return_index=True)
    pool = pool[np.sort(first)][:105]  # distinct faces: 70 to train (twice each), 35 to test
    root = tmp_path / "faces"
    for i, face in enumerate(pool):
        names = [("train", f"{i:04d}a"), ("train", f"{i:04d}b")] if i < 70 else [("test", f"{i:04d}")]
        for split, name in names:
            (root / split / FER7[i % 7]).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / FER7[i % 7] / f"{name}.png"), face)
    for j in range(5):  # test faces that are copies of training faces
        cv2.imwrite(str(root / "test" / FER7[j % 7] / f"copy{j}.png"), pool[j])
    (tmp_path / "r.toml").write_text(DEDUP_RECIPE)
    run = tmp_path / "run"
    train(load_recipe(tmp_path / "r.toml"), root, run, log=lambda s: None)
    assert not (run / "plots" / "tsne_test.png").exists()  # tsne_samples = 0: no t-SNE

    test = rp.dedup_eval(run, "test")
    assert (test["removed"], test["n"]) == (5, 35)
    d = json.loads((run / "manifest.json").read_text())["provenance"]["data"]
    val_names = [Path(str(s)).stem for s in select_role(load_dataset(root), d, "val").sources]
    twins_in_val = sum(n[:-1] + ("b" if n.endswith("a") else "a") in val_names for n in val_names)
    val = rp.dedup_eval(run, "val")
    assert val["removed"] == len(val_names) - twins_in_val > 0
    assert val["n"] == twins_in_val


def test_the_command_names_the_precision_a_result_was_trained_in(rp):
    # A bfloat16 row trained in float32 (a CPU without native bfloat16) is reproduced by a command that says so;
    # a result in the row's own precision needs no flag.
    assert rp.row_precision("cnn_m3_k2_lr003") == "mixed_bfloat16"
    assert rp.command("cnn_m3_k2_lr003", "float32").endswith("--only cnn_m3_k2_lr003 --resume --precision float32")
    assert rp.command("cnn_m3_k2_lr003", "mixed_bfloat16").endswith("--only cnn_m3_k2_lr003 --resume")
    assert rp.command("jaffe_loso", "float32").endswith("--only jaffe_loso --resume")  # float32 is the row's own
    assert rp.command("jaffe_loso").endswith("--resume")


def test_the_jaffe_deviation_note_reads_the_batchnorm_rows(rp):
    def done(acc, train_acc, val_acc):
        return {"status": "done", "summary": {"test_accuracy": acc}, "cpu": "AMD EPYC", "precision": "float32",
                "last_epoch": {"accuracy": train_acc, "val_accuracy": val_acc}}

    results = {"jaffe_dev_norm_f32": done(0.98, 0.97, 0.985), "jaffe_dev_bn": done(0.58, 0.99, 0.6),
               "jaffe_dev_paper_bn": {"status": "partial"}, "jaffe_dev_paper": {"status": "failed"}}
    note = rp._jaffe_dev_note(results)
    assert "inference mode at lr 1e-4 (the control) 98.00%" in note and "at lr 1e-4 58.00%" in note
    assert "at the paper's lr 1e-3 not finished (AMD EPYC, float32)" in note
    assert "lr 1e-3 scores failed with raw input" in note and "98.90%" not in note  # nothing from elsewhere
    assert "jaffe_dev_norm_f32 97.00% vs 98.50%; jaffe_dev_bn 99.00% vs 60.00%." in note
    assert "The likely cause, not measured here" in note
    # no fit on the training copies, or no gap: no cause is offered
    for train_acc, val_acc in ((0.5, 0.25), (0.99, 0.95)):
        results["jaffe_dev_bn"] = done(0.58, train_acc, val_acc)
        assert "likely cause" not in rp._jaffe_dev_note(results)
    assert "Last epoch" not in rp._jaffe_dev_note({})  # nothing recorded, nothing printed


def test_the_precision_note_lists_table_1s_grid_in_float32_only(rp):
    def done(acc, precision):
        return {"status": "done", "summary": {"test_accuracy": acc}, "precision": precision}

    results = {"cnn_m3_k3_lr003": done(0.75, "mixed_bfloat16"), "cnn_m3_k3_lr003_f32": done(0.72, "float32"),
               "cnn_m3_k2_lr003": done(0.70, "float32"), "cnn_m3_k3_lr001": done(0.78, "float32"),
               "cnn_m3_k2_lr001": done(0.71, "float32")}
    note = rp._precision_note(results)
    assert "+3.00 points" in note
    assert ("Table 1's grid in float32 alone (compare its cells with each other): lr 0.003, 3x3 72.00% "
            "(cnn_m3_k3_lr003_f32), lr 0.003, 2x2 70.00% (cnn_m3_k2_lr003), lr 0.001, 3x3 78.00% (cnn_m3_k3_lr001), "
            "lr 0.001, 2x2 71.00% (cnn_m3_k2_lr001).") in note
    results["cnn_m3_k2_lr001"] = done(0.71, "mixed_bfloat16")  # a cell with no float32 run: no grid is claimed
    assert "grid" not in rp._precision_note(results)
