"""The edge-model study (issue 13): one row per training run, read from the run folders.

Each row gives the lever(s) the run tries, PublicTest (where choices are made) and PrivateTest
accuracy (reported once per finished candidate), macro-F1, the same with flip / ten-crop
test-time augmentation, images/s, wall time and the command that reproduces it. Rows of
earlier runs whose folders are gone are kept in ``--keep`` (a JSON list of rows, each with the
command and the commit that produced it), so failed levers stay in the table.

    python benchmarks/edge_study.py runs/edge_plain44 [runs/...] \
        --keep benchmarks/results/edge_study_rows.json --md benchmarks/results/edge_study.md

``--speed`` re-measures training throughput (synthetic batches, fp32 vs mixed bfloat16 vs XLA)
of the plain CNN and the MobileNetV2 edge net; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fer_edge.atomic import write_json, write_text  # noqa: E402


def _shown(path: str) -> str:
    """A path as a reader of the table types it from the checkout (../shared/..., runs/...), not this machine's."""
    from fer_edge.errors import DataError
    from fer_edge.paths import expand_data_path

    try:
        p = Path(os.path.abspath(expand_data_path(path)))  # "$FER_EDGE_DATA/...": this machine's file
    except DataError:  # no data root here: the recorded text
        return path
    if p.is_relative_to(REPO.parent):
        return os.path.relpath(p, REPO)
    return str(p)


def _command(prov: dict, run: Path) -> str:
    """The `fer-edge train` command that reproduces a run, from its provenance."""
    src = prov.get("recipe_source", "")
    recipe = src.split(":", 1)[1] if src.startswith("builtin:") else src
    parts = ["fer-edge", "train", "--recipe", recipe, "--data", _shown(prov["data"]["path"]), "--out", _shown(str(run))]
    over = prov.get("recipe_data", {}).get("overrides", {})
    for key in ("epochs", "batch_size", "lr", "seed", "protocol", "weights"):
        if key in over:
            parts += [f"--{key.replace('_', '-')}", str(over[key])]
    for t in over.get("teachers", []):
        parts += ["--teacher", _shown(t)]
    return " ".join(shlex.quote(p) for p in parts)


def _levers(prov: dict) -> str:
    r = prov.get("recipe_data", {})
    m, t, a, i = r.get("model", {}), r.get("train", {}), r.get("augment", {}), r.get("input", {})
    out = [prov.get("backbone") or m.get("builder", "?")]
    size = i.get("crop") or i.get("size")
    out.append(f"{size[0]}px" + (f" crops of {i['size'][0]}" if i.get("crop") else ""))
    out.append(f"{t.get('optimizer', 'adam')}{'-nesterov' if t.get('nesterov') else ''} lr {t.get('lr', '')} "
               f"{t.get('schedule', 'constant')}, wd {t.get('weight_decay', 0)}, ls {t.get('label_smoothing', 0)}")
    aug = [k for k in ("hflip", "random_crop", "rotation", "shift", "zoom", "brightness", "contrast", "erasing") if a.get(k)]
    out.append("aug " + "+".join(aug) if aug else "no aug")
    if t.get("class_balance") not in (None, "none"):
        out.append(f"{t['class_balance']} class weights")
    soft = prov.get("soft_targets", {})
    if "ferplus" in soft:
        out.append(f"FER+ votes w {soft['ferplus']['weight']}")
    if "distill" in soft:
        d = soft["distill"]
        out.append(f"distilled from {len(d['teachers'])} teacher(s) w {d['weight']} T {d['temperature']}")
    out.append(t.get("precision", "float32"))
    return "; ".join(out)


def run_row(run: Path) -> dict:
    manifest = json.loads((run / "manifest.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    prov, summ = manifest["provenance"], metrics["summary"]
    tta = metrics.get("tta", {})
    row = {
        "run": run.name,
        "levers": _levers(prov),
        "epochs": summ.get("epochs_run"),
        "val_acc": metrics["val"]["accuracy"],
        "test_acc": metrics["test"]["accuracy"],
        "test_macro_f1": metrics["test"]["macro_f1"],
        "val_acc_flip": tta.get("flip", {}).get("val", {}).get("accuracy"),
        "val_acc_tencrop": tta.get("ten_crop", {}).get("val", {}).get("accuracy"),
        "test_acc_tencrop": tta.get("ten_crop", {}).get("test", {}).get("accuracy"),
        "test_f1_tencrop": tta.get("ten_crop", {}).get("test", {}).get("macro_f1"),
        "images_per_second": summ.get("images_per_second"),
        "wall_minutes": round(summ.get("train_seconds", 0) / 60, 1),
        "per_class_recall": {k: v["recall"] for k, v in metrics["test"]["per_class"].items()},
        "command": _command(prov, run),
    }
    if "teacher_ensemble" in metrics:
        row["teacher_ensemble"] = metrics["teacher_ensemble"]
    return row


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


# The architectures judged together (issue 13, lever 2: accuracy, int8 latency and size), each from the CPU bench of
# the model shipped with it. v1's run folder is gone, so its bench is read from the commit that last held it.
ARCH_BENCHES = {
    "MobileNetV2 1.0 @64 (v1)": "f81b2fc^:benchmarks/results/bench_cpu.json",
    "plain CNN 32-256 @44 (shipped)": "benchmarks/results/bench_cpu.json",
}


def _read_bench(spec: str) -> dict | None:
    """A bench_cpu.json by path, or ``REV:PATH`` from git history; None when neither can be read."""
    path = REPO / spec
    if path.is_file():
        return json.loads(path.read_text())
    if ":" in spec:
        try:
            out = subprocess.run(["git", "-C", str(REPO), "show", spec], capture_output=True, text=True)
        except OSError:  # no git
            return None
        if out.returncode == 0:
            return json.loads(out.stdout)
    return None


def arch_rows(benches: dict[str, str] = ARCH_BENCHES) -> list[dict]:
    """One row per bench: the shipped model's int8 TFLite accuracy and size, its int8 and fp32 TFLite latency
    (1 thread; the interleaved median when the bench has it) and mini-Xception's quantized TFLite from the same
    bench, because absolute times move between days on this VM while ratios within one bench hold."""
    rows = []
    for arch, spec in benches.items():
        b = _read_bench(spec)
        if b is None:
            rows.append({"arch": arch, "source": spec, "error": "bench not readable (no git history?)"})
            continue
        res = [r for r in b["results"] if r.get("status") == "ok" and r["threads"] == 1 and r["format"] == "tflite"]
        pick = {(r["role"], r["precision"]): r for r in res}
        int8, fp32, peer = pick.get(("model", "int8")), pick.get(("model", "fp32")), pick.get(("baseline", "dynamic"))
        paired = (b.get("paired_tflite_1thread") or {}).get("latency") or {}
        p50 = {k: (paired.get(k) or {}).get("p50_ms") or (r or {}).get("latency", {}).get("p50_ms")
               for k, r in (("int8", int8), ("fp32", fp32))}
        rows.append({"arch": arch, "source": spec, "created": b.get("created", "")[:10], "model": (int8 or {}).get("name"),
                     "accuracy": (int8 or {}).get("accuracy"),
                     "size_kb": int8["size_bytes"] / 1024 if int8 and int8.get("size_bytes") else None,
                     "int8_ms": p50["int8"], "fp32_ms": p50["fp32"],
                     "peer_ms": (peer or {}).get("latency", {}).get("p50_ms")})
    return rows


def _ms(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ratio(a, b) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def render_arch(rows: list[dict]) -> list[str]:
    md = ["", "## Architectures: accuracy, int8 latency and size together (TFLite, 1 thread)", "",
          "From the CPU bench of the model shipped with each architecture (`benchmarks/bench_cpu.py`); latency p50 of "
          "the model alone, interleaved fp32/int8 rounds where the bench has them. Absolute times move between days on "
          "this VM, so each row also gives mini-Xception's quantized TFLite measured in the same bench.", "",
          "| architecture | shipped model | int8 PrivateTest | int8 size KB | int8 ms | fp32 ms | int8/fp32 | "
          "mini-Xception ms | int8/mini-Xception | bench (date) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            md.append(f"| {r['arch']} | - | - | - | - | - | - | - | - | `{r['source']}`: {r['error']} |")
            continue
        size = "-" if r["size_kb"] is None else f"{r['size_kb']:.0f}"
        md.append(f"| {r['arch']} | {r['model'] or '-'} | {_pct(r['accuracy'])} | {size} | {_ms(r['int8_ms'])} | "
                  f"{_ms(r['fp32_ms'])} | {_ratio(r['int8_ms'], r['fp32_ms'])} | {_ms(r['peer_ms'])} | "
                  f"{_ratio(r['int8_ms'], r['peer_ms'])} | `{r['source']}` ({r['created']}) |")
    return md


def _range(s: dict) -> str:
    p = s.get("passes")  # rows measured before passes were kept have none
    return f"{min(p)}-{max(p)} ({len(p)})" if p else "- (1)"


def render(rows: list[dict], speed: list[dict] | None, argv: list[str], arch: list[dict] | None = None) -> str:
    md = ["# Edge model study (issue 13)", "",
          f"Generated by `python benchmarks/edge_study.py {' '.join(argv)}`.", "",
          "Choices are made on PublicTest (val); PrivateTest (test) is reported once per finished run. "
          "`10-crop`: test-time average over ten 44-px crops (corners, centre, mirrored) of the 48-px face. "
          "images/s: training images per wall-clock second of an epoch (validation pass included), median "
          "over epochs; the machine was shared with other jobs for some runs (noted), so wall times are upper bounds.",
          "", "| run | levers | epochs | PublicTest | PublicTest 10-crop | PrivateTest | PrivateTest 10-crop | "
          "macro-F1 (10-crop) | img/s | wall min |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['run']} | {r['levers']} | {r['epochs']} | {_pct(r['val_acc'])} | {_pct(r.get('val_acc_tencrop'))} | "
                  f"{_pct(r['test_acc'])} | {_pct(r.get('test_acc_tencrop'))} | {_pct(r['test_macro_f1'])} "
                  f"({_pct(r.get('test_f1_tencrop'))}) | {r.get('images_per_second') or '-'} | {r.get('wall_minutes') or '-'} |")
    md += ["", "## Per-class recall on PrivateTest (single view)", ""]
    labels = list(rows[0]["per_class_recall"]) if rows else []
    md += ["| run | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for r in rows:
        md.append(f"| {r['run']} | " + " | ".join(_pct(r["per_class_recall"].get(k)) for k in labels) + " |")
    ens = [r for r in rows if r.get("teacher_ensemble")]
    if ens:
        md += ["", "## Teacher ensembles (their own accuracy)", "", "| student run | teachers | PublicTest | PrivateTest |",
               "|---|---|---|---|"]
        for r in ens:
            e = r["teacher_ensemble"]
            md.append(f"| {r['run']} | {', '.join(Path(t).name for t in e['teachers'])} ({e['tta']}) | "
                      f"{_pct(e['val']['accuracy'])} | {_pct(e['test']['accuracy'])} |")
    if arch:
        md += render_arch(arch)
    md += ["", "## Commands", ""]
    md += [f"- {r['run']}: `{r['command']}`" + (f" ({r['note']})" if r.get("note") else "") for r in rows]
    if speed:
        how = ("the cases ran in interleaved rounds, each in a fresh process. img/s is the median pass; the range shows "
               "how much this VM's CPU share moved while they ran, so only differences well outside it mean anything"
               if any(s.get("passes") for s in speed) else "one pass per case (no range: measured before passes were kept)")
        md += ["", "## Training throughput (synthetic batches, this 2-core AVX512-BF16 CPU)", "",
               f"Train steps only (no augmentation, no validation): 40 batches per pass, timed from the end of the first "
               f"batch to the end of the last; {how}.", "",
               "| net | params | input | batch | policy | XLA | img/s | range (passes) |", "|---|---|---|---|---|---|---|---|"]
        md += [f"| {s['net']} | {s['params']:,} | {s['input']} | {s['batch']} | {s['policy']} | {s['jit']} | "
               f"{s['images_per_s']} | {_range(s)} |" for s in speed]
    return "\n".join(md) + "\n"


SPEED_CASES = [  # (net, input, batch, policy, jit)
    ("plain 32-256", 44, 64, "float32", False),
    ("plain 32-256", 44, 64, "mixed_bfloat16", False),
    ("plain 32-256", 44, 64, "mixed_bfloat16", True),
    ("plain 48-384", 44, 64, "mixed_bfloat16", False),
    ("plain 64-512", 44, 64, "float32", False),  # does bf16 still pay at the teacher's width?
    ("plain 64-512", 44, 64, "mixed_bfloat16", False),
    ("mobilenetv2 1.0", 64, 64, "float32", False),
    ("mobilenetv2 1.0", 64, 64, "mixed_bfloat16", False),
    # the paper rows' MobileNetV2 sizes (ResNet head substitute 48 / 96 px, JAFFE 224 px): does bf16 pay there?
    ("mobilenetv2 1.0", 48, 64, "float32", False),
    ("mobilenetv2 1.0", 48, 64, "mixed_bfloat16", False),
    ("mobilenetv2 1.0", 96, 64, "float32", False),
    ("mobilenetv2 1.0", 96, 64, "mixed_bfloat16", False),
    ("mobilenetv2 1.0", 224, 32, "float32", False),
    ("mobilenetv2 1.0", 224, 32, "mixed_bfloat16", False),
]


def _speed_one(net: str, size: int, batch: int, policy: str, jit: bool, passes: int = 2) -> dict:
    """Train-step throughput of one case, in this (fresh) process: ``passes`` timed epochs of 40 batches."""
    import keras
    import numpy as np
    import tensorflow as tf

    from fer_edge.training.fitloop import without_autotune
    from fer_edge.training.models import build_model

    keras.mixed_precision.set_global_policy(policy)
    if net.startswith("plain"):
        w0 = int(net.split()[1].split("-")[0])
        cfg = {"builder": "plain_cnn", "widths": [w0, 2 * w0, 4 * w0, 8 * w0], "normalize": "unit", "dropout": 0.3}
        shape = (size, size, 1)
    else:
        cfg = {"builder": "mobilenetv2", "alpha": 1.0, "weights": "none", "normalize": "tanh", "freeze_bn": False}
        shape = (size, size, 1)
    model, _ = build_model(cfg, shape, 7)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  loss="categorical_crossentropy", jit_compile=jit)
    n = batch * 40
    x = np.random.default_rng(0).uniform(0, 255, (n, *shape)).astype("float32")
    y = keras.utils.to_categorical(np.random.default_rng(1).integers(0, 7, n), 7)
    # As the trainer's input: no tf.data autotuning (a first version of this probe timed its teardown stalls,
    # 10.24 s, 20.5 s, ...)
    ds = without_autotune(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(2))
    model.fit(ds.take(5), epochs=1, verbose=0)

    class BatchClock(keras.callbacks.Callback):  # the steps alone: from the first batch's end to the last's
        def on_train_batch_end(self, b, logs=None):
            self.ends.append(time.perf_counter())

    rates = []
    for _ in range(passes):
        clock = BatchClock()
        clock.ends = []
        model.fit(ds, epochs=1, verbose=0, callbacks=[clock])
        assert len(clock.ends) >= 2, "the probe needs at least two batches per pass"
        rates.append(round((len(clock.ends) - 1) * batch / (clock.ends[-1] - clock.ends[0])))
    return {"net": net, "params": int(model.count_params()), "input": f"{size}x{size}", "batch": batch,
            "policy": policy, "jit": jit, "passes": rates}


def speed(rounds: int = 3) -> list[dict]:
    """Every case in ``rounds`` interleaved rounds, each in a fresh process (the policy and oneDNN state are
    global). Interleaving matters: on this VM the same case measured 250 and 390 img/s a minute apart
    (the host's CPU share varies), so one pass per case ranks the cases by when they ran."""
    code = ("import json,sys; sys.path.insert(0, %r); from edge_study import _speed_one; "
            "print(json.dumps(_speed_one(*json.loads(sys.argv[1]))))" % str(Path(__file__).parent))
    by_case: dict[tuple, dict] = {}
    for r in range(rounds):
        for case in SPEED_CASES:
            out = subprocess.run([sys.executable, "-c", code, json.dumps(case)], capture_output=True, text=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
            one = json.loads(out.stdout.strip().splitlines()[-1])
            row = by_case.setdefault(case, {**{k: v for k, v in one.items() if k != "passes"}, "passes": []})
            row["passes"] += one["passes"]
            print(f"round {r + 1}/{rounds}", one, file=sys.stderr)
    rows = list(by_case.values())
    for row in rows:
        row["images_per_s"] = round(statistics.median(row["passes"]))
    return rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path, help="finished `fer-edge train` run folders")
    ap.add_argument("--keep", type=Path, help="JSON rows of earlier runs (kept, updated with these runs)")
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--speed", action="store_true", help="re-measure training throughput (minutes)")
    ap.add_argument("--speed-json", type=Path, help="where the throughput rows are kept (read when --speed is absent)")
    ap.add_argument("--note", action="append", default=[], metavar="RUN=TEXT",
                    help="a note printed beside RUN's command (kept in --keep); repeatable")
    args = ap.parse_args(argv)
    notes = [n.split("=", 1) for n in args.note]
    if any(len(n) != 2 or not n[0] for n in notes):
        ap.error("--note takes RUN=TEXT")
    args.note = dict(notes)
    rows = json.loads(args.keep.read_text()) if args.keep and args.keep.is_file() else []
    for run in args.runs:
        if not (run / "manifest.json").is_file():
            print(f"error: {run}: not a finished run (no manifest.json)", file=sys.stderr)
            return 2
        new = run_row(run)
        kept = next((r for r in rows if r["run"] == new["run"]), {})
        if args.note.get(run.name) or kept.get("note"):  # a note (e.g. "shared CPU") outlives a regeneration
            new["note"] = args.note.get(run.name) or kept["note"]
        rows = [r for r in rows if r["run"] != new["run"]] + [new]
    if args.keep:
        write_json(args.keep, rows)
    sp = None
    if args.speed:
        sp = speed()
        if args.speed_json:
            write_json(args.speed_json, sp)
    elif args.speed_json and args.speed_json.is_file():
        sp = json.loads(args.speed_json.read_text())
    write_text(args.md, render(rows, sp, argv, arch_rows()))
    print(f"wrote {args.md} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
