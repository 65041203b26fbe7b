"""`--device rpi`: run the standalone runner on a device over SSH and merge its rows.

The host does everything that needs OpenCV or fer_edge (reading the dataset, resizing
faces to the model's input, computing metrics); the device gets the model, its
manifest, the uint8 inputs and the runner, and times the interpreter itself.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..bundle import MANIFEST, InputSpec
from ..errors import ConfigError
from ..evaluation import nameable, score
from . import schema
from .profiles import load_profile
from .runner import EXIT_MISSING, MARKER, SHIPPED
from .schema import BenchResult, Latency
from .targets import validation_failure
from .ssh import SSH, RemoteError, remote_path

# Staging reads the evaluation set through the shared Workspace cache: one host thread at a time.
_STAGE_LOCK = threading.Lock()

# The runner and the fer_edge modules it imports, as copied beside it (runner.SHIPPED names them).
RUNNER_FILES = {"bench/runner.py": "fer_edge_runner.py",
                **{module.replace(".", "/") + ".py": f"{name}.py" for module, name in SHIPPED.items()}}


def model_input_u8(spec: InputSpec, images: np.ndarray) -> np.ndarray:
    """Faces resized/converted to the model's input as uint8; the device applies scale/offset.

    InputSpec.preprocess with identity normalization yields exact integers 0..255, so
    the device's ``x * scale - offset`` reproduces the host's float input bit for bit.
    """
    plain = dataclasses.replace(spec, scale=1.0, offset=(0.0,))
    return plain.preprocess(images).astype(np.uint8)


def stage_runner(folder: Path) -> None:
    package = Path(__file__).parents[1]
    for src, dst in RUNNER_FILES.items():
        shutil.copyfile(package / src, folder / dst)


def setup_commands(profile_name: str) -> list[str]:
    return list(load_profile(profile_name).install)


def perform_setup(ssh: SSH, profile_name: str, say: Callable[[str], None]) -> None:
    """Run the profile's install commands on the device (the same ones `--setup` prints; its
    fallback ones when an install fails), then check that numpy and an interpreter import."""
    prof = load_profile(profile_name)
    py = remote_path(prof.remote_python)
    check = (f"{py} -c 'import numpy; "
             "exec(\"try:\\n import ai_edge_litert.interpreter as m\\nexcept ImportError:\\n import tflite_runtime.interpreter as m\"); "
             "print(\"ok\", numpy.__version__, m.__name__)'")

    def run(cmd: str) -> tuple[bool, str]:
        say(f"{ssh.where}: {cmd}")
        proc = ssh.run(cmd, timeout=1800)  # the device's shell expands the profile's ~/ paths
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        out = proc.stdout.decode(errors="replace").strip().splitlines()
        return proc.returncode == 0, (err[-1] if err else str(proc.returncode)) if proc.returncode else (out[-1] if out else "done")

    for i, cmd in enumerate(prof.install):
        ok, msg = run(cmd)
        if not ok and i == len(prof.install) - 1 and prof.fallback_install:
            say(f"{ssh.where}: failed ({msg}); trying the fallback install")  # e.g. no ai-edge-litert wheel
            for cmd in prof.fallback_install:
                ok, msg = run(cmd)
                if not ok:
                    break
        if not ok:
            raise RemoteError(f"{ssh.where}: `{cmd}` failed: {msg}")
        say(msg)
    ok, msg = run(check)
    if not ok:
        raise RemoteError(f"{ssh.where}: the installed runtime does not import: {msg}")
    say(msg)


def stage(targets, ws, first_model, options, folder: Path, threads: list[int], formats=("tflite",)):
    """Write what the device needs into ``folder``: per bundle its model files, manifest and
    uint8 inputs, plus spec.json and the runner. Returns (jobs, truth, rows for skipped bundles)."""
    machine = machine_key(options)
    rows: list[BenchResult] = []
    jobs: list[dict[str, Any]] = []
    truth: dict[str, tuple[Any, Any, str]] = {}
    for t in targets:
        if not t.ok:
            rows.append(_row(t, "-", None, machine, status=schema.FAILED, error=t.error))
            continue
        if t.manifest.format not in formats:
            rows.append(_row(t, "-", None, machine, status=schema.NOT_MEASURED,
                             error=f"the {options.profile} profile runs {', '.join(formats)} bundles only, "
                                   f"not {t.manifest.format}"))
            continue
        jid = f"b{len(jobs)}"
        (folder / jid).mkdir()
        ev = ws.eval_files(t, first_model)
        faces = nameable(ev.faces, t.manifest.labels)[0] if ev.faces is not None else None
        images = np.asarray(faces.images) if faces is not None else np.load(ev.sample)
        np.save(folder / jid / "inputs.npy", model_input_u8(t.manifest.input, images))
        for name in t.manifest.files:
            shutil.copyfile(t.folder / name, folder / jid / name)
        shutil.copyfile(t.folder / MANIFEST, folder / jid / MANIFEST)
        jobs.append({"id": jid, "model": f"{jid}/{t.manifest.model_file}", "manifest": f"{jid}/{MANIFEST}",
                     "inputs": f"{jid}/inputs.npy", "threads": threads})
        truth[jid] = (t, faces, ev.description if faces is not None else ev.note)
    spec = {"jobs": jobs, "warmup": options.warmup, "runs": options.runs, "batch": options.batch}
    (folder / "spec.json").write_text(json.dumps(spec))
    stage_runner(folder)
    return jobs, truth, rows


def collect(result: dict[str, Any], truth, machine: str) -> list[BenchResult]:
    """The runner's JSON -> BenchResult rows (metrics computed here, on the host)."""
    rows: list[BenchResult] = []
    timing = result["environment"].get("timing") or schema.MEASURED
    for r in result["rows"]:
        t, faces, desc = truth[r["id"]]
        if not r.get("ok"):
            rows.append(_row(t, "litert", r.get("threads"), machine, status=schema.FAILED, error=r.get("error", "")))
            continue
        vfail = validation_failure(t.manifest)
        row = _row(t, "litert", r["threads"], machine, status=schema.FAILED_VALIDATION if vfail else schema.OK,
                   error=vfail, timing=timing)
        info = r.get("info", {})
        row.backend_version = info.get("backend_version", "")
        row.notes.append(f"interpreter: {info.get('backend_package')}; preprocessing (resize) done on the host")
        row.latency = Latency.from_dict(r["latency"])
        row.batch, row.throughput_ips = r["batch"], r["throughput_ips"]
        row.first_inference_ms, row.peak_rss_mb = r["first_inference_ms"], r["peak_rss_mb"]
        row.rss_before_load_mb = r.get("rss_before_load_mb")
        if "predictions" in r and faces is not None:
            m = score(faces.labels, np.asarray(r["predictions"]), faces.label_names, t.manifest.labels)
            row.accuracy, row.macro_f1, row.eval_n, row.eval_set = m["accuracy"], m["macro_f1"], m["n"], desc
        elif faces is None:
            row.notes.append(desc)
        rows.append(row)
    _share_accuracy(rows)
    return rows


def bench_remote(targets, ws, first_model, options, say) -> tuple[list[BenchResult], dict[str, dict[str, Any]]]:
    prof = load_profile(options.profile)
    if prof.device != "rpi":
        raise ConfigError(f"profile {options.profile!r} is not a Raspberry Pi profile")
    python = options.remote_python or prof.remote_python
    rdir = options.remote_dir or prof.remote_dir
    threads = [options.threads] if options.threads else sorted({1, prof.threads})
    ssh = SSH(options.host, options.port, options.ssh_config)
    machine = machine_key(options)
    with tempfile.TemporaryDirectory(prefix="fer-edge-remote-") as tmp:
        with _STAGE_LOCK:
            jobs, truth, rows = stage(targets, ws, first_model, options, Path(tmp), threads,
                                      prof.formats)
        if not jobs:
            return rows, {}
        say(f"{ssh.where}: copying {len(jobs)} bundle(s), inputs and the runner to {rdir} ...")
        ssh.upload_dir(Path(tmp), rdir)
    say(f"{ssh.where}: running the bench with {python} ({len(jobs) * len(threads)} runs) ...")
    d = remote_path(rdir)
    proc = ssh.run(f"cd {d} && {remote_path(python)} fer_edge_runner.py spec.json", timeout=options.worker_timeout * 4)
    result = parse_result(proc.stdout.decode(errors="replace"))
    stderr = proc.stderr.decode(errors="replace").strip()
    setup = f"fer-edge bench --device rpi --host {options.host} --setup"
    if proc.returncode == EXIT_MISSING or (result and result.get("error_kind") == "missing-package"):
        raise RemoteError(f"{ssh.where}: the runner cannot start: {result['error'] if result else stderr}; "
                          f"install it with: {setup}")
    if result is None and (proc.returncode == 127 or "not found" in stderr or "No such file" in stderr):
        raise RemoteError(f"{ssh.where}: {python} not found on the device ({stderr.splitlines()[-1] if stderr else ''}); "
                          f"run: {setup}, or pass --remote-python")
    if result is None or not result.get("ok"):
        last = stderr.splitlines()[-1] if stderr else f"exit code {proc.returncode}"
        raise RemoteError(f"{ssh.where}: the runner failed: {result.get('error') if result else last}")
    ssh.run(f"rm -rf {d}", timeout=120)
    new = collect(result, truth, machine)
    for row in new:
        say(f"      {row.name} {row.format}-{row.precision} threads={row.threads}: "
            + (f"p50 {row.latency.p50_ms:.3f} ms ({row.timing})" if row.latency else f"{row.status}: {row.error}"))
    return rows + new, {machine: result["environment"]}


def machine_key(options) -> str:
    """The environment key and table label of one device: rpi:HOST, or rpi:HOST:PORT with a port."""
    return f"rpi:{options.host}" + (f":{options.port}" if options.port else "")


def _share_accuracy(rows: list[BenchResult]) -> None:
    """Rows of the same bundle at other thread counts carry the first row's accuracy."""
    first: dict[str, BenchResult] = {}
    for r in rows:
        if r.accuracy is not None:
            first.setdefault(r.bundle, r)
        elif r.bundle in first and r.status == schema.OK:
            src = first[r.bundle]
            r.accuracy, r.macro_f1, r.eval_n, r.eval_set = src.accuracy, src.macro_f1, src.eval_n, src.eval_set
            r.notes.append(f"accuracy from the threads={src.threads} run")


def _row(t, backend, threads, machine, **kw) -> BenchResult:
    m = t.manifest
    return BenchResult(
        bundle=t.path, name=m.name if m else Path(t.path).name, format=m.format if m else "?",
        precision=m.precision if m else "?", backend=backend, device="rpi", threads=threads, role=t.role,
        machine=machine, size_bytes=t.size_bytes if m else None, **kw,
    )


def parse_result(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            try:
                return json.loads(line[len(MARKER):])
            except json.JSONDecodeError:
                return None
    return None
