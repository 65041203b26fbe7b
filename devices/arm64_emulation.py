#!/usr/bin/env python3
"""Prove the Raspberry Pi side on real ARM software: an arm64 Debian Bookworm root
(Raspberry Pi OS's base) under qemu user-mode emulation.

    sudo .venv/bin/python devices/arm64_emulation.py prepare           # root + runtimes (slow, once)
    sudo .venv/bin/python devices/arm64_emulation.py check BUNDLE...   # run the bench runner there

``prepare``: registers qemu-aarch64 with binfmt_misc by hand (no systemd here), builds
the root with ``debootstrap --arch=arm64``, mounts /proc and /sys, gives it the host's
CA bundle and pip settings, and installs the runtime from PyPI exactly as the Pi set-up
does: ``numpy ai-edge-litert`` in one venv, ``numpy tflite-runtime`` in another (its
wheels exist for Bookworm's Python 3.11).

``check``: stages the bundles exactly as ``fer-edge bench --device rpi`` does (the
host resizes the evaluation faces to the model's input), runs the same standalone
runner on x86 and inside the arm64 root with each interpreter, and compares
predictions and probabilities. Timings from the root are labelled "emulated" and are
never Pi timings. Writes a JSON report (and prints a Markdown summary).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("FER_EDGE_ARM64_ROOT", "/var/tmp/fer-edge-arm64-bookworm"))
MIRROR = os.environ.get("FER_EDGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
X86_VENVS = Path(os.environ.get("FER_EDGE_X86_VENVS", "/var/tmp/fer-edge-x86-venvs"))
QEMU = "/usr/bin/qemu-aarch64-static"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The standard qemu-aarch64 magic/mask (ELF64, little endian, e_machine 0xb7 = AArch64).
AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
# label -> (venv, pip install arguments, distribution). tflite-runtime 2.14 (the last with
# cp311 aarch64 wheels) is built against numpy 1.x: with numpy 2 it fails at load.
VENVS = {
    "ai-edge-litert": ("/opt/litert", "numpy ai-edge-litert", "ai-edge-litert"),
    "ai-edge-litert==1.4.0": ("/opt/litert14", "numpy ai-edge-litert==1.4.0", "ai-edge-litert"),
    "tflite-runtime": ("/opt/tflite-runtime", "'numpy<2' tflite-runtime", "tflite-runtime"),
}


def sh(*cmd: str, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def register_binfmt() -> None:
    if not (BINFMT / "register").exists():
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT))
    if (BINFMT / "qemu-aarch64").exists():
        return
    if not Path(QEMU).exists():
        sys.exit(f"{QEMU} missing: apt-get install qemu-user-static")
    # F (fix binary): the kernel opens the interpreter now, so it works inside the chroot.
    rule = f":qemu-aarch64:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{QEMU}:F"
    with open(BINFMT / "register", "w") as fh:
        fh.write(rule)
    print("registered qemu-aarch64 with binfmt_misc", flush=True)


def mount_pseudo() -> None:
    for fs, target in (("proc", ROOT / "proc"), ("sysfs", ROOT / "sys")):
        if subprocess.run(["mountpoint", "-q", str(target)]).returncode != 0:
            sh("mount", "-t", fs, fs, str(target))


def chroot(cmd: str, env: dict | None = None, capture: bool = False) -> subprocess.CompletedProcess:
    full = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_DEFAULT_TIMEOUT": "180", **(env or {})}
    print("+ chroot:", cmd, flush=True)
    exe = shutil.which("chroot") or "/usr/sbin/chroot"  # resolved with the host's PATH, not the root's
    return subprocess.run([exe, str(ROOT), "/bin/sh", "-c", cmd], env=full, check=not capture,
                          capture_output=capture, text=True)


def prepare() -> None:
    register_binfmt()
    if not (ROOT / ".fer-edge-debootstrap-done").exists():
        if not shutil.which("debootstrap"):
            sys.exit("debootstrap missing: apt-get install debootstrap")
        sh("debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
           "bookworm", str(ROOT), MIRROR)
        (ROOT / ".fer-edge-debootstrap-done").write_text(time.strftime("%F %T"))
    mount_pseudo()
    # The package index is reached through the host's CA bundle (a TLS-inspecting proxy here).
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", ROOT / "etc/ssl/certs/ca-certificates.crt")
    shutil.copyfile("/etc/resolv.conf", ROOT / "etc/resolv.conf")
    chroot("python3 --version && uname -m")
    # The same interpreter versions on x86-64, so arm64 is compared like for like.
    for label, (venv, pip_args, dist) in VENVS.items():
        xv = X86_VENVS / Path(venv).name
        if not (xv / ".fer-edge-ok").exists():
            sh(sys.executable, "-m", "venv", str(xv))
            sh("/bin/sh", "-c", f"{xv}/bin/pip install {pip_args} && touch {xv}/.fer-edge-ok")
    for label, (venv, pip_args, dist) in VENVS.items():
        if not (ROOT / venv.lstrip("/") / ".fer-edge-ok").exists():
            chroot(f"python3 -m venv {venv} && {venv}/bin/pip install {pip_args} && touch {venv}/.fer-edge-ok")
        chroot(f"{venv}/bin/python -c 'import numpy, platform; from importlib.metadata import version; "
               f"print(platform.machine(), \"numpy\", numpy.__version__, \"{dist}\", version(\"{dist}\"))'")


def check(bundles: list[str], limit: int, runs: int, out: Path) -> dict:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fer_edge.bench.core import BenchOptions, Workspace
    from fer_edge.bench.remote import collect, stage
    from fer_edge.bench.targets import read_targets
    from fer_edge.metrics import agreement

    register_binfmt()
    mount_pseudo()
    options = BenchOptions(devices=("rpi",), host="arm64-emulation", threads=1, warmup=5, runs=runs, batch=8,
                           limit=limit)
    with tempfile.TemporaryDirectory(prefix="fer-edge-arm64-") as tmp:
        tmp = Path(tmp)
        targets = read_targets(bundles)
        ws = Workspace(tmp / "ws", options)
        (tmp / "ws").mkdir()
        first = next((t for t in targets if t.ok), None)
        stage_dir = tmp / "stage"
        stage_dir.mkdir()
        jobs, truth, skipped = stage(targets, ws, first, options, stage_dir, threads=[1], formats=("tflite",))
        spec = json.loads((stage_dir / "spec.json").read_text())
        for job in spec["jobs"]:
            job["save_probs"] = f"{job['id']}/probs.npy"
        (stage_dir / "spec.json").write_text(json.dumps(spec))
        runs_out = {}
        # x86-64: the same runner with the host's interpreter and with each version used on arm64.
        x86_pythons = {"x86-64 host": sys.executable}
        x86_pythons.update({f"x86-64 {label}": str(X86_VENVS / Path(v).name / "bin" / "python")
                            for label, (v, _, _) in VENVS.items()})
        for key, py in x86_pythons.items():
            x86 = tmp / key.replace(" ", "_")
            shutil.copytree(stage_dir, x86)
            proc = subprocess.run([py, "fer_edge_runner.py", "spec.json"], cwd=x86, capture_output=True, text=True)
            runs_out[key] = (proc, x86)
        for pkg, (venv, _, _) in VENVS.items():
            inside = ROOT / "bench"
            shutil.rmtree(inside, ignore_errors=True)
            shutil.copytree(stage_dir, inside)
            t0 = time.time()
            proc = chroot(f"cd /bench && FER_EDGE_TIMING=emulated {venv}/bin/python fer_edge_runner.py spec.json",
                          capture=True)
            print(f"  arm64 {pkg}: {time.time() - t0:.0f} s, exit {proc.returncode}", flush=True)
            kept = tmp / f"arm64-{pkg}"
            shutil.copytree(inside, kept)
            runs_out[f"arm64 {pkg}"] = (proc, kept)
        report = {"root": str(ROOT), "limit": limit, "runs": runs, "bundles": bundles, "runs_by": {}, "comparison": []}
        probs = {}
        from fer_edge.bench.remote import parse_result

        for key, (proc, folder) in runs_out.items():
            res = parse_result(proc.stdout)
            if res is None or not res.get("ok"):
                report["runs_by"][key] = {"ok": False, "error": (res or {}).get("error") or proc.stderr[-800:]}
                continue
            rows = collect(res, truth, machine=key)
            report["runs_by"][key] = {
                "ok": True, "environment": res["environment"],
                "rows": [{"bundle": r.bundle, "precision": r.precision, "status": r.status, "error": r.error,
                          "timing": r.timing, "accuracy": r.accuracy, "p50_ms": r.latency.p50_ms if r.latency else None,
                          "interpreter": r.notes[:1]} for r in rows],
            }
            for job in spec["jobs"]:
                f = folder / job["save_probs"]
                if f.exists():
                    probs[(key, job["id"])] = np.load(f)
        pairs = [(f"x86-64 {label}", f"arm64 {label}") for label in VENVS] + [("x86-64 host", f"arm64 {label}") for label in VENVS]
        for job in spec["jobs"]:
            for ref, key in pairs:
                if (ref, job["id"]) not in probs or (key, job["id"]) not in probs:
                    continue
                a, b = probs[(ref, job["id"])], probs[(key, job["id"])]
                agr = agreement(a, b)
                report["comparison"].append({
                    "bundle": str(truth[job["id"]][0].path), "x86": ref, "against": key, "n": int(len(a)),
                    "predictions_equal": bool((a.argmax(1) == b.argmax(1)).all()), **agr,
                })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(report, " ".join(sys.argv)))
    print(json.dumps(report["comparison"], indent=2))
    return report


def markdown(report: dict, command: str) -> str:
    lines = ["# arm64 (Raspberry Pi OS base) under qemu user-mode emulation", "",
             f"Command: `{command}`; root: Debian Bookworm arm64 by debootstrap at `{report['root']}`; "
             f"{report['limit']} FER2013 PrivateTest faces (fixed random subset), {report['runs']} timed runs.", "",
             "Timings below marked *emulated* come from qemu on an x86 CPU: they are **not** Raspberry Pi timings.", "",
             "## Runs", "", "| run | Python / machine | bundle | status | accuracy | p50 ms | timing | interpreter / error |",
             "|---|---|---|---|---|---|---|---|"]
    for key, run in report["runs_by"].items():
        if not run["ok"]:
            lines.append(f"| {key} | - | - | failed: {run['error'][-200:]} | - | - | - | - |")
            continue
        env = run["environment"]
        who = f"{env['python']} / {env['machine']}"
        for r in run["rows"]:
            p50 = "-" if r["p50_ms"] is None else f"{r['p50_ms']:.3f}"
            acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            what = "; ".join(r["interpreter"]) if r["status"] == "ok" else r["error"]
            timing = r["timing"] if r["status"] == "ok" else "-"
            lines.append(f"| {key} | {who} | {Path(r['bundle']).name} | {r['status']} | {acc} | {p50} | {timing} | {what} |")
    lines += ["", "## Predictions vs x86-64 (same runner, same inputs)", "",
              "| bundle | x86-64 run | arm64 run | n | predictions equal | top-1 agreement | max abs prob diff |",
              "|---|---|---|---|---|---|---|"]
    for c in report["comparison"]:
        lines.append(f"| {Path(c['bundle']).name} | {c.get('x86', '')} | {c['against']} | {c['n']} | {'yes' if c['predictions_equal'] else 'NO'} | "
                     f"{c['top1_agreement']:.4f} | {c['max_abs_prob_diff']:.2e} |")
    envs = {k: v["environment"] for k, v in report["runs_by"].items() if v["ok"]}
    lines += ["", "## Environments", ""]
    for k, env in envs.items():
        pk = ", ".join(f"{n} {v}" for n, v in env.get("packages", {}).items())
        lines.append(f"- {k}: {env['os']}, Python {env['python']}, {env['machine']}, CPU as seen: {env['cpu_model']}; "
                     f"{pk}; timing label: {env.get('timing')}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare")
    c = sub.add_parser("check")
    c.add_argument("bundles", nargs="+")
    c.add_argument("--limit", type=int, default=300, help="evaluation faces (emulation is ~10-50x slower)")
    c.add_argument("--runs", type=int, default=30)
    c.add_argument("--out", type=Path, default=Path("benchmarks/results/arm64_emulation.json"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (binfmt_misc, debootstrap, chroot)")
    if args.cmd == "prepare":
        prepare()
    else:
        check(args.bundles, args.limit, args.runs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
