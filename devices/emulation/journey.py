"""The Raspberry Pi user's journey, run in an emulated arm64 root and on x86 for reference.

The user builds (or downloads) the fer-edge wheel, installs it in a venv exactly as the
README's Raspberry Pi section says, and runs ``fer-edge doctor`` (when this build has it),
``predict`` on the shipped sample photo, ``live --headless`` on a video of real faces and a
local ``bench`` of the shipped bundles. The same commands run with the host's fer-edge, and
their outputs are compared: labels must be equal, probabilities may differ by a stated amount.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import roots

VENV = "/root/fer-edge-venv"  # the README's venv, as the Pi user makes it
WORK = "/tmp/fer-edge-journey"  # a host folder bound here: wheel, sample, video, outputs
SAMPLE = roots.REPO / "fer_edge" / "assets" / "samples" / "astronaut.jpg"
PROBE = Path(__file__).with_name("preprocess_probe.py")
NO_DOCTOR = "this build of fer-edge has no `doctor` command"
DISTRIBUTIONS = ("fer-edge", "numpy", "opencv-python-headless", "ai-edge-litert", "click")


def build_wheel(out: Path) -> Path:
    """The wheel a Pi user installs, built from this checkout on the host."""
    out.mkdir(parents=True, exist_ok=True)
    roots.sh(str(roots.REPO / ".venv/bin/pip"), "wheel", "--no-deps", "-q", "-w", str(out),
             str(roots.REPO))
    wheels = sorted(out.glob("fer_edge-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one fer-edge wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def make_video(path: Path) -> int:
    """60 frames of real faces (JAFFE and CK+ photos moving over a background, then two faces);
    the same clip the live tests use."""
    sys.path.insert(0, str(roots.REPO / "tests"))
    from test_live_support import make_face_video

    from fer_edge.paths import data_path

    return len(make_face_video(path, data_path("jaffe"), data_path("ckplus48")))


def commands(frames: int, runs: int, limit: int, data: str, models: str, fer_edge: str = "fer-edge") -> dict[str, str]:
    """The user's commands, the same on both machines (paths under WORK)."""
    return {
        "doctor": f"{fer_edge} doctor",
        "predict": f"{fer_edge} predict {WORK}/astronaut.jpg --json",
        "live": f"{fer_edge} live --source {WORK}/faces.avi --headless --frames {frames}",
        "bench": (f"{fer_edge} bench {models} --device cpu --threads 1 --warmup 5 --runs {runs} --batch 8 "
                  f"--limit {limit} --data {shlex.quote(data)} --json -"),
    }


def _step(name: str, proc: subprocess.CompletedProcess, seconds: float, command: str) -> dict[str, Any]:
    return {"step": name, "command": command, "exit": proc.returncode, "seconds": round(seconds, 1),
            "stdout": proc.stdout, "stderr_tail": "\n".join(proc.stderr.strip().splitlines()[-6:])}


def run_arm64(release: str, profiles: list[roots.Profile], work: Path, wheel: Path, shared: Path, frames: int,
              runs: int, limit: int) -> dict[str, Any]:
    """Install the wheel in a fresh venv inside the root, then run the user's commands per CPU profile."""
    binds = (roots.Bind(work, WORK, read_only=False), roots.Bind(shared, str(shared)))
    env = {"FER_EDGE_SHARED": str(shared)}
    out: dict[str, Any] = {"release": release, "install": {}, "profiles": {}}
    versions = ("import json, platform; from importlib.metadata import version; print(json.dumps("
                f"{{'python': platform.python_version(), 'packages': {{d: version(d) for d in {list(DISTRIBUTIONS)!r}}}}}))")
    install = (f"rm -rf {VENV} && python3 -m venv {VENV} && {VENV}/bin/pip install -q {WORK}/{wheel.name} && "
               f"{VENV}/bin/python -c {shlex.quote(versions)}")
    t0 = time.time()
    proc = roots.run(release, install, profiles[0], binds, env, timeout=3600)
    out["install"] = _step("install", proc, time.time() - t0,
                           f"python3 -m venv {VENV} && {VENV}/bin/pip install {wheel.name}")
    if proc.returncode != 0:
        return out
    out["install"]["versions"] = json.loads(proc.stdout.strip().splitlines()[-1])
    models = f"$({VENV}/bin/python -c 'import fer_edge.shipped as s; print(s.MODELS_DIR)')"
    data = str(shared / "data/fer2013/fer2013.csv.gz")
    cmds = commands(frames, runs, limit, data, models, f"{VENV}/bin/fer-edge")
    has_doctor = roots.run(release, f"{VENV}/bin/fer-edge doctor --help", profiles[0], binds, env, timeout=600).returncode == 0
    for prof in profiles:
        steps = {}
        for name, cmd in cmds.items():
            if name == "doctor" and not has_doctor:
                steps[name] = {"step": name, "command": cmd, "exit": None, "skipped": NO_DOCTOR}
                continue
            t0 = time.time()
            proc = roots.run(release, f"cd {WORK} && {cmd}", prof, binds, env, timeout=3600)
            steps[name] = _step(name, proc, time.time() - t0, cmd.replace(f"{VENV}/bin/", ""))
            print(f"  {release} {prof.name} {name}: exit {proc.returncode} in {time.time() - t0:.0f} s (emulated)", flush=True)
        probe = f"{WORK}/probe-{release}-{prof.name}"
        cmd = f"mkdir -p {probe} && {VENV}/bin/python {WORK}/{PROBE.name} {probe} {shlex.quote(data)} {limit} {WORK}/probe-x86"
        t0 = time.time()
        steps["probe"] = _step("probe", roots.run(release, cmd, prof, binds, env, timeout=3600), time.time() - t0, cmd)
        out["profiles"][prof.name] = steps
    return out


def run_x86(work: Path, shared: Path, frames: int, runs: int, limit: int) -> dict[str, Any]:
    """The same commands with this checkout's fer-edge on the x86 host (the reference)."""
    exe = str(roots.REPO / ".venv/bin/fer-edge")
    models = str(roots.REPO / "fer_edge/assets/models")
    cmds = commands(frames, runs, limit, str(shared / "data/fer2013/fer2013.csv.gz"), models, exe)
    steps: dict[str, Any] = {}
    env = {**os.environ, "FER_EDGE_SHARED": str(shared)}
    has_doctor = subprocess.run([exe, "doctor", "--help"], capture_output=True).returncode == 0
    for name, cmd in cmds.items():
        if name == "doctor" and not has_doctor:
            steps[name] = {"step": name, "command": cmd, "exit": None, "skipped": NO_DOCTOR}
            continue
        cmd = cmd.replace(WORK, str(work))
        t0 = time.time()
        proc = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, env=env, cwd=work, timeout=3600)
        steps[name] = _step(name, proc, time.time() - t0, cmd.replace(exe, "fer-edge"))
    (work / PROBE.name).write_bytes(PROBE.read_bytes())
    (work / "probe-x86").mkdir()
    cmd = [str(roots.REPO / ".venv/bin/python"), str(work / PROBE.name), str(work / "probe-x86"),
           str(shared / "data/fer2013/fer2013.csv.gz"), str(limit)]
    t0 = time.time()
    steps["probe"] = _step("probe", subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600),
                           time.time() - t0, " ".join(cmd))
    return steps


# ---- comparisons -------------------------------------------------------------------------

def predict_faces(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for img in json.loads(step["stdout"])["images"] for f in img["faces"]]


def compare_predict(x86: dict[str, Any], arm: dict[str, Any]) -> dict[str, Any]:
    a, b = predict_faces(x86), predict_faces(arm)
    out = {"faces_x86": len(a), "faces_arm64": len(b), "labels_equal": [f["label"] for f in a] == [f["label"] for f in b]}
    if len(a) == len(b):
        out["max_prob_diff"] = max((abs(fa["scores"][k] - fb["scores"][k]) for fa, fb in zip(a, b) for k in fa["scores"]),
                                   default=0.0)
        out["max_box_diff_px"] = max((abs(p - q) for fa, fb in zip(a, b) for p, q in zip(fa["box"], fb["box"])), default=0.0)
    out["x86"] = [(f["label"], f["score"]) for f in a]
    out["arm64"] = [(f["label"], f["score"]) for f in b]
    return out


def live_lines(step: dict[str, Any]) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in step["stdout"].splitlines() if line.startswith("{")]
    return [x for x in lines if x.get("type") == "frame"], next((x for x in lines if x.get("type") == "summary"), {})


def compare_live(x86: dict[str, Any], arm: dict[str, Any]) -> dict[str, Any]:
    fa, sa = live_lines(x86)
    fb, sb = live_lines(arm)
    out = {"frames_x86": len(fa), "frames_arm64": len(fb), "faces_x86": sa.get("faces"), "faces_arm64": sb.get("faces"),
           "frames_with_faces_x86": sa.get("frames_with_faces"), "frames_with_faces_arm64": sb.get("frames_with_faces")}
    same_count = labels_equal = 0
    prob = box = 0.0
    for a, b in zip(fa, fb):
        ka = sorted(a["faces"], key=lambda f: f["box"][0])
        kb = sorted(b["faces"], key=lambda f: f["box"][0])
        if len(ka) != len(kb):
            continue
        same_count += 1
        labels_equal += all(x["label"] == y["label"] for x, y in zip(ka, kb))
        for x, y in zip(ka, kb):
            prob = max(prob, max(abs(x["scores"][k] - y["scores"][k]) for k in x["scores"]))
            box = max(box, max(abs(p - q) for p, q in zip(x["box"], y["box"])))
    out.update(frames_same_face_count=same_count, frames_labels_equal=labels_equal, max_prob_diff=prob,
               max_box_diff_px=box, fps_arm64_emulated=sb.get("fps"), fps_x86=sa.get("fps"))
    return out


def bench_rows(step: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(step["stdout"])["results"]


def compare_bench(x86: dict[str, Any], arm: dict[str, Any]) -> list[dict[str, Any]]:
    key = lambda r: (Path(r["bundle"]).name, r["backend"], r["threads"])  # noqa: E731
    ref = {key(r): r for r in bench_rows(x86)}
    out = []
    for r in bench_rows(arm):
        x = ref.get(key(r), {})
        out.append({"bundle": Path(r["bundle"]).name, "backend": r["backend"], "status": r["status"],
                    "error": r.get("error", ""),
                    "timing": r.get("timing"), "accuracy_arm64": r.get("accuracy"), "accuracy_x86": x.get("accuracy"),
                    "eval_n": r.get("eval_n"), "p50_ms_emulated": (r.get("latency") or {}).get("p50_ms"),
                    "p50_ms_x86": (x.get("latency") or {}).get("p50_ms"), "backend_version": r.get("backend_version")})
    return out


def compare_preprocessing(x86: Path, arm: Path) -> dict[str, Any]:
    """Same faces? Same model input after OpenCV's resize? Same probabilities from the same input?"""
    import numpy as np

    load = lambda d, n: np.load(d / f"{n}.npy")  # noqa: E731
    xa, xb = load(x86, "inputs"), load(arm, "inputs")
    pa, pb, pc = load(x86, "probs"), load(arm, "probs"), load(arm, "probs_on_x86_inputs")
    return {
        "faces": int(len(xa)), "faces_equal": bool((load(x86, "faces") == load(arm, "faces")).all()),
        "input_pixels_differing": float((xa != xb).mean()), "max_input_diff": float(np.abs(xa - xb).max()),
        "predictions_differing": int((pa.argmax(1) != pb.argmax(1)).sum()), "max_prob_diff": float(np.abs(pa - pb).max()),
        "same_input_bit_identical": bool((pa == pc).all()), "same_input_max_prob_diff": float(np.abs(pa - pc).max()),
        "same_input_predictions_differing": int((pa.argmax(1) != pc.argmax(1)).sum()),
    }


def compare_all(j: dict[str, Any], work: Path) -> list[dict[str, Any]]:
    """Each emulated run's outputs against x86's, then the raw outputs are dropped (the doctor's kept)."""
    rows = []
    for root in j["arm64"]:
        for prof, steps in root["profiles"].items():
            row: dict[str, Any] = {"release": root["release"], "profile": prof}
            for name, fn in (("predict", compare_predict), ("live", compare_live), ("bench", compare_bench)):
                a, b = j["x86"].get(name), steps.get(name)
                if not (a and b and a["exit"] == 0 and b["exit"] == 0):
                    row[name] = {"error": f"{name} failed (x86 exit {a and a['exit']}, arm64 exit {b and b['exit']})"}
                    continue
                try:
                    row[name] = fn(a, b)
                except (ValueError, KeyError, IndexError) as exc:
                    row[name] = {"error": f"outputs could not be compared: {type(exc).__name__}: {exc}"}
            if j["x86"]["probe"]["exit"] == 0 and steps["probe"]["exit"] == 0:
                row["preprocessing"] = compare_preprocessing(work / "probe-x86", work / f"probe-{root['release']}-{prof}")
            else:
                row["preprocessing"] = {"error": f"probe failed: {steps['probe']['stderr_tail'] or j['x86']['probe']['stderr_tail']}"}
            rows.append(row)
    for steps in [j["x86"], *(s for root in j["arm64"] for s in root["profiles"].values())]:
        for name, step in steps.items():
            if name != "doctor":
                step.pop("stdout", None)
    for root in j["arm64"]:
        root["install"].pop("stdout", None)
    return rows
