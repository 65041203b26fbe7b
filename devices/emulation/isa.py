"""Each ISA path against x86: the bench runner's predictions on fixed FER2013 PrivateTest faces.

The bundles are staged exactly as ``fer-edge bench --device rpi`` stages them (the host
resizes the faces to the model's input), then the same standalone runner scores them on
x86-64 and inside each arm64 root, per TFLite interpreter and per emulated Pi CPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import roots


@dataclass(frozen=True)
class Interpreter:
    label: str
    venv: str  # inside the root
    pip: str  # pip install arguments, as the Pi set-up gives them
    dist: str
    releases: tuple[str, ...]


# tflite-runtime 2.14 is its last release: wheels up to cp311, built against numpy 1.x.
INTERPRETERS = (
    Interpreter("ai-edge-litert", "/opt/litert", "numpy ai-edge-litert", "ai-edge-litert", ("bookworm", "trixie")),
    Interpreter("tflite-runtime", "/opt/tflite-runtime", "'numpy<2' tflite-runtime", "tflite-runtime", ("bookworm",)),
)
X86_VENVS = roots.ROOTS / "x86-venvs"


def prepare(release: str, profile: roots.Profile) -> None:
    """Install (or upgrade to the latest) each interpreter in its own venv in the root, and on x86."""
    for it in INTERPRETERS:
        if release not in it.releases:
            continue
        cmd = (f"test -x {it.venv}/bin/python || python3 -m venv {it.venv}; "
               f"{it.venv}/bin/pip install -q --upgrade {it.pip} && {it.venv}/bin/python -c "
               f"'import numpy, platform; from importlib.metadata import version; "
               f"print(platform.machine(), platform.python_version(), \"numpy\", numpy.__version__, \"{it.dist}\", version(\"{it.dist}\"))'")
        proc = roots.run(release, cmd, profile, timeout=3600)
        print(proc.stdout.strip() or proc.stderr.strip()[-800:], flush=True)
        if proc.returncode != 0:
            raise SystemExit(f"{release}: installing {it.label} failed")
    for it in INTERPRETERS:
        venv = X86_VENVS / Path(it.venv).name
        if not (venv / "bin/python").exists():
            roots.sh(sys.executable, "-m", "venv", str(venv))
        roots.sh("/bin/sh", "-c", f"{venv}/bin/pip install -q --upgrade {it.pip}")


def stage_bundles(bundles: list[str], data: Path, limit: int, runs: int, folder: Path):
    """Stage ``bundles`` for the runner (bench's own staging); returns (spec jobs, truth)."""
    from fer_edge.bench.core import BenchOptions, Workspace
    from fer_edge.bench.remote import stage
    from fer_edge.bench.targets import read_targets

    options = BenchOptions(devices=("rpi",), host="arm64-emulation", threads=1, warmup=5, runs=runs, batch=8,
                           limit=limit, data=str(data))
    targets = read_targets(bundles)
    bad = [t for t in targets if not t.ok]
    if bad:
        raise SystemExit("; ".join(f"{t.path}: {t.error}" for t in bad))
    ws_dir = folder.parent / "ws"
    ws_dir.mkdir()
    jobs, truth, _ = stage(targets, Workspace(ws_dir, options), targets[0], options, folder, threads=[1])
    faces = [f for _, f, _ in truth.values()]
    if any(f is None or list(f.sources) != list(faces[0].sources) for f in faces):
        raise SystemExit("the staged bundles were not scored on the same faces")
    spec = json.loads((folder / "spec.json").read_text())
    for job in spec["jobs"]:
        job["save_probs"] = f"{job['id']}/probs.npy"
    (folder / "spec.json").write_text(json.dumps(spec))
    return spec["jobs"], truth


def _result(key: str, proc: subprocess.CompletedProcess, folder: Path, jobs, truth, seconds: float):
    import numpy as np

    from fer_edge.bench.remote import collect, parse_result

    res = parse_result(proc.stdout)
    if res is None or not res.get("ok"):
        err = (res or {}).get("error") or (proc.stderr.strip()[-600:] or f"exit {proc.returncode}")
        return {"ok": False, "error": err, "seconds": round(seconds, 1)}, {}
    rows = collect(res, truth, machine=key)
    out = {"ok": True, "seconds": round(seconds, 1), "environment": res["environment"], "rows": [
        {"bundle": str(r.bundle), "precision": r.precision, "status": r.status, "error": r.error, "timing": r.timing,
         "accuracy": r.accuracy, "p50_ms": r.latency.p50_ms if r.latency else None, "backend_version": r.backend_version}
        for r in rows]}
    probs = {job["id"]: np.load(folder / job["save_probs"]) for job in jobs if (folder / job["save_probs"]).exists()}
    return out, probs


def run(releases: list[str], profiles: list[roots.Profile], bundles: list[str], data: Path, limit: int,
        runs: int, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Score ``bundles`` on x86 and on each emulated CPU; ``progress(report)`` after each emulated run, so that a
    check stopped midway (each run takes minutes under qemu) keeps what it measured."""
    from fer_edge.metrics import agreement

    report: dict[str, Any] = {"bundles": bundles, "limit": limit, "runs": runs, "runs_by": {}, "comparison": [],
                              "cross_profile": []}
    probs: dict[tuple[str, str], Any] = {}
    with tempfile.TemporaryDirectory(prefix="fer-edge-isa-") as tmp:
        stage_dir = Path(tmp) / "stage"
        stage_dir.mkdir()
        jobs, truth = stage_bundles(bundles, data, limit, runs, stage_dir)
        report["faces"] = next(iter(truth.values()))[2]
        report["jobs"] = {j["id"]: str(truth[j["id"]][0].path) for j in jobs}
        report["names"] = {str(t.path): f"{t.manifest.name} {t.manifest.format}-{t.manifest.precision}"
                           for t, _, _ in truth.values()}
        for it in INTERPRETERS:  # x86-64 references, one per interpreter
            key = f"x86-64 {it.label}"
            folder = Path(tmp) / key.replace(" ", "_")
            shutil.copytree(stage_dir, folder)
            t0 = time.time()
            proc = subprocess.run([str(X86_VENVS / Path(it.venv).name / "bin/python"), "fer_edge_runner.py", "spec.json"],
                                  cwd=folder, capture_output=True, text=True)
            report["runs_by"][key], got = _result(key, proc, folder, jobs, truth, time.time() - t0)
            probs.update({(key, j): p for j, p in got.items()})
        for release in releases:
            for it in INTERPRETERS:
                if release not in it.releases:
                    continue
                for prof in profiles:  # one emulated run at a time: each takes both host cores
                    key = f"arm64 {release} {prof.name} {it.label}"
                    folder = Path(tmp) / key.replace(" ", "_")
                    shutil.copytree(stage_dir, folder)
                    t0 = time.time()
                    proc = roots.run(release, f"cd /bench && {it.venv}/bin/python fer_edge_runner.py spec.json", prof,
                                     (roots.Bind(folder, "/bench", read_only=False),), timeout=7200)
                    report["runs_by"][key], got = _result(key, proc, folder, jobs, truth, time.time() - t0)
                    print(f"  {key}: {'ok' if report['runs_by'][key]['ok'] else 'FAILED'} in {time.time() - t0:.0f} s "
                          "(emulated)", flush=True)
                    probs.update({(key, j): p for j, p in got.items()})
                    ref = f"x86-64 {it.label}"
                    for job in jobs:
                        a, b = probs.get((ref, job["id"])), probs.get((key, job["id"]))
                        if a is None or b is None:
                            continue
                        report["comparison"].append({
                            "bundle": report["jobs"][job["id"]], "release": release, "profile": prof.name,
                            "interpreter": it.label, "x86": ref, "arm64": key, "n": int(len(a)),
                            "predictions_equal": bool((a.argmax(1) == b.argmax(1)).all()),
                            "bit_identical": bool((a == b).all()), **agreement(a, b)})
                    if progress is not None:
                        progress(report)
        # Pi 4 vs Pi 5 CPU models: do the two kernel paths give the very same numbers?
        for release in releases:
            for it in INTERPRETERS:
                keys = [f"arm64 {release} {p.name} {it.label}" for p in profiles]
                for job in jobs:
                    got = [probs.get((k, job["id"])) for k in keys]
                    if len(got) < 2 or any(g is None for g in got):
                        continue
                    report["cross_profile"].append({
                        "bundle": report["jobs"][job["id"]], "release": release, "interpreter": it.label,
                        "profiles": [p.name for p in profiles], "bit_identical": bool((got[0] == got[1]).all()),
                        **agreement(got[0], got[1])})
    return report
