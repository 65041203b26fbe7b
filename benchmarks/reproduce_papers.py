"""Reproduce the seed papers' recipes at the papers' own budgets, one row at a time.

Every row of RUNS is one training run with a fixed budget (the paper's, or a reduced one with the
reason stated), its run folder runs/papers/KEY, and one command. Rows run one at a time, in the
background, across sessions (--resume continues an interrupted run from its last epoch):

    mkdir -p runs/papers
    nohup .venv/bin/python benchmarks/reproduce_papers.py --only KEY --resume > runs/papers/KEY.log 2>&1 &
    python benchmarks/reproduce_papers.py --list            # rows, budgets and commands
    python benchmarks/reproduce_papers.py --table-only      # rewrite papers.md from runs/papers/ (no training)
    python benchmarks/reproduce_papers.py --smoke /tmp/papers_smoke --only KEY [--limit 64]
                                                            # 1 epoch on a few images: proves a row builds

The table (benchmarks/results/papers.md) is written from the run folders: a finished row shows
its numbers, an interrupted one its last epoch, a failed one its error; rows not yet run at the
paper's budget keep the number measured earlier at a reduced budget in a labelled column
(benchmarks/results/papers_earlier.json). Run folders stay on the machine that trained them, so
each finished or failed row's numbers are also recorded in benchmarks/results/papers_rows.json
(committed): another machine writes the same table from it and skips those rows (--retrain trains
one again). A leave-one-subject-out row trains one run folder per held-out subject
(runs/papers/KEY/loso-S) and records each fold as it ends, so it can finish over several machines;
it is pooled once every subject's fold is recorded.

Leak-free protocols: JAFFE -> leave-one-subject-out (the paper's random split puts copies of
the same image and person in train and test). FER2013 -> the same model scored on
PrivateTest minus the images that are pixel-identical to a Training image (FER2013 has 557
duplicate groups spanning splits).
"""

from __future__ import annotations

import argparse
import copy
import csv
import fcntl
import hashlib
import json
import os
import shutil
import statistics
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_edge import paths  # noqa: E402
from fer_edge.atomic import atomic_file, write_json  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.training.recipes import PRECISIONS, training_digest  # noqa: E402

OUT = ROOT / "runs" / "papers"
RESULTS = ROOT / "benchmarks" / "results"
TABLE = RESULTS / "papers.md"
EARLIER = RESULTS / "papers_earlier.json"
ROWS = RESULTS / "papers_rows.json"  # the finished and failed rows' records, committed
FER = "fer2013/fer2013.csv.gz"
BF16 = {"precision": "mixed_bfloat16"}  # the edge speed-up (issue 13): float32 weights and artifacts
# MobileNetV2 trains slower in bfloat16 on this CPU (edge_study.md's throughput table: 0.66x at 64 px; single-pass
# probes 0.64x at 48 px, 0.85x at 96, 0.95x at 224), so its rows keep the papers' float32; the jaffe_dev_* checks
# ran in bfloat16 before that was measured and are kept as run (they compare lr and scaling among themselves).
NOT_YET = "not yet run at the paper's budget"


@dataclass(frozen=True)
class Row:
    title: str
    recipe: str  # a built-in recipe name
    data: str  # under the data root (../shared/data)
    epochs: int  # the most epochs; early stopping (the recipe's or `edits`) may end a run sooner
    budget: str
    mark: str  # "paper's", "reduced" or "not runnable here"
    why: str
    claim: str
    protocol: str | None = None  # a protocol of the recipe; None: the recipe's default
    changes: dict[str, Any] = field(default_factory=dict)  # keys of that protocol's table (copies, folds)
    edits: dict[str, dict[str, Any]] = field(default_factory=dict)  # recipe tables' keys, e.g. {"train": {"lr": 0.001}}
    leak_free: str | None = None  # "dedup": same model, PrivateTest minus train duplicates; "loso": this row is; "row:KEY"
    claim_test: tuple[float, int] | None = None  # (paper's accuracy, its test set size): the interval that test allows
    paper_f1: dict[str, float] | None = None
    holdout_val: bool = False  # the paper scores its own 80/20 holdout of Training: show our val accuracy there too
    # leave-one-subject-out rows: one run folder per held-out subject (runs/papers/KEY/loso-S), each recorded in
    # papers_rows.json as it ends, so a row of many hours can finish over several machines
    loso_subjects: tuple[str, ...] = ()
    # epoch caps a LOSO row ran at before `epochs` was raised. At a constant lr in one stage a fold's epochs do not
    # depend on the cap: a fold that early stopping ended below an earlier cap counts as it is, one that ran to it
    # is trained again at the raised cap.
    earlier_caps: tuple[int, ...] = ()


_CNN = "Deep Learning: Facial Emotion Detection, 4 classes"
_CNN_SPLIT = ("the split: train = all Training rows of the 4 classes (20,181), validation = their PublicTest rows "
              "(2,570), test = their PrivateTest rows (2,515), against the paper's 15,109 / 4,977 / 128")
_CNN_STOP = "35 epochs with early stopping (its patience is not given: ours 6 on PublicTest accuracy)"
_CNN_WHY = (f"{_CNN_STOP}; ours: filter counts and batch size (not in the paper), mixed_bfloat16 where the CPU has it "
            f"(see the wall-time column), and {_CNN_SPLIT}")
_F1 = {"happy": 0.88, "sad": 0.59, "neutral": 0.72, "surprise": 0.91}
_JAFFE = "Transfer Learning for FER on Small Datasets (MobileNetV2, JAFFE)"
_JAFFE_AUG = "augmentation strengths ours (rotation 15, stretch/zoom/shift 0.1: the paper names the kinds, not the amounts)"
_JAFFE_DEV = {"protocol": "paper", "changes": {"copies": 30}, "epochs": 3,
              "budget": "paper split, 30 copies/image, 3 epochs, 224 px",
              "mark": "reduced", "claim": "-",
              "why": "a deviation check (the same short budget for each lr x input-scaling x BatchNorm setting), not a result; "
                     "scored on the paper's split, which LEAKS (copies of one image on both sides): it compares "
                     "the settings, it does not estimate accuracy on new people"}
_JAFFE_224 = {"input": {"size": [224, 224]}, "train": dict(BF16)}  # the jaffe_dev_* checks, as they ran
_JAFFE_224_F32 = {"input": {"size": [224, 224]}}
# BatchNorm trained as keras.applications fine-tuning trains it (batch statistics, its momentum 0.999): the shared
# weights have BN folded, so it is first given real statistics of the training images (bn_recalibrate: the model's
# output unchanged); without that, batch statistics would rescale every pretrained layer from the first step
_BN_TRAINED = {"freeze_bn": False, "bn_recalibrate": True}
_EFF_STOP = {"train": {"early_stopping_patience": 25}}
JAFFE_SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")  # the trainer checks them against the data

RUNS: dict[str, Row] = {
    # --- Custom CNN (Model 3 is the paper's Table 1 grid: lr x kernel)
    "cnn_m3_k3_lr003": Row(f"{_CNN}: Model 3, lr 0.003, 3x3", "custom_cnn_fer4", FER, 35,
                           "35 epochs, early stopping", "paper's", _CNN_WHY, "78.9% (Table 1)",
                           edits={"train": dict(BF16)}, leak_free="dedup", claim_test=(0.789, 128), paper_f1=_F1),
    "cnn_m3_k3_lr003_f32": Row("  precision check: the same Model 3, lr 0.003, 3x3 in float32 (cnn_m3_k3_lr003 "
                               "trained in mixed_bfloat16)", "custom_cnn_fer4", FER, 35,
                               "35 epochs, early stopping", "paper's",
                               f"{_CNN_STOP}; ours: filter counts and batch size (not in the paper), and {_CNN_SPLIT}; "
                               "float32 as the paper, on any CPU: measures what mixed_bfloat16 changes in accuracy",
                               "78.9% (Table 1)", edits={"train": {"precision": "float32"}}, leak_free="dedup",
                               claim_test=(0.789, 128), paper_f1=_F1),
    "cnn_m3_k2_lr003": Row(f"{_CNN}: Model 3, lr 0.003, 2x2", "custom_cnn_fer4_k2", FER, 35,
                           "35 epochs, early stopping", "paper's", _CNN_WHY, "75% (Table 1)",
                           edits={"train": dict(BF16)}, leak_free="dedup", claim_test=(0.75, 128)),
    "cnn_m3_k3_lr001": Row(f"{_CNN}: Model 3, lr 0.001, 3x3", "custom_cnn_fer4", FER, 35,
                           "35 epochs, early stopping", "paper's", _CNN_WHY, "77% (Table 1)",
                           edits={"train": {**BF16, "lr": 0.001}}, leak_free="dedup", claim_test=(0.77, 128)),
    "cnn_m3_k2_lr001": Row(f"{_CNN}: Model 3, lr 0.001, 2x2", "custom_cnn_fer4_k2", FER, 35,
                           "35 epochs, early stopping", "paper's", _CNN_WHY, "77.3% (Table 1)",
                           edits={"train": {**BF16, "lr": 0.001}}, leak_free="dedup", claim_test=(0.773, 128)),
    "cnn_m1": Row(f"{_CNN}: Model 1 (3 conv + 2 dense; paper 605,060 params, ours 610,004), lr 0.003",
                  "custom_cnn_fer4_model1", FER, 35, "35 epochs, early stopping", "paper's",
                  _CNN_WHY + "; Table 1's lr/kernel grid is Model 3's only", "about 67.19%",
                  edits={"train": dict(BF16)}, leak_free="dedup", claim_test=(0.6719, 128)),
    "cnn_m2": Row(f"{_CNN}: Model 2 (4 conv + 3 dense; paper 830,928 params, ours 857,220), lr 0.003",
                  "custom_cnn_fer4_model2", FER, 35, "35 epochs, early stopping", "paper's",
                  _CNN_WHY + "; Table 1's lr/kernel grid is Model 3's only", "about 54%",
                  edits={"train": dict(BF16)}, leak_free="dedup", claim_test=(0.54, 128)),
    # --- ResNet50 + MLP head
    "resnet50": Row("ResNet50 + MLP on FER2013 (FER based on ResNet and transfer learning)", "resnet50_fer2013", FER,
                    50, "50 epochs, batch 64, 80/20 split of Training", "not runnable here",
                    "ResNet50 ImageNet weights need internet (the row fails at once with that error)",
                    "85.71% (implausible)", edits={"train": dict(BF16)}, leak_free="dedup",
                        holdout_val=True),
    "resnet50_sub": Row("  same head, SUBSTITUTED backbone MobileNetV2 1.0 ImageNet, 48 px", "resnet50_fer2013_substitute",
                        FER, 50, "50 epochs, batch 64, shift 0.1 + rotation 15, 80/20 split of Training, 48 px",
                        "paper's", "paper's schedule, split and augmentation; backbone substituted (offline); "
                        "float32", "85.71% (implausible)", leak_free="dedup",
                        holdout_val=True),
    "resnet50_sub_96": Row("  same head and backbone at 96 px (does 48 px starve the ImageNet backbone?)",
                           "resnet50_fer2013_substitute", FER, 50, "as resnet50_sub, input 96 px", "paper's",
                           "paper's schedule at 96 px instead of 48 (a measurement, not the paper's input); "
                           "float32", "85.71% (implausible)",
                           edits={"input": {"size": [96, 96]}}, leak_free="dedup",
                           holdout_val=True),
    # --- EfficientNet, frozen backbone, head on cached features
    "efficientnet": Row("EfficientNet frozen on FER2013 (EfficientNet for human FER); offline: Lite0 stand-in for B0",
                        "efficientnet_fer2013", FER, 400,
                        "SGD 0.9, lr 0.001 x0.9 every 10 epochs, until PublicTest accuracy is flat "
                        "(patience 25, cap 400)", "paper's",
                        "paper's schedule; its epoch count is not given, so the run stops when the validation "
                        "curve is flat; Lite0 (offline) instead of B0; CK+48 cross test; t-SNE plot",
                        "71.02%; RAF-DB->CK+ 78.59%", edits=_EFF_STOP, leak_free="dedup"),
    "efficientnet_b0": Row("  EfficientNet-B0 frozen, ImageNet weights (online only)", "efficientnet_b0_fer2013", FER,
                           400, "as efficientnet", "not runnable here", "B0 ImageNet weights need internet",
                           "71.02%", edits=_EFF_STOP, leak_free="dedup"),
    "efficientnet_rafdb": Row("  cross-dataset: trained on RAF-DB, tested on CK+48 and FER2013", "efficientnet_rafdb_cross",
                              "rafdb", 400, "as efficientnet", "not runnable here", "RAF-DB is not in ../shared/data",
                              "RAF-DB->CK+ 78.59%, RAF-DB->FER2013 56.10%", edits=_EFF_STOP),
    # --- JAFFE MobileNetV2
    "jaffe_paper": Row(_JAFFE + ": paper protocol (LEAKS)", "jaffe_mobilenetv2", "jaffe", 5,
                       "373 copies/image (213 -> 79,449, the paper's size), random 90/10 split of the copies (the "
                       "90 split 90/10 again for validation: 81/9/10), 224 px, at most 5 epochs, early stopping "
                       "patience 2", "reduced",
                       "paper's augmentation size and input; epochs: the paper's count is not in the text available "
                       "here; one epoch of the 64,354 training copies takes ~33 min at the ~33 img/s the jaffe_dev rows "
                       "measured at 224 px (AVX512-BF16 Intel) and took 91 min here (its epoch 1: 5,473 s at 12 img/s, "
                       "float32, AVX2 AMD EPYC), so at most 5 (~2.7-7.5 h, resumed across sessions "
                       "from a checkpoint written every 10 minutes), and "
                       "the leaky split saturates early (jaffe_dev_norm, this row's lr and raw input in bfloat16: "
                       "97.97% after 3 epochs of 30 copies); it ran 2: validation accuracy reached 100% in epoch 2, "
                       "which no later epoch can beat, so the training stopped there (patience would have run epochs "
                       "3-4, ~3 h, and kept epoch 2's weights all the same); ours: lr 1e-4 and BatchNorm in inference mode (the jaffe_dev_* "
                       "rows and the notes: the paper's 1e-3 fails in either BatchNorm mode, and trained BatchNorm "
                       "scores far lower at 1e-4 too; the paper's raw 0..255 input is kept), "
                       + _JAFFE_AUG + "; float32 as the paper (bfloat16 does not speed MobileNetV2 up here)",
                       "85.54%", protocol="paper", changes={"copies": 373},
                       edits={**_JAFFE_224_F32, "train": {"early_stopping_patience": 2}}, leak_free="row:jaffe_loso"),
    "jaffe_loso": Row(_JAFFE + ": leave-one-subject-out", "jaffe_mobilenetv2", "jaffe", 20,
                      "10 folds, 20 copies/image of the training fold, 224 px, at most 20 epochs per fold, "
                      "early stopping patience 3 on the next subject (validation never trained on)", "reduced",
                      "20 copies instead of 373 per image: 10 folds at the paper's size would take days on 2 cores; "
                      "early stopping on a held-out person decides the epochs below the cap of 20 (raised from 10 "
                      "when fold UY's best epoch was its 10th: the folds early stopping ended under 10 are kept, "
                      "at a constant lr they train alike under either cap: UY trained again repeated its 10 epochs' "
                      "losses exactly, then early stopping ended it at 13, its best epoch still the 10th); "
                      + _JAFFE_AUG,
                      "85.54% (paper protocol)", protocol="loso", changes={"copies": 20},
                      edits={**_JAFFE_224_F32, "train": {"early_stopping_patience": 3}}, leak_free="loso",
                      loso_subjects=JAFFE_SUBJECTS, earlier_caps=(10,)),
    "jaffe_dev_paper": Row("  deviation check: the paper's settings (Adam lr 1e-3, raw 0..255 input)", "jaffe_mobilenetv2",
                           "jaffe", edits={**_JAFFE_224, "train": {**BF16, "lr": 0.001}, "model": {"normalize": "none"}},
                           **_JAFFE_DEV),
    "jaffe_dev_lr": Row("  deviation check: lr 1e-3 with [-1, 1] input", "jaffe_mobilenetv2", "jaffe",
                        edits={**_JAFFE_224, "train": {**BF16, "lr": 0.001}, "model": {"normalize": "tanh"}},
                        **_JAFFE_DEV),
    "jaffe_dev_norm": Row("  deviation check: lr 1e-4 with raw 0..255 input", "jaffe_mobilenetv2", "jaffe",
                          edits={**_JAFFE_224, "model": {"normalize": "none"}}, **_JAFFE_DEV),
    "jaffe_dev_norm_f32": Row("  deviation check: lr 1e-4 with raw 0..255 input, float32 (the control of the two "
                              "BatchNorm checks below)", "jaffe_mobilenetv2", "jaffe",
                              edits={**_JAFFE_224_F32, "model": {"normalize": "none"}}, **_JAFFE_DEV),
    "jaffe_dev_bn": Row("  deviation check: lr 1e-4 with raw 0..255 input, BatchNorm trained (recalibrated, batch "
                        "statistics, momentum 0.999 as keras.applications), float32", "jaffe_mobilenetv2", "jaffe",
                        edits={**_JAFFE_224_F32, "model": {"normalize": "none", **_BN_TRAINED}}, **_JAFFE_DEV),
    "jaffe_dev_paper_bn": Row("  deviation check: the paper's settings with BatchNorm trained (Adam lr 1e-3, raw "
                              "0..255 input, BatchNorm as jaffe_dev_bn), float32", "jaffe_mobilenetv2", "jaffe",
                              edits={**_JAFFE_224_F32, "train": {"lr": 0.001},
                                     "model": {"normalize": "none", **_BN_TRAINED}}, **_JAFFE_DEV),
    "jaffe_dev_ours": Row("  deviation check: lr 1e-4 with [-1, 1] input (the recipe's scaling before these checks)",
                          "jaffe_mobilenetv2", "jaffe", edits={**_JAFFE_224, "model": {"normalize": "tanh"}},
                          **_JAFFE_DEV),
}


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def row_precision(key: str) -> str:
    """The precision the row defines (a recipe without one trains in float32)."""
    return build_recipe(key).data.get("train", {}).get("precision", "float32")


def command(key: str, precision: str | None = None) -> str:
    """The command that trains the row; `precision`: the one a result was trained in, named when the row's differs."""
    flag = f" --precision {precision}" if precision in PRECISIONS and precision != row_precision(key) else ""
    return f"python benchmarks/reproduce_papers.py --only {key} --resume{flag}"


# ---------------------------------------------------------------- building and running a row


def build_recipe(key: str, smoke: bool = False, precision: str | None = None, subject: str | None = None,
                 epochs: int | None = None):
    """The row's recipe: the built-in file plus the row's edits, schema-checked, with its epoch budget
    (and `precision`, if given, in place of the row's; `subject`: a LOSO row's fold for that subject alone;
    `epochs`: another cap than the row's, e.g. one of its earlier_caps)."""
    from fer_edge.training.recipe_schema import validate_recipe
    from fer_edge.training.recipes import Recipe, load_recipe, with_overrides

    row = RUNS[key]
    base = load_recipe(row.recipe)
    data = copy.deepcopy(base.data)
    for table, values in row.edits.items():
        data.setdefault(table, {}).update(copy.deepcopy(values))
    pname = row.protocol or data["data"]["protocol"]
    proto = data["data"]["protocols"][pname]
    proto.update(row.changes)
    if subject is not None:
        proto["folds"] = [subject]  # a fold trains alike whichever other folds run (its digest leaves folds out)
    if smoke:  # seconds, not hours: two copies per image, one LOSO fold
        if proto.get("copies"):
            proto["copies"] = min(int(proto["copies"]), 2)
        if proto.get("type") == "loso" and subject is None:
            proto["folds"] = 1
    if row.claim != "-":  # the row's own claim (e.g. Table 1's lr 0.001 cell), not the recipe file's default one
        data["claim"] = row.claim
    data.setdefault("report", {}).setdefault("notes", []).append(
        f"benchmarks/reproduce_papers.py row {key}: edits {json.dumps(row.edits)}, protocol {pname} {json.dumps(row.changes)}")
    validate_recipe(data, f"benchmarks/reproduce_papers.py row {key} (recipe {row.recipe})")
    recipe = Recipe(name=base.name, data=data, source=base.source, sha256=base.sha256)
    if row.earlier_caps:
        _check_cap_free(key, recipe)
    return with_overrides(recipe, epochs=1 if smoke else epochs or row.epochs, protocol=row.protocol,
                          precision=precision)


def _check_cap_free(key: str, recipe) -> None:
    """A row with earlier_caps keeps folds trained under a lower cap: its epochs must not depend on the cap
    (a constant lr in one stage; a cosine or step schedule spreads over the epochs it is given)."""
    train = recipe.data["train"]
    schedules = {s.get("schedule", train.get("schedule", "constant")) for s in recipe.stages}
    if len(recipe.stages) > 1 or schedules != {"constant"}:
        raise FerEdgeError(f"row {key}: earlier_caps needs a constant lr in one stage, not {len(recipe.stages)} "
                           f"stage(s) with schedule {', '.join(sorted(schedules))}")


def run_one(key: str, resume: bool, out_root: Path | None = None, limit: int | None = None, smoke: bool = False,
            precision: str | None = None, after_fold=None, retrain: bool = False) -> dict:
    """Train one row (a LOSO row: each fold not yet finished here or recorded, calling after_fold() after each;
    with `retrain`, every fold again)."""
    from fer_edge.doctor.probes import cpuinfo
    from fer_edge.training.trainer import train

    row = RUNS[key]
    out = (out_root or OUT) / key
    t0 = time.time()
    try:
        data = paths.data_path(*row.data.split("/"))
        if row.loso_subjects:
            summary = _run_folds(key, out, data, resume, limit, smoke, precision, after_fold, retrain)
        elif (out / "manifest.json").is_file() and not smoke:  # finished earlier: re-read, do not retrain
            summary = json.loads((out / "metrics.json").read_text())["summary"]
        else:
            summary = train(build_recipe(key, smoke, precision), data, out, resume=resume, overwrite=smoke, log=_log,
                            limit=limit)
    except FerEdgeError as exc:
        return {"status": "failed", "reason": str(exc), "seconds": round(time.time() - t0, 1)}
    res = {"status": "done", "summary": summary, "seconds": round(time.time() - t0, 1), "out": str(out),
           "cpu": cpuinfo().get("model")}  # wall times are this CPU's
    if row.leak_free == "dedup":
        res["dedup"] = _safe_dedup(out)
    if row.holdout_val:
        res["dedup_val"] = _safe_dedup(out, "val")
    return res


def _run_folds(key: str, out: Path, data: Path, resume: bool, limit: int | None, smoke: bool, precision: str | None,
               after_fold, retrain: bool) -> dict:
    """A LOSO row's folds not yet finished (here, or in papers_rows.json), one run folder each. All folds of a
    row share one precision and the row's current settings: the pooled number mixes nothing."""
    from fer_edge.training.trainer import train

    row = RUNS[key]
    want = precision or row_precision(key)
    done: dict[str, dict[str, Any]] = {}
    capped: dict[str, int] = {}
    if not (smoke or retrain):
        state = _loso_record(key, out.parent, load_row_records().get(key))  # the table's own reading of the folds
        if state["stale_here"]:
            subject = state["stale_here"][0]
            raise FerEdgeError(f"{out / f'loso-{subject}'}: a fold trained with other settings than row {key} "
                               "defines now; delete it, or --retrain the row")
        done, capped = state["folds"], state["capped"]
        other = sorted({f["precision"] for f in done.values()} - {want})
        if other:
            raise FerEdgeError(f"row {key}: {len(done)} folds are finished in {', '.join(other)}; pooled folds share "
                               f"one precision: run it with --precision {other[0]}, or --retrain the row in {want}")
    summary: dict[str, Any] = {}
    for subject in row.loso_subjects[:1] if smoke else row.loso_subjects:
        if subject in done:
            continue
        _log(f"{key}: fold {subject}")
        fold_out = out / f"loso-{subject}"
        if subject in capped and (fold_out / "manifest.json").is_file():
            # a finished run folder does not resume: the fold trains again from its first epoch; the old folder
            # (its curve up to the earlier cap) is kept beside, moved in one rename
            _log(f"{key}: fold {_capped_again(subject, capped[subject], row.epochs)}")
            aside = out / f"loso-{subject}.cap{capped[subject]}"
            shutil.rmtree(aside, ignore_errors=True)
            fold_out.rename(aside)
        summary = train(build_recipe(key, smoke, precision, subject), data, fold_out, resume=resume,
                        overwrite=smoke or retrain, log=_log, limit=limit)
        if after_fold:
            try:
                after_fold()
            except Exception:  # noqa: BLE001 - recording is retried after the next fold and at the end
                traceback.print_exc()
    return summary if smoke else {"folds": len(row.loso_subjects)}


def _capped_again(subject: str, cap: int, raised: int) -> str:
    return f"{subject} ran to the earlier cap of {cap}: to train again at {raised}"


def _safe_dedup(run: Path, role: str = "test") -> dict:
    """dedup_eval, or the reason it failed (the row stays finished; --table-only tries again)."""
    try:
        return dedup_eval(run, role)
    except Exception as exc:  # noqa: BLE001 - any failure here is reported in the table's cell
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def dedup_eval(run: Path, role: str = "test") -> dict:
    """Accuracy without the images pixel-identical to one the model trained on.

    role "test": PrivateTest minus copies of any Training image (the whole split: the conservative rule for
    every protocol). role "val": the validation part (e.g. the paper's 20% holdout of Training) minus copies
    of the training part itself."""
    import numpy as np

    from fer_edge.data import provenance_dataset, select_role
    from fer_edge.evaluation import evaluate
    from fer_edge.runtime import load as load_classifier

    clf = load_classifier(run)
    d = clf.manifest.provenance["data"]
    ds = provenance_dataset(d, run)
    seen = ds.split("train").images if role == "test" else select_role(ds, d, "train").images
    train_hashes = {hashlib.sha1(img.tobytes()).digest() for img in seen}
    part = select_role(ds, d, role)
    keep = np.array([hashlib.sha1(img.tobytes()).digest() not in train_hashes for img in part.images])
    m = evaluate(clf, part.subset(keep))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"], "removed": int((~keep).sum())}


# ---------------------------------------------------------------- reading run folders


def wilson_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy of correct/n (scipy's binomtest)."""
    from scipy.stats import binomtest

    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _histories(folder: Path) -> list[dict[str, float]]:
    """Every epoch row of a run (all folds of a LOSO run), finished or still in its checkpoint state."""
    parts = sorted(p for p in (folder / "folds").iterdir() if p.is_dir()) if (folder / "folds").is_dir() else [folder]
    rows: list[dict[str, float]] = []
    for part in parts:
        state = part / "checkpoints" / "state.json"
        if (part / "history.csv").is_file() and (part / "manifest.json").is_file():
            with open(part / "history.csv", newline="") as fh:
                rows += [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(fh)]
        elif state.is_file():
            rows += json.loads(state.read_text()).get("history", [])
    return rows


def _progress(folder: Path) -> str | None:
    """'epoch 12/35, best val 70.1%' for an unfinished run (LOSO: finished folds too), None if nothing ran."""
    if (folder / "folds").is_dir():
        folds = sorted(p for p in (folder / "folds").iterdir() if p.is_dir())
        done = sum((p / "manifest.json").is_file() for p in folds)
        live = [p for p in folds if not (p / "manifest.json").is_file() and (p / "checkpoints" / "state.json").is_file()]
        text = f"{done} folds finished"
        if live:
            s = json.loads((live[-1] / "checkpoints" / "state.json").read_text())
            text += f"; {live[-1].name} at {_epochs_done(s)}"
        return text
    state = folder / "checkpoints" / "state.json"
    if state.is_file():
        s = json.loads(state.read_text())
        best = s.get("best_val_accuracy", -1)  # -1 until an epoch has finished
        return _epochs_done(s) + (f", best val {best:.2%}" if best >= 0 else "")
    return None


def _epochs_done(state: dict[str, Any]) -> str:
    """'epoch 2/5' of a checkpoint state, '... and 300 batches of epoch 3' after a mid-epoch checkpoint."""
    part = f" and {state['partial']['batches']} batches of epoch {state['epoch'] + 1}" if state.get("partial") else ""
    return f"epoch {state['epoch']}/{state['total']}{part}"


def _folder_record(key: str, out_root: Path, evaluate: bool) -> dict[str, Any]:
    """One row's record, read from its run folder and result file: what the table needs, nothing more.

    A finished FER2013 row without its leak-free number gets it here (a model evaluation, seconds)."""
    row = RUNS[key]
    folder = out_root / key
    res_file = out_root / f"{key}.result.json"
    res = json.loads(res_file.read_text()) if res_file.is_file() else {}
    out: dict[str, Any] = {"status": "not run"}
    if (folder / "manifest.json").is_file():
        metrics = json.loads((folder / "metrics.json").read_text())
        wanted = {"dedup": "test"} if row.leak_free == "dedup" else {}
        if row.holdout_val:
            wanted["dedup_val"] = "val"
        missing = {k: role for k, role in wanted.items() if not res.get(k) or "error" in res[k]}
        if missing and evaluate:
            res = {**res, "status": "done", "summary": metrics["summary"], "out": str(folder),
                   **{k: _safe_dedup(folder, role) for k, role in missing.items()}}
            write_json(res_file, res)
        out.update(status="done", **_metrics_record(metrics), dedup=res.get("dedup"), dedup_val=res.get("dedup_val"),
                   cpu=res.get("cpu"))
    elif res.get("status") == "failed":
        out.update(status="failed", reason=res.get("reason", "?"))
    if out["status"] != "done" and folder.is_dir():
        prog = _progress(folder)
        if prog:
            out.update(status="failed" if out["status"] == "failed" else "partial", progress=prog)
    hist = _histories(folder) if folder.is_dir() else []
    secs = [h["seconds"] for h in hist if "seconds" in h]
    rates = [h["images_per_second"] for h in hist if "images_per_second" in h]
    out["train_hours"] = sum(secs) / 3600 if secs else None
    out["images_per_second"] = statistics.median(rates) if rates else None
    out["epochs_run"] = len(hist)
    if out["status"] == "done" and hist:  # under- or overfitting, for the notes: the last epoch's two accuracies
        out["last_epoch"] = {k: hist[-1][k] for k in ("accuracy", "val_accuracy") if k in hist[-1]}
    if out["status"] == "done":
        recipe_data = json.loads((folder / "manifest.json").read_text()).get("provenance", {}).get("recipe_data")
        out["digest"] = settings_digest(recipe_data) if recipe_data else None
    if out["status"] in ("done", "failed"):
        out["source"] = f"run folder runs/papers/{key}"
        out["here"] = True  # read from a run folder on this machine (not a committed record)
    return out


def _current_folds(key: str, folds: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The recorded folds of a LOSO row that trained the recipe the row defines now (fold_standing)."""
    return {subject: f for subject, f in folds.items() if fold_standing(key, f)[0] == "current"}


def _fold_record(folder: Path, subject: str) -> dict[str, Any]:
    """A finished fold's test confusion matrix and how it trained (its run folder: runs/papers/KEY/loso-S)."""
    from fer_edge.doctor.probes import cpuinfo

    metrics = json.loads((folder / "metrics.json").read_text())
    recipe_data = json.loads((folder / "manifest.json").read_text()).get("provenance", {}).get("recipe_data")
    test = metrics["test"]
    pf = metrics.get("per_fold", {}).get(f"loso-{subject}", {})
    hist = _histories(folder)
    rates = [h["images_per_second"] for h in hist if "images_per_second" in h]
    return {"confusion_matrix": test["confusion_matrix"], "labels": test["labels"], "accuracy": test["accuracy"],
            "n": test["n"], "epochs_run": pf.get("epochs_run"), "best_epoch": pf.get("best_epoch"),
            "train_seconds": sum(h.get("seconds", 0) for h in hist),
            "images_per_second": statistics.median(rates) if rates else None,
            "precision": metrics["summary"].get("precision"), "cpu": cpuinfo().get("model"),
            "digest": settings_digest(recipe_data) if recipe_data else None,
            "recorded": time.strftime("%Y-%m-%d", time.gmtime())}


def _correct(cm: list[list[int]]) -> int:
    """Correctly classified faces of a confusion matrix: its diagonal."""
    return sum(cm[i][i] for i in range(len(cm)))


def _fold_correct(fold: dict[str, Any]) -> int:
    return _correct(fold["confusion_matrix"])


def _ran_on(r: dict[str, Any]) -> str:
    """'AMD EPYC, float32': the CPU and precision a result was trained in, where recorded."""
    return ", ".join(x for x in (r.get("cpu"), r.get("precision")) if x)


def _loso_record(key: str, out_root: Path, stored: dict[str, Any] | None) -> dict[str, Any]:
    """A LOSO row from its fold folders here and the folds recorded before (possibly on other machines);
    done when every subject's fold is one or the other, pooled over all of them."""
    from fer_edge.metrics import pooled_metrics

    row = RUNS[key]
    folder = out_root / key
    stored_folds = (stored or {}).get("folds", {})
    old = _current_folds(key, stored_folds)
    folds: dict[str, dict[str, Any]] = {}
    here: list[str] = []
    stale_here: list[str] = []  # fold folders trained with other settings and no current record
    capped: dict[str, int] = {}  # folds (here or recorded) that an earlier cap ended: trained again at the row's
    live = None
    for subject in row.loso_subjects:
        f = folder / f"loso-{subject}"
        if (f / "manifest.json").is_file():
            folds[subject] = _fold_record(f, subject)
            standing, cap = fold_standing(key, folds[subject])
            if standing != "current":
                # trained with other settings: the recorded fold, if any, counts (training the row again says why)
                del folds[subject]
                if subject in old:
                    folds[subject] = old[subject]
                elif standing == "capped":
                    capped[subject] = cap
                else:
                    stale_here.append(subject)
                continue
            prev = old.get(subject, {})
            if {k: v for k, v in prev.items() if k != "recorded"} == {k: v for k, v in folds[subject].items()
                                                                      if k != "recorded"}:
                folds[subject]["recorded"] = prev["recorded"]  # recorded before: keep its date
            here.append(subject)
        elif subject in old:
            folds[subject] = old[subject]
        elif _progress(f / "folds" / f"loso-{subject}"):  # a one-fold LOSO run's own folder, unfinished
            live = live or f"{subject}: {_progress(f / 'folds' / f'loso-{subject}')}"
        elif subject in stored_folds:  # recorded elsewhere: is it a fold an earlier cap ended?
            standing, cap = fold_standing(key, stored_folds[subject])
            if standing == "capped":
                capped[subject] = cap
    res_file = out_root / f"{key}.result.json"
    res = json.loads(res_file.read_text()) if res_file.is_file() else {}
    secs = [f["train_seconds"] for f in folds.values() if f.get("train_seconds")]
    rates = [f["images_per_second"] for f in folds.values() if f.get("images_per_second")]
    out: dict[str, Any] = {"status": "not run", "folds": folds, "here": bool(here), "folds_here": here,
                           "stale_here": stale_here, "capped": capped,
                           "train_hours": sum(secs) / 3600 if secs else None,
                           "images_per_second": statistics.median(rates) if rates else None,
                           "epochs_run": sum(f.get("epochs_run") or 0 for f in folds.values()),
                           "source": (f"fold run folders runs/papers/{key}/loso-* ({len(here)} here, "
                                      f"{len(folds) - len(here)} from earlier records)")}
    precisions = sorted({f.get("precision") or "?" for f in folds.values()})
    if len(precisions) > 1:
        out.update(status="failed", reason=f"folds finished in different precisions ({', '.join(precisions)}): "
                                           "pooled folds share one; --retrain the row")
    elif len(folds) == len(row.loso_subjects):
        labels = next(iter(folds.values()))["labels"]
        pooled = pooled_metrics([f["confusion_matrix"] for f in folds.values()], labels)
        accs = [f["accuracy"] for f in folds.values()]
        out.update(test_correct=sum(map(_fold_correct, folds.values())), test_n=sum(f["n"] for f in folds.values()))
        out.update(status="done", summary={"test_accuracy": pooled["accuracy"], "test_macro_f1": pooled["macro_f1"],
                                           "fold_accuracy_mean": statistics.fmean(accs),
                                           "fold_accuracy_std": statistics.pstdev(accs)},
                   per_fold={f"loso-{s}": {"epochs_run": f.get("epochs_run"), "best_epoch": f.get("best_epoch")}
                             for s, f in folds.items()},
                   precision=precisions[0],
                   cpu=", ".join(sorted({f.get("cpu") or "?" for f in folds.values()})))
    elif folds or live:
        again = "".join(f"; {_capped_again(s, c, row.epochs)}" for s, c in capped.items())
        out.update(status="partial", progress=f"{len(folds)} of {len(row.loso_subjects)} folds finished "
                   f"({len(here)} here, {len(folds) - len(here)} recorded earlier)" + (f"; {live}" if live else "")
                   + again)
    elif res.get("status") == "failed":
        out.update(status="failed", reason=res.get("reason", "?"))
    return out


def _metrics_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a finished run's metrics.json that the table shows."""
    s = metrics["summary"]
    keep = ("test_accuracy", "test_macro_f1", "fold_accuracy_mean", "fold_accuracy_std")
    rec: dict[str, Any] = {"summary": {k: v for k, v in s.items()
                                       if k in keep or (k.startswith("cross_") and k.endswith("_accuracy"))}}
    rec["val_accuracy"] = (metrics.get("val") or {}).get("accuracy")
    rec["precision"] = s.get("precision")
    t = metrics.get("test") or {}
    if "confusion_matrix" in t:
        cm = t["confusion_matrix"]
        rec.update(test_correct=_correct(cm), test_n=t["n"],
                   per_class_f1={c: v["f1"] for c, v in t["per_class"].items()})
    if "per_fold" in metrics:
        rec["per_fold"] = {f: {k: v[k] for k in ("epochs_run", "best_epoch") if k in v}
                           for f, v in metrics["per_fold"].items()}
    return rec


def load_row_records() -> dict[str, dict[str, Any]]:
    """The finished and failed rows committed in papers_rows.json (run folders stay on the machine that ran them)."""
    if not ROWS.is_file():
        return {}
    try:
        rows = json.loads(ROWS.read_text())["rows"]
        if not isinstance(rows, dict):
            raise TypeError("'rows' is not an object")
        return rows
    except (ValueError, KeyError, TypeError) as exc:  # e.g. a merge conflict left in the file
        raise SystemExit(f"error: {ROWS}: not a paper-row record file ({type(exc).__name__}: {exc}); "
                         "restore it from git") from None


def save_row_records(results: dict[str, dict[str, Any]]) -> None:
    """Commit-able records of the rows whose run folder finished (or failed) here; other rows keep theirs.

    A failure never replaces a finished row's record (e.g. a --retrain or a resume refused for other options):
    the table shows the failure while its folder is here, the committed number stays."""
    stored = load_row_records()
    changed = False
    for key, rec in results.items():
        loso_progress = rec["status"] == "partial" and bool(rec.get("folds"))  # finished folds of an unfinished row
        if (rec["status"] not in ("done", "failed") and not loso_progress) or not rec.get("here"):
            continue
        if rec["status"] == "failed" and stored.get(key, {}).get("status") == "done":
            _log(f"{key}: failed here ({rec.get('reason', '?')[:200]}); its committed result is kept")
            continue
        mine = {k: v for k, v in rec.items()
                if k not in ("key", "here", "folds_here", "stale_here", "capped", "recorded", "progress")}
        old = {k: v for k, v in stored.get(key, {}).items() if k != "recorded"}
        if mine != old:
            stored[key] = {**mine, "recorded": time.strftime("%Y-%m-%d", time.gmtime())}
            changed = True
    if changed:
        write_json(ROWS, {
            "about": "One record per finished or failed row of benchmarks/reproduce_papers.py: the numbers papers.md "
                     "shows, the CPU and precision it trained in, and the digest of the recipe it trained "
                     "(fer_edge.training.recipes.training_digest). Written by the script from runs/papers/, which "
                     "does not travel between machines; a row's run folder, when present, takes precedence.",
            "rows": {k: stored[k] for k in RUNS if k in stored}})


def settings_digest(recipe_data: dict[str, Any]) -> str:
    """training_digest of the settings a run trained with, whether a value came from the row or a command-line
    override (the overrides are already applied to their tables; their list only says which were given)."""
    data = {k: v for k, v in recipe_data.items() if k != "overrides"}
    # a recipe without [train] precision trains in float32: the same run as one that says so
    data["train"] = {"precision": "float32", **data.get("train", {})}
    return training_digest(data)


def row_digest(key: str, precision: str | None = None, epochs: int | None = None) -> str:
    """The settings digest of the row as RUNS defines it now (in `precision`, if given; at the cap `epochs`)."""
    return settings_digest(build_recipe(key, precision=precision, epochs=epochs).data)


def fold_standing(key: str, fold: dict[str, Any]) -> tuple[str, int | None]:
    """How a LOSO fold's record stands against row `key` now: ("current", None) if it trained what the row
    defines, or early stopping ended it under one of the row's earlier caps (it would stop there under any
    cap); ("capped", cap) if that cap ended it, so it is trained again at the row's; ("stale", None) if it
    trained other settings."""
    row, p = RUNS[key], fold.get("precision")
    if fold.get("digest") == row_digest(key, p):
        return "current", None
    for cap in row.earlier_caps:
        if fold.get("digest") != row_digest(key, p, epochs=cap):
            continue
        ran, best = fold.get("epochs_run"), fold.get("best_epoch")
        patience = build_recipe(key, precision=p).data["train"].get("early_stopping_patience")
        stopped = ran is not None and (ran < cap or (best is not None and patience and ran - best >= patience))
        return ("current", None) if stopped else ("capped", cap)
    return "stale", None


def row_result(key: str, out_root: Path | None = None, evaluate: bool = True,
               stored: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the table needs of one row (no training): its run folder here, else its committed record.

    A record of a recipe that RUNS no longer defines (its training digest differs) is stale: the row counts
    as not run, and the table says so."""
    stored = load_row_records() if stored is None else stored
    if RUNS[key].loso_subjects:
        return {"key": key, **_loso_record(key, out_root or OUT, stored.get(key))}
    rec = _folder_record(key, out_root or OUT, evaluate)
    if rec["status"] == "not run" and key in stored:
        rec = dict(stored[key])
        if rec["status"] == "done" and rec.get("digest") and rec["digest"] != row_digest(key, rec.get("precision")):
            rec = {"status": "stale", "stale": rec}
    return {"key": key, **rec}


# ---------------------------------------------------------------- the table


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _ours(r: dict[str, Any], row: Row, results: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(paper-protocol cell, leak-free cell)."""
    if r["status"] == "failed":
        reason = " ".join(r["reason"].split())
        if len(reason) > 500:  # whole words where it can (shorten drops a word longer than the limit: a long path)
            short = textwrap.shorten(reason, 500, placeholder=" ...")
            reason = short if len(short) > 250 else reason[:496] + " ..."
        reason = reason.replace("|", "/")  # a "|" would split the table cell
        text = f"failed: {reason}" + (f" (stopped at {r['progress']})" if r.get("progress") else "")
        return text, "-"
    if r["status"] == "partial":
        so_far = f"; {_fold_list(r['folds'])}" if r.get("folds") else ""
        return f"{NOT_YET} (interrupted or running: {r['progress']}{so_far}; resume with the command)", "-"
    if r["status"] == "stale":
        old = r["stale"]
        return (f"{NOT_YET} (its committed result, {_pct(old['summary']['test_accuracy'])} recorded "
                f"{old.get('recorded', '?')}, trained a recipe this row no longer defines; re-run the command)"), "-"
    if r["status"] != "done":
        return NOT_YET, "-"
    s = r["summary"]
    main = f"{_pct(s['test_accuracy'])} (macro-F1 {s['test_macro_f1']:.3f}, {r['epochs_run']} epoch{'s' * (r['epochs_run'] != 1)})"
    for k, v in s.items():
        if k.startswith("cross_") and k.endswith("_accuracy"):
            main += f"; FER2013->{k[6:-9]} cross-dataset {_pct(v)}"
    if row.holdout_val:  # the paper reports a score on its own 20% holdout of Training, not on PrivateTest
        main += (f"; on the 20% holdout of Training (the paper's test set; LEAKS: the same holdout chose the best "
                 f"epoch) {_pct(r['val_accuracy'])}")
        dv = r.get("dedup_val")
        if dv and "error" not in dv:
            main += (f", {_pct(dv['accuracy'])} without its {dv['removed']} faces pixel-identical to a training "
                     f"face (n={dv['n']}; still chosen on this holdout)")
        elif dv:
            main += f" (its duplicate-free score failed: {dv['error']}; rerun --table-only)"
    if row.leak_free == "loso":
        lo, hi = wilson_interval(r["test_correct"], r["test_n"])
        return "-", (f"{_pct(s['test_accuracy'])} pooled LOSO ({r['test_correct']}/{r['test_n']}; Wilson 95% "
                     f"{lo:.1%}-{hi:.1%} if faces were independent, which one person's are not: the fold spread "
                     f"is the wider measure; macro-F1 {s['test_macro_f1']:.3f}; "
                     f"fold mean {_pct(s['fold_accuracy_mean'])} +- {_pct(s['fold_accuracy_std'])} (population SD)"
                     f"{_fold_epochs(r.get('per_fold', {}), row.epochs)}; {_fold_list(r['folds'], pooled=False)})")
    if row.leak_free == "dedup":
        d = r.get("dedup")
        if d and "error" in d:
            lf = f"leak-free evaluation failed: {d['error']} (rerun --table-only)"
        else:
            lf = (f"{_pct(d['accuracy'])} (macro-F1 {d['macro_f1']:.3f}; PrivateTest minus {d['removed']} train "
                  f"duplicates, n={d['n']})") if d else "not evaluated yet (rerun --table-only)"
        return main, lf
    if row.leak_free and row.leak_free.startswith("row:"):
        other = row.leak_free[4:]
        lf_other = _ours(results[other], RUNS[other], results)[1] if other in results else "-"
        copies = RUNS[other].changes.get("copies")
        its = f"row {other}" + (f", {copies} copies/image" if copies else "")
        return main, (f"{lf_other} ({its})" if lf_other not in ("-", "") else f"{its}: {NOT_YET}")
    return main, "-"


def _fold_list(folds: dict[str, dict[str, Any]], pooled: bool = True) -> str:
    """'folds KA 11/23, KL 13/22 (24/45 = 53.3% pooled)': each held-out subject's score, in subject order."""
    each = ", ".join(f"{s} {_fold_correct(f)}/{f['n']}" for s, f in sorted(folds.items()))
    k, n = sum(map(_fold_correct, folds.values())), sum(f["n"] for f in folds.values())
    return f"folds {each}" + (f" ({k}/{n} = {k / n:.1%} pooled)" if pooled else "")


def _fold_epochs(per_fold: dict[str, dict[str, Any]], cap: int) -> str:
    """'; epochs per fold 4-10 (best 2-9), 3 of 10 folds ran to the cap of 10': did the curve or the cap stop them?"""
    runs = [f.get("epochs_run") for f in per_fold.values()]
    if not runs or any(r is None for r in runs):
        return ""  # folds trained before epochs were recorded per fold
    best = [f.get("best_epoch") for f in per_fold.values()]
    text = f"; epochs per fold {min(runs)}-{max(runs)}"
    if None not in best:  # folds finished before best_epoch was recorded: no partial range
        text += f" (best {min(best)}-{max(best)})"
    at_cap = {k.removeprefix("loso-"): f for k, f in sorted(per_fold.items()) if f["epochs_run"] >= cap}
    text += f", {len(at_cap)} of {len(runs)} folds ran to the cap of {cap}"
    if at_cap:
        text += " (" + ", ".join(f"{s}{_best_at_cap(f)}" for s, f in at_cap.items()) + ")"
    return text


def _best_at_cap(fold: dict[str, Any]) -> str:
    """': best epoch 10 of 10, still rising': a best epoch that is the last means the cap, not the curve, stopped it."""
    best, ran = fold.get("best_epoch"), fold["epochs_run"]
    if best is None:
        return ""
    return f": best epoch {best} of {ran}" + (", still rising" if best == ran else "")


def _claim_interval(row: Row) -> str:
    acc, n = row.claim_test
    k = round(acc * n)
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n}: {lo:.1%}-{hi:.1%}"


def cnn_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "## Custom CNN (4 classes): the paper's 128 test images vs the full 4-class PrivateTest",
        "",
        "The paper trained on 15,109 images, validated on 4,977 and tested on 128. A 95% interval (Wilson, "
        "`scipy.stats.binomtest`) shows what 128 test images can tell apart; ours is on FER2013 PrivateTest's "
        "happy/sad/neutral/surprise faces (the model chosen on PublicTest). Per-class F1: happy / sad / neutral / surprise.",
        "",
        "| row | paper's claim | 95% interval of the claim (n=128) | ours, 4-class PrivateTest | our 95% interval | "
        "F1 ours | F1 paper |",
        "|---|---|---|---|---|---|---|",
    ]
    order = ("happy", "sad", "neutral", "surprise")
    for key, row in RUNS.items():
        if not row.claim_test:
            continue
        r = results[key]
        ours, ci, f1 = NOT_YET, "-", "-"
        if r["status"] == "done":
            correct, n = r["test_correct"], r["test_n"]
            lo, hi = wilson_interval(correct, n)
            ours, ci = f"{correct}/{n} = {correct / n:.1%}", f"{lo:.1%}-{hi:.1%}"
            f1 = " / ".join(f"{r['per_class_f1'][c]:.2f}" for c in order)
        paper_f1 = " / ".join(f"{row.paper_f1[c]:.2f}" for c in order) if row.paper_f1 else "not given"
        lines.append(f"| {key} | {row.claim} | {_claim_interval(row)} | {ours} | {ci} | {f1} | {paper_f1} |")
    lines += ["", "k/n: the claim times 128, rounded to a whole image (0.6719 = 86/128 and 0.773 = 99/128 exactly; "
              "0.77 is 98 or 99 of 128).", ""]
    return lines


def records_section(results: dict[str, dict[str, Any]]) -> list[str]:
    """Which rows come from committed records rather than a run folder on this machine, and from where."""
    lines = []
    for key, r in results.items():
        if r.get("folds") and len(r.get("folds_here", [])) < len(r["folds"]):  # a LOSO row: folds recorded elsewhere
            old = {s: f for s, f in r["folds"].items() if s not in r["folds_here"]}
            dates = sorted({f.get("recorded", "?") for f in old.values()})
            cpus = sorted({f.get("cpu") or "?" for f in old.values()})
            lines.append(f"- {key}: folds {', '.join(old)} ({len(old)} of {len(RUNS[key].loso_subjects)}) from "
                         f"records of {', '.join(dates)}; {', '.join(cpus)}")
        elif r["status"] in ("done", "failed") and not r.get("here"):
            ran = _ran_on(r)
            lines.append(f"- {key}: recorded {r.get('recorded', '?')}; {r.get('source', '?')}" + (f"; {ran}" if ran else ""))
        elif r["status"] == "stale":
            lines.append(f"- {key}: its record ({r['stale'].get('recorded', '?')}) is of a recipe this row no longer "
                         "defines; shown as not run")
    if not lines:
        return []
    return ["## Rows read from committed records", "",
            f"These rows have no run folder on the machine that wrote this table; their numbers are the records in "
            f"`benchmarks/results/{ROWS.name}`:", ""] + lines + [""]


def _jaffe_dev_note(results: dict[str, dict[str, Any]]) -> str:
    """The deviation checks' accuracies, read from their runs."""
    def acc(key: str) -> str:
        r = results.get(key, {})
        if r.get("status") == "done":
            return _pct(r["summary"]["test_accuracy"])
        return {"partial": "not finished", "failed": "failed", "stale": "stale (settings changed)"}.get(
            r.get("status", ""), "not run")

    def ran(keys: tuple[str, ...]) -> str:
        how = "; ".join(sorted({_ran_on(results[k]) for k in keys if results.get(k, {}).get("status") == "done"}))
        return f" ({how})" if how else ""

    frozen = ("jaffe_dev_paper", "jaffe_dev_lr", "jaffe_dev_norm", "jaffe_dev_ours")
    bn = ("jaffe_dev_norm_f32", "jaffe_dev_bn", "jaffe_dev_paper_bn")
    text = (f"with BatchNorm in inference mode (the recipe's: the shared MobileNetV2 weights have it folded, each BN "
            f"layer an identity plus a bias), lr 1e-3 scores {acc('jaffe_dev_paper')} with raw input and "
            f"{acc('jaffe_dev_lr')} with [-1, 1]; lr 1e-4 scores {acc('jaffe_dev_norm')} raw and "
            f"{acc('jaffe_dev_ours')} [-1, 1]{ran(frozen)}. BatchNorm mode, raw input, all three in "
            f"float32: inference mode at lr 1e-4 (the control) {acc('jaffe_dev_norm_f32')}; trained (recalibrated "
            f"first, batch statistics, moving statistics at keras.applications' momentum 0.999) at lr 1e-4 "
            f"{acc('jaffe_dev_bn')} and at the paper's lr 1e-3 {acc('jaffe_dev_paper_bn')}{ran(bn)}.")
    lasts = _last_epochs(results, bn)
    if lasts:
        text += (" Last epoch's training accuracy (augmented copies; a trained BatchNorm normalizes with each batch's "
                 "statistics, a frozen one with its moving statistics) vs validation accuracy (moving statistics): "
                 + _last_epoch_text(lasts) + ".")
        if any(x["accuracy"] > 0.9 and x["accuracy"] - x["val_accuracy"] > 0.2
               for k, x in lasts.items() if k != "jaffe_dev_norm_f32"):
            text += (" A model that fits its training copies but scores far lower on validation copies of the same "
                     "faces (the split leaks) is not overfitting people. The likely cause, not measured here: moving "
                     "statistics at momentum 0.999 lag behind the weights being trained, so inference normalizes "
                     "with stale statistics; the edge recipe trains BatchNorm at momentum 0.99 after its validation "
                     "accuracy fell to 28% after 2 epochs at 0.999 on FER2013 (its recipe's comment; training "
                     "accuracy not recorded). Momentum 0.99 is not measured on JAFFE.")
    return text


def _last_epochs(results: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The rows' last epoch's training and validation accuracy, where recorded."""
    return {key: last for key in keys
            if {"accuracy", "val_accuracy"} <= set(last := results.get(key, {}).get("last_epoch") or {})}


def _last_epoch_text(lasts: dict[str, dict[str, float]]) -> str:
    return "; ".join(f"{k} {_pct(x['accuracy'])} vs {_pct(x['val_accuracy'])}" for k, x in lasts.items())


def _precision_note(results: dict[str, dict[str, Any]]) -> str:
    """What bfloat16 changes in accuracy: one row trained in both precisions (one run each)."""
    a, b = results.get("cnn_m3_k3_lr003", {}), results.get("cnn_m3_k3_lr003_f32", {})
    if a.get("status") != "done" or b.get("status") != "done":
        return ("What bfloat16 changes in accuracy: cnn_m3_k3_lr003 (mixed_bfloat16) against cnn_m3_k3_lr003_f32 "
                "(float32), the same row in the two precisions; written when both have run.")
    x, y = a["summary"]["test_accuracy"], b["summary"]["test_accuracy"]
    return (f"What bfloat16 changes in accuracy: cnn_m3_k3_lr003 {_pct(x)} ({_ran_on(a)}) against "
            f"cnn_m3_k3_lr003_f32 {_pct(y)} ({_ran_on(b)}), {(x - y) * 100:+.2f} points; one run each, on "
            "different CPUs; run-to-run noise (the seed, the epoch early stopping picks) is not measured here, so the "
            "gap cannot be put down to precision." + _grid_in_float32(results))


_TABLE1_GRID = {"lr 0.003, 3x3": ("cnn_m3_k3_lr003", "cnn_m3_k3_lr003_f32"), "lr 0.003, 2x2": ("cnn_m3_k2_lr003",),
                "lr 0.001, 3x3": ("cnn_m3_k3_lr001",), "lr 0.001, 2x2": ("cnn_m3_k2_lr001",)}


def _grid_in_float32(results: dict[str, dict[str, Any]]) -> str:
    """' Table 1's grid in float32 alone: ...': the cells to compare with each other, one precision."""
    cells = []
    for cell, keys in _TABLE1_GRID.items():
        f32 = [(k, r) for k in keys if (r := results.get(k, {})).get("status") == "done" and r.get("precision") == "float32"]
        if not f32:
            return ""  # a cell without a float32 run: no like-for-like grid to show
        k, r = f32[0]
        cells.append(f"{cell} {_pct(r['summary']['test_accuracy'])} ({k})")
    return " Table 1's grid in float32 alone (compare its cells with each other): " + ", ".join(cells) + "."


def _resnet_fit_note(results: dict[str, dict[str, Any]]) -> str:
    """Under- or overfitting of the ResNet-head rows, from their last epoch's training and validation accuracy."""
    lasts = _last_epochs(results, ("resnet50_sub", "resnet50_sub_96"))  # the substitute-backbone rows of the note
    if not lasts:
        return "Their last epoch's training vs validation accuracy: written when those rows have run here."
    text = "Last epoch's training accuracy (augmented, dropout on) vs validation accuracy: " + _last_epoch_text(lasts) + "."
    if all(x["accuracy"] < 0.6 and x["accuracy"] - x["val_accuracy"] < 0.1 for x in lasts.values()):
        text += (" Training accuracy this low, and not far above validation, says the head with 4 trainable "
                 "backbone layers underfits rather than overfits.")
    return text


def _tsne_link(results: dict[str, dict[str, Any]]) -> list[str]:
    """Commit the EfficientNet row's t-SNE plot beside the table (the paper shows one)."""
    src = OUT / "efficientnet" / "plots" / "tsne_test.png"
    dst = RESULTS / "papers_efficientnet_tsne.png"
    if results.get("efficientnet", {}).get("status") == "done" and src.is_file():
        tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    if results.get("efficientnet", {}).get("status") != "done" or not dst.is_file():
        return ["- t-SNE of the EfficientNet row's penultimate features: written when that row has run."]
    return [f"- t-SNE of the EfficientNet row's penultimate features (PrivateTest): ![t-SNE]({dst.name})"]


def write_table(results: dict[str, dict[str, Any]]) -> None:
    earlier = json.loads(EARLIER.read_text())["rows"] if EARLIER.is_file() else {}
    lines = [
        "# Paper recipes at the papers' own budgets: claims vs our reproduction",
        "",
        "Written by `python benchmarks/reproduce_papers.py --table-only` from the run folders under `runs/papers/` and,",
        "for rows whose folder is not on this machine, the records committed in `benchmarks/results/papers_rows.json`",
        "(each with the date it was recorded). Each row is trained by its command (one row at a time, on a 2-core CPU",
        "shared with other jobs, so wall times are upper bounds). Wall time: the sum of the training epochs (validation",
        "passes included; data loading, feature caching and the final evaluation excluded; so are epochs lost to a kill",
        "before their checkpoint and the offline augmentation redone on each resume). images/s: training images per",
        "second of an epoch, median over epochs (EfficientNet rows: the head on cached features). The `earlier` column is the",
        "number measured before at a reduced budget (`benchmarks/results/papers_earlier.json`). A command with",
        "`--precision` names the precision the result was trained in where it differs from the row's (a CPU without",
        "native bfloat16); a row whose result is committed is skipped by its command: add `--retrain` to train it again.",
        "",
        "| key | recipe | paper's claim | ours, paper protocol | ours, leak-free | budget | paper's or reduced: why | "
        "wall time | images/s | earlier (reduced budget) | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in RUNS.items():
        r = results[key]
        paper_cell, lf_cell = _ours(r, row, results)
        wall = f"{r['train_hours']:.2f} h" if r.get("train_hours") else "-"
        ran_on = _ran_on(r)
        wall += f" ({ran_on})" if ran_on and r.get("train_hours") else ""
        ips = f"{r['images_per_second']:.0f}" if r.get("images_per_second") else "-"
        e = earlier.get(key)
        old = f"{e['result']} ({e['budget']}; {e['wall']})" if e else "-"
        lines.append(f"| {key} | {row.title} | {row.claim} | {paper_cell} | {lf_cell} | {row.budget} | "
                     f"{row.mark}: {row.why} | {wall} | {ips} | {old} | `{command(key, r.get('precision'))}` |")
    lines += [""] + cnn_table(results) + records_section(results)
    lines += [
        "## Notes",
        "",
        "- Paper numbers checked against the seed text where it is public: EfficientNet (Singh et al., ICTACT J. Soft",
        "  Computing 13(1), 2022, pp. 2792-2797, abstract: FER2013 71.02%, RAF-DB->CK+ 78.59%, RAF-DB->FER2013 56.10%;",
        "  http://ictactjournals.in/ArticleDetails.aspx?id=10626); ResNet50 + MLP (Chen, Applied and Computational",
        "  Engineering 22, 2023, pp. 71-78, abstract: 85.71%; https://doi.org/10.54254/2755-2721/22/20231168). The JAFFE",
        "  paper's 85.54% and the custom CNN paper's Table 1, Models 1/2 and per-class F1 come from the project's",
        "  issue 3 / 17 briefs: the seed text itself is not available here.",
        "- JAFFE paper protocol: augment every image, then split the copies 90/10 at random: copies of the same",
        "  source image and the same person are in train and test (it LEAKS). LOSO tests each of the 10 subjects",
        "  on a model that never saw her; it is the number to quote.",
        "- JAFFE deviations: the `jaffe_dev_*` rows measure lr x input scaling x BatchNorm mode at the same short",
        "  budget: " + _jaffe_dev_note(results),
        "  jaffe_paper and jaffe_loso deviate in lr (1e-4) and BatchNorm mode (inference) and keep the paper's raw",
        "  0..255 input.",
        "- EfficientNet: the offline run uses EfficientNet-Lite0 (ImageNet; ReLU6, no squeeze-excite) in place of",
        "  B0, whose ImageNet weights need internet. RAF-DB is not available: the cross-dataset test here is FER2013 ->",
        "  CK+48 (contempt dropped; CK+48 has no neutral, so neutral predictions count as errors), not RAF-DB -> CK+.",
        "- ResNet50: ImageNet weights cannot be loaded offline. The substitute rows run the paper's exact head on",
        "  MobileNetV2 1.0 ImageNet. The paper's 85.71% is about 12 points above the best published single models",
        "  on FER2013 (~73-74%) and is not plausible for this setup. At 96 px the head scores a few points more than",
        "  at 48 px (the two rows), far from the claim. " + _resnet_fit_note(results),
        "- Custom CNN: the paper does not list filter counts; ours are in `train/recipes/custom_cnn_fer4*.toml`",
        "  (Models 1 and 2: chosen so the trainable-parameter count is within 4% of the paper's).",
        "- mixed_bfloat16 (`[train] precision`, issue 13) is ours, for speed, on the custom CNN rows (plain convolutions:",
        "  1.43x in edge_study.md's throughput table, on a CPU with AVX512-BF16); weights and saved models stay float32.",
        "  On a CPU without native bfloat16 it is emulated and slow (an AVX2-only AMD EPYC: 12 img/s in bfloat16 vs 117 in",
        "  float32 for the plain 32-256 net, one pass each of edge_study.py's `_speed_one`): there the rows run with",
        "  `--precision float32`. The wall-time column names each run's CPU (where recorded) and precision. The MobileNetV2 rows",
        "  (ResNet head substitute, JAFFE) train in float32 as the papers did: bfloat16 is slower for MobileNetV2 here",
        "  (0.66x at 64 px in that table; single-pass probes 0.64x at 48 px, 0.85x at 96 px, 0.95x at 224 px). The first",
        "  four jaffe_dev_* checks ran in bfloat16 before this was measured; they compare settings among themselves.",
        "  " + _precision_note(results),
    ] + _tsne_link(results) + [""]
    extra = reference_lines()
    if extra:
        lines += ["## Reference models on FER2013 PrivateTest (7 classes, same split)", ""]
        lines += [f"- {k}: {v}" for k, v in extra.items()] + [""]
    with atomic_file(TABLE) as fh:
        fh.write("\n".join(lines))


def reference_lines() -> dict:
    """Our edge models and the peer models on the same PrivateTest, read from the committed results that own them
    (the edge study's rows and the model card), not from run folders, which a new machine does not have."""
    out = {}
    study = ROOT / "benchmarks/results/edge_study_rows.json"
    for r in json.loads(study.read_text()) if study.is_file() else []:
        if r.get("test_acc") is None or r.get("test_macro_f1") is None:  # a row without a PrivateTest score
            continue
        epochs = f", {r['epochs']} epochs" if r.get("epochs") else ""
        out[f"ours, {r['run']}"] = (f"{r['test_acc']:.2%} (macro-F1 {r['test_macro_f1']:.3f}){epochs}; "
                                    f"`{r.get('command', '?')}` (benchmarks/results/edge_study.md)")
    card = ROOT / "benchmarks/results/model_card.json"
    models = json.loads(card.read_text()).get("models", {}) if card.is_file() else {}
    for key, m in models.items():
        res = (m.get("results") or {}).get("fer2013_privatetest") or {}
        if (m.get("role") or "").startswith("peer") and res.get("accuracy") is not None:
            f1 = f" (macro-F1 {res['macro_f1']:.3f})" if res.get("macro_f1") is not None else ""
            out[f"{m['role']}, {key}"] = (f"{res['accuracy']:.2%}{f1}; `python benchmarks/model_card.py` "
                                          "(benchmarks/results/model_card.md)")
    return out


def all_results(evaluate: bool = True) -> dict[str, dict[str, Any]]:
    stored = load_row_records()
    return {key: row_result(key, evaluate=evaluate, stored=stored) for key in RUNS}


# ---------------------------------------------------------------- command line


class _Lock:
    """One training row at a time: a second run exits at once instead of halving the first one's CPU."""

    def __enter__(self):
        OUT.mkdir(parents=True, exist_ok=True)
        self.fh = open(OUT / ".lock", "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            sys.exit(f"error: another reproduce_papers.py run holds {OUT / '.lock'} ({self.fh.read().strip()}); "
                     "rows run one at a time")
        self.fh.truncate(0)
        self.fh.write(f"pid {os.getpid()}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help=f"comma list of: {', '.join(RUNS)}")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted row from its last epoch")
    ap.add_argument("--table-only", action="store_true", help="rewrite the table from the run folders, train nothing")
    ap.add_argument("--precision", choices=PRECISIONS, default=None,
                    help="train in this precision instead of the row's (e.g. float32 on a CPU without native "
                         "bfloat16, where mixed_bfloat16 is emulated and slow); the table records it")
    ap.add_argument("--retrain", action="store_true",
                    help="train rows that already have a committed result in papers_rows.json (default: skip them)")
    ap.add_argument("--list", action="store_true", help="print each row's budget and command")
    ap.add_argument("--smoke", type=Path, metavar="DIR",
                    help="train the rows 1 epoch on --limit images into DIR (proves they build; no table)")
    ap.add_argument("--limit", type=int, default=64, help="with --smoke: images per split (default 64)")
    args = ap.parse_args()
    keys = [k for k in args.only.split(",") if k]
    unknown = [k for k in keys if k not in RUNS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {', '.join(RUNS)}")
    keys = keys or list(RUNS)
    if args.list:
        for key in keys:
            print(f"{key}\t{RUNS[key].mark}\t{RUNS[key].budget}\t{command(key)}")
        return
    if args.smoke:
        for key in keys:
            _log(f"== smoke {key}")
            res = run_one(key, resume=False, out_root=args.smoke, limit=args.limit, smoke=True,
                          precision=args.precision)
            _log(f"smoke {key}: {res['status']} in {res['seconds']:.0f}s "
                 f"{res.get('reason') or {k: res['summary'].get(k) for k in ('test_accuracy', 'epochs_run', 'folds')}}"
                 f"{' dedup ' + str(res['dedup']) if res.get('dedup') else ''}")
        return
    if not args.table_only:
        if not args.only:
            ap.error("name the rows to train with --only (one at a time; see --list); --table-only trains nothing")
        with _Lock():
            for key in keys:
                folder = OUT / key
                if row_result(key, evaluate=False)["status"] == "done" and not folder.is_dir() and not args.retrain:
                    _log(f"{key}: skipped, its result is committed ({ROWS.name}); --retrain trains it again")
                    continue
                if (folder.is_dir() and any(folder.iterdir()) and not (folder / "manifest.json").is_file()
                        and not args.resume and not RUNS[key].loso_subjects):
                    sys.exit(f"error: {folder} holds an unfinished run; pass --resume to continue it")
                _log(f"== {key}: {RUNS[key]}")
                # Until the row ends, the table shows its folder's progress (a killed run stays "interrupted").
                write_json(OUT / f"{key}.result.json", {"status": "running", "pid": os.getpid(), "started": time.time()})
                try:
                    res = run_one(key, args.resume, precision=args.precision, after_fold=_record_and_write,
                                  retrain=args.retrain)
                except Exception as exc:  # a bug in one row must not lose the others' results
                    traceback.print_exc()
                    res = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                write_json(OUT / f"{key}.result.json", res)  # one file per row
                _log(f"{key}: {res.get('status')} in {res.get('seconds', 0):.0f}s")
                if key != keys[-1]:  # record each row as it ends: a long list may not finish on this machine
                    try:
                        _record_and_write()
                    except Exception:  # noqa: BLE001 - the table is rewritten at the end; the next rows still train
                        traceback.print_exc()
    print(_record_and_write())


def _record_and_write() -> str:
    results = all_results()
    save_row_records(results)
    write_table(results)
    return TABLE.read_text()


if __name__ == "__main__":
    main()
