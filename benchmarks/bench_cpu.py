#!/usr/bin/env python3
"""The committed CPU benchmark: every export of the edge model, its float reference and
the mini-Xception peer on this machine, plus the issue's targets and the size of a
runtime-only install. Writes benchmarks/results/bench_cpu.{md,json,png}.

    .venv/bin/python benchmarks/bench_cpu.py                    # runs/edge_long, edge_full or edge_quick, the first exported
    .venv/bin/python benchmarks/bench_cpu.py --run runs/edge_full --runs 300
    .venv/bin/python benchmarks/bench_cpu.py --install-only     # just the runtime-only install size

Targets (ratios from one run on this machine):
  1. int8 TFLite single-image latency <= 0.5x float32 TFLite (1 thread).
  2. Edge model more accurate than mini-Xception on FER2013 PrivateTest; end to end from a face crop (1 thread,
     interleaved) <= 1.5x its quantized TFLite (issue 13); the latency cost of each test-time augmentation.
  3. `pip install fer-edge` (no extras) is small and pulls no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_edge.atomic import atomic_file, write_json  # noqa: E402
from fer_edge.bench import report as rep  # noqa: E402
from fer_edge.bench.core import BenchOptions, run_bench  # noqa: E402
from fer_edge.bench.gpu import probe  # noqa: E402
from fer_edge.bench.plot import pareto_png  # noqa: E402
from fer_edge.bench.schema import OK, BenchReport  # noqa: E402

OUT = REPO / "benchmarks" / "results"


def pick_run(explicit: str | None, exports: list[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    if exports:
        sys.exit("--export needs --run (the run folder holds the float reference)")
    for name in ("edge_long", "edge_full", "edge_quick"):
        run = REPO / "runs" / name
        if list(run.glob("export/*/manifest.json")):
            return run
    sys.exit("no exported edge model under runs/*/export; run fer-edge convert first or pass --run/--export")


def runtime_install_size(work: Path) -> dict:
    """pip install the project without extras into a fresh venv and measure site-packages."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    t0 = time.time()
    proc = subprocess.run([str(py), "-m", "pip", "install", "--quiet", str(REPO)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"ok": False, "error": proc.stderr[-1500:]}
    seconds = time.time() - t0
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    sizes: dict[str, int] = {}
    for child in site.iterdir():
        if child.name.endswith((".dist-info", ".pth")) or child.name in ("__pycache__", "_distutils_hack"):
            continue
        total = sum(f.stat().st_size for f in child.rglob("*") if f.is_file()) if child.is_dir() else child.stat().st_size
        sizes[child.name] = total
    # pip/setuptools come with every venv; count what `pip install fer-edge` added.
    baseline = {"pip", "setuptools", "pkg_resources"}
    added = {k: v for k, v in sizes.items() if k not in baseline}
    dists = subprocess.check_output([str(py), "-m", "pip", "list", "--format=json"], text=True)
    dists = {d["name"].lower(): d["version"] for d in json.loads(dists)}
    imports = subprocess.run([str(py), "-c", "import sys, fer_edge.runtime, fer_edge.bundle; "
                              "bad=[m for m in ('tensorflow','keras','torch','onnx','nncf') if m in sys.modules]; "
                              "print(bad)"], capture_output=True, text=True, cwd=work)
    return {
        "ok": True,
        "pip_install_seconds": round(seconds, 1),
        "site_packages_mb": round(sum(added.values()) / 2**20, 1),
        "largest": {k: round(v / 2**20, 1) for k, v in sorted(added.items(), key=lambda kv: -kv[1])[:8]},
        "distributions": {k: v for k, v in dists.items() if k not in ("pip", "setuptools")},
        "tensorflow_installed": any(k.startswith(("tensorflow", "tf-keras", "keras")) for k in dists),
        "heavy_imports_after_import_fer_edge_runtime": imports.stdout.strip() or imports.stderr.strip()[-300:],
    }


def best(rows, **match):
    cands = [r for r in rows if r.status == OK and all(getattr(r, k) == v for k, v in match.items())]
    return cands[0] if cands else None


PAIRED_CODE = """
import json, sys
import numpy as np
from fer_edge.runtime import load
from fer_edge.bench.measure import interleaved
models, rounds, calls = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
face = np.random.default_rng(0).integers(0, 256, (1, 96, 96), dtype=np.uint8)  # a gray face crop, as a detector gives
fns = {}
for name, m in models.items():
    c = load(m["path"], threads=1, tta=m.get("tta"))
    x = c.preprocess(face)
    fns[name] = (lambda c=c: c.predict_proba(face)) if m["e2e"] else (lambda c=c, x=x: c.run(x))
print(json.dumps(interleaved(fns, rounds, calls)))
"""


def _interleaved(models: dict, rounds: int, calls: int) -> dict | None:
    """``models`` (name -> path, tta, e2e) timed in alternating rounds in one fresh process
    (fer_edge.bench.measure.interleaved); ratios are against the first one."""
    proc = subprocess.run([sys.executable, "-c", PAIRED_CODE, json.dumps(models), str(rounds), str(calls)],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        print(f"interleaved measurement failed: {proc.stderr[-500:]}", file=sys.stderr)
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["bundles"] = {k: str(v["path"]) for k, v in models.items()}
    return out


def paired_tflite(run: Path, rounds: int, calls: int) -> dict | None:
    """fp32 vs int8 TFLite (1 thread, the model alone), interleaved in one fresh process."""
    fp32, int8 = run / "export" / "tflite-fp32", run / "export" / "tflite-int8"
    if not ((fp32 / "manifest.json").is_file() and (int8 / "manifest.json").is_file()):
        return None
    out = _interleaved({"fp32": {"path": str(fp32), "e2e": False}, "int8": {"path": str(int8), "e2e": False}},
                       rounds, calls)
    return out


def paired_e2e(run: Path, peer: Path, rounds: int, calls: int) -> dict | None:
    """End to end from a uint8 face crop (the bundle's own resize, crop and views + the model), 1 thread,
    interleaved: the mini-Xception peer's quantized TFLite first, then ours (int8, fp32, int8 with each TTA)."""
    int8, fp32 = run / "export" / "tflite-int8", run / "export" / "tflite-fp32"
    if not (int8 / "manifest.json").is_file():
        return None
    from fer_edge.bundle import read_bundle

    models = {"mini-xception": {"path": str(peer), "e2e": True}, "int8": {"path": str(int8), "e2e": True}}
    if (fp32 / "manifest.json").is_file():
        models["fp32"] = {"path": str(fp32), "e2e": True}
    if read_bundle(int8, verify=False).manifest.input.crop:
        models["int8 flip"] = {"path": str(int8), "e2e": True, "tta": "flip"}
        models["int8 ten_crop"] = {"path": str(int8), "e2e": True, "tta": "ten_crop"}
    return _interleaved(models, rounds, calls)


def targets(report: BenchReport, model_name: str, paired: dict | None = None, e2e: dict | None = None) -> list[dict]:
    rows = report.results
    out = []
    fp32 = best(rows, name=model_name, format="tflite", precision="fp32", threads=1)
    int8 = best(rows, name=model_name, format="tflite", precision="int8", threads=1)
    if paired:
        r = paired["ratios"]["int8/fp32"]
        lat = paired["latency"]
        rows_ratio = f"; separate-process rows: {int8.latency.p50_ms / fp32.latency.p50_ms:.2f}x" if fp32 and int8 else ""
        out.append({"target": "int8 TFLite p50 <= 0.5x fp32 TFLite p50 (1 thread)",
                    "measured": f"{lat['int8']['p50_ms']:.3f} ms / {lat['fp32']['p50_ms']:.3f} ms; median of "
                                f"{paired['rounds']} interleaved rounds {r['median']:.2f}x (range {r['min']:.2f}-{r['max']:.2f})"
                                + rows_ratio,
                    "met": r["median"] <= 0.5})
    elif fp32 and int8:
        ratio = int8.latency.p50_ms / fp32.latency.p50_ms
        out.append({"target": "int8 TFLite p50 <= 0.5x fp32 TFLite p50 (1 thread)",
                    "measured": f"{int8.latency.p50_ms:.3f} ms / {fp32.latency.p50_ms:.3f} ms = {ratio:.2f}x",
                    "met": ratio <= 0.5})
    if e2e:
        r, lat = e2e["ratios"]["int8/mini-xception"], e2e["latency"]
        out.append({"target": "edge int8 single-face latency end to end (uint8 crop, 1 thread) <= 1.5x mini-Xception's "
                              "quantized TFLite",
                    "measured": f"{lat['int8']['p50_ms']:.3f} ms / {lat['mini-xception']['p50_ms']:.3f} ms; median of "
                                f"{e2e['rounds']} interleaved rounds {r['median']:.2f}x (range {r['min']:.2f}-{r['max']:.2f})",
                    "met": r["median"] <= 1.5})
    peer_q = best(rows, role="baseline", format="tflite", threads=1)
    if int8 and peer_q and int8.accuracy is not None and peer_q.accuracy is not None:
        lat_ratio = int8.latency.p50_ms / peer_q.latency.p50_ms
        out.append({"target": "edge int8 accuracy > mini-Xception accuracy (PrivateTest)",
                    "measured": f"{int8.accuracy:.4f} vs {peer_q.accuracy:.4f} ({(int8.accuracy - peer_q.accuracy) * 100:+.2f} pt)",
                    "met": int8.accuracy > peer_q.accuracy})
        out.append({"target": "edge int8 latency <= 2x mini-Xception quantized TFLite latency (1 thread)",
                    "measured": f"{int8.latency.p50_ms:.3f} ms / {peer_q.latency.p50_ms:.3f} ms = {lat_ratio:.2f}x",
                    "met": lat_ratio <= 2.0})
    return out


def bundle_provenance(paths: list[str]) -> list[dict]:
    """Where each measured bundle came from (so a reader can rebuild it)."""
    from fer_edge.bundle import read_bundle

    out = []
    for p in paths:
        m = read_bundle(p, verify=False).manifest
        src = m.provenance.get("source_model") or {}
        out.append({"path": p, "name": m.name, "format": m.format, "precision": m.precision,
                    "converted_by": m.provenance.get("converted_by", "fer-edge train" if m.format == "keras" else ""),
                    "source_model": src.get("path", ""), "source_sha256": src.get("sha256", "")[:12],
                    "convert_status": m.metrics.get("status", "")})
    return out


def render(report: BenchReport, data: dict, out: Path) -> dict:
    """Targets + Markdown + PNG from a report (also used by --render-only)."""
    model_name = next((r.name for r in report.results if r.role == "model" and r.status == OK), "")
    tg = targets(report, model_name, data.get("paired_tflite_1thread"), data.get("paired_e2e_1thread"))
    data["targets"] = tg
    install = data.get("runtime_only_install")
    write_json(out / "bench_cpu.json", data)
    pareto_png(report, out / "bench_cpu.png", title=f"{model_name} vs mini-Xception, FER2013 PrivateTest, this CPU")
    md = rep.to_markdown(report, title=f"CPU benchmark: {model_name} exports vs mini-Xception")
    command = report.settings.get("command", "")
    extra = [f"Command: `{command}` (model run: `{report.settings.get('model_run')}`)."]
    if data.get("note"):
        extra += ["", data["note"]]
    extra += ["", "## Targets", ""]
    extra += ["| target | measured | met |", "|---|---|---|"]
    extra += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |" for t in tg]
    paired = data.get("paired_tflite_1thread")
    if paired:
        rows = {p: best(report.results, name=model_name, format="tflite", precision=p, threads=1) for p in ("fp32", "int8")}
        drift = ""
        if all(rows.values()):
            lat = paired["latency"]
            drift = (f" In this run fp32 p50 was {rows['fp32'].latency.p50_ms:.3f} ms in its own process and "
                     f"{lat['fp32']['p50_ms']:.3f} ms interleaved; int8 {rows['int8'].latency.p50_ms:.3f} and "
                     f"{lat['int8']['p50_ms']:.3f} ms.")
        extra += ["", f"The int8/fp32 TFLite ratio comes from both bundles loaded in one fresh process and timed in "
                  f"{paired['rounds']} alternating rounds of {paired['calls_per_round']} `Classifier.run` calls each "
                  "(`fer_edge.bench.measure.interleaved`): each round's ratio compares the two under the same CPU state. "
                  "The table's rows are separate processes run one after another." + drift]
    e2e = data.get("paired_e2e_1thread")
    if e2e:
        peer = e2e["latency"]["mini-xception"]["p50_ms"]
        extra += ["", "## End to end from a face crop, 1 thread, interleaved", "",
                  "A 96x96 uint8 gray crop through `Classifier.predict_proba` (the bundle's resize, crop, test-time views "
                  f"and the model), {e2e['rounds']} alternating rounds of {e2e['calls_per_round']} calls in one fresh process:",
                  "", "| model | p50 ms | p90 ms | vs mini-Xception (median of rounds) |", "|---|---|---|---|"]
        for name, lat in e2e["latency"].items():
            ratio = e2e["ratios"].get(f"{name}/mini-xception", {}).get("median")
            extra.append(f"| {name} | {lat['p50_ms']:.3f} | {lat['p90_ms']:.3f} | "
                         f"{'1.00x' if name == 'mini-xception' else f'{ratio:.2f}x'} |")
        extra += ["", f"(mini-Xception p50 {peer:.3f} ms; `int8 flip` / `int8 ten_crop` run the shipped int8 model "
                  "with that test-time augmentation: the latency cost of each TTA option.)"]
    extra += ["", "## GPU", "", "not measured: no GPU on this machine. What each GPU path lacks:", ""]
    extra += [f"- {p['key']}: {p['detail']}" for p in report.gpu_probe]
    if install:
        extra += ["", "## Runtime-only install (`pip install fer-edge`, no extras, fresh venv)", ""]
        if install.get("ok"):
            extra += [f"- site-packages added: **{install['site_packages_mb']} MiB**; TensorFlow/Keras installed: "
                      f"{'YES' if install['tensorflow_installed'] else 'no'}; heavy modules after "
                      f"`import fer_edge.runtime`: {install['heavy_imports_after_import_fer_edge_runtime']}",
                      "- largest: " + ", ".join(f"{k} {v} MiB" for k, v in install["largest"].items()),
                      "- distributions: " + ", ".join(f"{k} {v}" for k, v in install["distributions"].items())]
        else:
            extra += [f"- install failed: {install['error']}"]
    if data.get("bundles"):
        extra += ["", "## Bundles measured", "", "| path | format | converted by | source model | convert status |",
                  "|---|---|---|---|---|"]
        extra += [f"| `{b['path']}` | {b['format']}-{b['precision']} | {b['converted_by']} | `{b['source_model']}` "
                  f"{b['source_sha256']} | {b['convert_status']} |" for b in data["bundles"]]
    md = md.replace("\n## ", "\n" + "\n".join(extra) + "\n\n## ", 1) if "\n## " in md else md + "\n".join(extra)
    with atomic_file(out / "bench_cpu.md") as fh:
        fh.write(md)
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a fer-edge train run folder with export/ (default: the first exported of runs/edge_long, edge_full, edge_quick)")
    ap.add_argument("--export", nargs="+", help="bundle folders to measure instead of <run>/export/*")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--paired-rounds", type=int, default=20, help="rounds of the interleaved fp32/int8 TFLite timing")
    ap.add_argument("--paired-calls", type=int, default=300, help="calls per model per round")
    ap.add_argument("--limit", type=int, default=None, help="score on a subset (default: the full test split)")
    ap.add_argument("--no-install", action="store_true", help="skip the runtime-only install measurement")
    ap.add_argument("--install-only", action="store_true")
    ap.add_argument("--render-only", action="store_true", help="re-render md/png/targets from bench_cpu.json")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--note", default="", help="a sentence for the report (e.g. where the bundles came from)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    install = None
    if not args.no_install and not args.render_only:
        with tempfile.TemporaryDirectory(prefix="fer-edge-install-") as tmp:
            print("measuring a runtime-only install (pip install fer-edge, no extras) ...", file=sys.stderr)
            install = runtime_install_size(Path(tmp))
        print(json.dumps(install, indent=2), file=sys.stderr)
        if args.install_only:
            write_json(args.out / "install_size.json", install)
            return 0
    if args.render_only:
        data = json.loads((args.out / "bench_cpu.json").read_text())
        data["note"] = args.note or data.get("note", "")
        report = BenchReport.from_dict(data)
        render(report, data, args.out)
        return 0
    run = pick_run(args.run, args.export)
    exports = args.export or [str(p.parent) for p in sorted(run.glob("export/*/manifest.json"))]
    paths = [str(run)] + exports  # the run folder is the Keras float reference bundle
    command = " ".join([Path(sys.executable).name, *sys.argv])
    opts = BenchOptions(devices=("cpu",), warmup=args.warmup, runs=args.runs, batch=args.batch, limit=args.limit,
                        baselines=("mini-xception",))
    report = run_bench(paths, opts, progress=lambda m: print(m, file=sys.stderr, flush=True))
    report.gpu_probe = [p.to_dict() for p in probe()]
    report.settings["command"] = command
    report.settings["model_run"] = str(run.relative_to(REPO)) if run.is_relative_to(REPO) else str(run)
    data = report.to_dict()
    data["runtime_only_install"] = install
    data["bundles"] = bundle_provenance(paths)
    data["note"] = args.note
    print("interleaved fp32 vs int8 TFLite latency (1 thread) ...", file=sys.stderr)
    data["paired_tflite_1thread"] = paired_tflite(run, args.paired_rounds, args.paired_calls)
    print("interleaved end-to-end latency vs mini-Xception (1 thread) ...", file=sys.stderr)
    from fer_edge.bench.baselines import wrap_baseline

    with tempfile.TemporaryDirectory(prefix="fer-edge-peer-") as tmp:
        peer = wrap_baseline("mini-xception", Path(tmp), include_float=False)[0]
        data["paired_e2e_1thread"] = paired_e2e(run, peer, args.paired_rounds, max(50, args.paired_calls // 3))
    data = render(report, data, args.out)
    print(rep.text_table(report))
    print(json.dumps(data["targets"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
