"""`fer-edge bench`: measure bundles on cpu / gpu / rpi and return one BenchReport.

Each configuration (bundle x backend x threads) runs in a fresh worker process,
so its peak memory and time to first inference are its own. The evaluation set
is read once here and handed to workers as a .npz file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from ..data import FaceDataset, save_npz
from ..errors import ConfigError, DataError
from ..runtime.backends import BACKENDS
from . import environment, schema
from ..data import names_data, provenance_data
from .evalset import eval_faces, eval_key
from .profiles import DEVICES
from .schema import BenchReport, BenchResult, Latency
from .targets import Target, convert_reference, read_targets, validation_failure

# Float reference preference when computing accuracy deltas.
REFERENCE_FORMATS = ("keras", "tflite", "onnx", "openvino")

Progress = Callable[[str], None]


@dataclass
class BenchOptions:
    devices: tuple[str, ...] = ("cpu",)
    threads: int | None = None  # None: 1 and all cores (cpu), the profile's (rpi)
    warmup: int = 20
    runs: int = 200
    batch: int = 32
    data: str | None = None
    kind: str | None = None  # the reader of --data (detected when None)
    limit: int | None = None
    baselines: tuple[str, ...] = ()
    peer_float: bool = True  # also run a peer's float original (Keras) when keras is installed
    host: str | None = None  # rpi: USER@HOST or an ~/.ssh/config alias
    port: int | None = None  # rpi: the port of hosts that name none
    hosts: tuple = ()  # rpi: several devices (fleet.Host), benchmarked in parallel
    ssh_config: str | None = None
    profile: str = "rpi4"
    remote_python: str | None = None
    remote_dir: str | None = None  # default: the profile's (~/.fer-edge/bench)
    worker_timeout: float = 1800.0
    tta: str | None = None  # test-time augmentation for every row (default: each bundle's own)

    def check(self) -> None:
        bad = [d for d in self.devices if d not in DEVICES]
        if bad or not self.devices:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, not {', '.join(bad) or 'nothing'}")
        for name, value, low in (("--warmup", self.warmup, 0), ("--runs", self.runs, 1), ("--batch", self.batch, 1)):
            if value < low:
                raise ConfigError(f"{name} must be >= {low}, got {value}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.data and not Path(self.data).exists():
            raise ConfigError(f"--data {self.data}: no such file or folder")
        if self.kind and not self.data:
            raise ConfigError("--kind names the reader of --data; give --data too")
        if self.tta and "rpi" in self.devices:  # the standalone Pi runner runs one view
            raise ConfigError("--tta is measured on cpu and gpu; the Raspberry Pi runner runs one view per face")
        if "rpi" in self.devices and not self.rpi_hosts():
            raise ConfigError("--device rpi needs --host USER@HOST (or a Host alias from ~/.ssh/config) or --hosts FILE")
        if self.rpi_hosts() and "rpi" not in self.devices:
            raise ConfigError("--host/--hosts are only used with --device rpi")
        from .fleet import check_unique

        check_unique(self.rpi_hosts())

    def rpi_hosts(self) -> list:
        """The devices of --device rpi: ``hosts``, or the single ``host``/``port``."""
        from .fleet import Host

        if self.hosts:
            return list(self.hosts)
        return [Host(self.host, self.port)] if self.host else []

    def settings(self) -> dict[str, Any]:
        return {
            "devices": list(self.devices), "threads": self.threads, "warmup": self.warmup, "runs": self.runs,
            "batch": self.batch, "data": self.data, "kind": self.kind, "limit": self.limit, "baselines": list(self.baselines),
            "host": self.host, "port": self.port,
            "hosts": [dict(name=h.name, port=h.port, profile=h.profile) for h in self.hosts],
            "profile": self.profile if "rpi" in self.devices else None,
            "timer": "time.perf_counter_ns", "memory": "peak RSS (VmHWM) of a fresh process per row",
        }


def thread_counts(requested: int | None, cores: int) -> list[int]:
    if requested:
        return [requested]
    return sorted({1, cores})


def cpu_backends(fmt: str) -> list[str]:
    """Every runtime that can run this format on a CPU (keras for float references)."""
    if fmt == "keras":
        return ["keras"]
    return [name for name, entry in BACKENDS.items() if fmt in entry.formats]


class EvalFiles(NamedTuple):
    """What the workers of one target get: its evaluation faces (None: not measurable, see ``note``),
    their description and .npz file, and a .npy sample of faces for timing."""

    faces: FaceDataset | None
    description: str
    npz: Path | None
    sample: Path
    note: str


class Workspace:
    """Temp files shared by the workers of one run: evaluation sets and samples."""

    def __init__(self, root: Path, options: BenchOptions):
        self.root = root
        self.options = options
        self._sets: dict[str, EvalFiles] = {}

    def eval_files(self, target: Target, fallback: Target | None) -> EvalFiles:
        # Peers are scored on the same test set (and selector) as our model.
        manifest = fallback.manifest if (target.role == "baseline" and fallback is not None) else target.manifest
        try:
            prov = provenance_data(manifest)
            if not prov and not self.options.data:
                raise DataError(f"{target.path} names no evaluation data in its provenance; pass --data PATH")
            key = eval_key(manifest, self.options.data, self.options.limit, self.options.kind)
            if key not in self._sets:
                faces, description = eval_faces(manifest, self.options.data, self.options.limit, self.options.kind)
                i = len(self._sets)
                sample = self.root / f"sample{i}.npy"
                np.save(sample, np.asarray(faces.images[: max(1, min(32, self.options.batch))]))
                self._sets[key] = EvalFiles(faces, description, save_npz(faces, self.root / f"eval{i}.npz"), sample, "")
            return self._sets[key]
        except DataError as exc:
            if self.options.data:  # the user's own --data must be readable: never a silent "-"
                what = str(exc) if str(exc).startswith(str(self.options.data)) else f"{self.options.data}: {exc}"
                raise DataError(f"--data {what}") from None
            sample = self.root / "sample-random.npy"
            if not sample.exists():
                # No data: time on fixed random faces; accuracy is then not measured.
                np.save(sample, np.random.default_rng(0).integers(0, 256, (32, 48, 48), dtype=np.uint8))
            return EvalFiles(None, "", None, sample, f"accuracy not measured: {exc}")


def _run_worker(spec: dict[str, Any], root: Path, index: int | str, timeout: float, device: str) -> dict[str, Any]:
    spec_path, out_path = root / f"spec{index}.json", root / f"out{index}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"  # a cpu row must never run on a GPU
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fer_edge.bench.worker", str(spec_path), str(out_path)],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    if out_path.is_file():
        return json.loads(out_path.read_text())
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return {"ok": False, "error": f"worker died with exit code {proc.returncode}: {tail or 'no output'}"}


def _row(target: Target, backend: str, device: str, threads: int | None, **kw: Any) -> BenchResult:
    m = target.manifest
    return BenchResult(
        bundle=target.path,
        name=m.name if m else Path(target.path).name,
        format=m.format if m else "?",
        precision=m.precision if m else "?",
        backend=backend,
        device=device,
        threads=threads,
        role=target.role,
        size_bytes=target.size_bytes if m else None,
        **kw,
    )


def _apply(row: BenchResult, res: dict[str, Any]) -> None:
    info = res.get("info", {})
    row.backend_version = info.get("backend_version", "")
    if info.get("backend_package") and info.get("backend_package") != row.backend:
        row.notes.append(f"interpreter: {info['backend_package']}")
    row.precision_hint = info.get("precision_hint")
    row.latency = Latency.from_dict(res.get("latency"))
    row.latency_e2e = Latency.from_dict(res.get("latency_e2e"))
    row.batch = res.get("batch")
    row.throughput_ips = res.get("throughput_ips")
    row.first_inference_ms = res.get("first_inference_ms")
    row.rss_before_load_mb = res.get("rss_before_load_mb")
    row.peak_rss_mb = res.get("peak_rss_mb")
    for key in ("accuracy", "macro_f1", "eval_n", "eval_set"):
        if res.get(key) is not None:
            setattr(row, key, res[key])


def run_bench(paths: list[str], options: BenchOptions, progress: Progress | None = None) -> BenchReport:
    """Measure ``paths`` (bundle folders, or folders of bundles) on ``options.devices``."""
    options.check()
    missing = [p for p in paths if not Path(p).exists()]
    if missing:  # a typo: said before anything is measured (a broken bundle gets a failed row instead)
        raise ConfigError(f"{missing[0]}: no such bundle or folder")
    say = progress or (lambda msg: None)
    report = BenchReport(device=",".join(options.devices), settings=options.settings())
    report.environments["host"] = environment.capture()
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        root = Path(tmp)
        targets = read_targets(paths)
        for name in options.baselines:
            from .baselines import wrap_baseline

            folders = wrap_baseline(name, root / "baselines", include_float=None if options.peer_float else False)
            for t in read_targets([str(p) for p in folders], role="baseline"):
                t.path = f"peer:{Path(t.path).name}"  # the wrapped bundle lives in a temp folder
                targets.append(t)
        if not targets:
            raise ConfigError("no bundles to benchmark")
        if not any(t.ok for t in targets):  # nothing to measure: an error, not a table of failures
            raise ConfigError("; ".join(t.error for t in targets))
        ws = Workspace(root, options)
        first_model = next((t for t in targets if t.ok and t.role == "model" and provenance_data(t.manifest)), None)
        for device in options.devices:
            if device == "cpu":
                report.results += _bench_cpu(targets, ws, first_model, options, say)
            elif device == "gpu":
                from .gpu import probe

                say("probing GPU runtimes ...")
                paths_found = probe()
                report.gpu_probe = [p.to_dict() for p in paths_found]
                report.results += _bench_gpu(targets, ws, first_model, options, paths_found, say)
            else:
                from .fleet import bench_fleet

                rows, envs = bench_fleet(targets, ws, first_model, options, say)
                report.results += rows
                report.environments.update(envs)
    report.environments["host"]["load_average_end"] = environment.capture()["load_average"]
    # convert's recorded float accuracy is for the bundle's whole test split: a reference only when that was scored
    recorded = {str(t.path): t.manifest for t in targets
                if t.ok and options.limit is None and names_data(provenance_data(t.manifest), options.data)}
    add_deltas(report.results, recorded)
    return report


def _failed_rows(t: Target, device: str) -> list[BenchResult]:
    return [_row(t, "-", device, None, status=schema.FAILED, error=t.error)]


def _measure(t: Target, backend: str, device: str, threads: int | None, ws: Workspace, first_model: Target | None,
             options: BenchOptions, evaluate: bool, index: int | str, extra_spec: dict[str, Any] | None = None) -> BenchResult:
    ev = ws.eval_files(t, first_model)
    spec = {
        "bundle": str(t.folder), "backend": backend, "threads": threads, "warmup": options.warmup,
        "runs": options.runs, "batch": options.batch, "sample": str(ev.sample), "device": device,
        "evalset": str(ev.npz) if (ev.npz and evaluate) else None, "eval_set": ev.description, **(extra_spec or {}),
        **({"tta": options.tta} if options.tta else {}),
    }
    res = _run_worker(spec, ws.root, index, options.worker_timeout, device)
    vfail = validation_failure(t.manifest)
    if not res.get("ok"):
        status = schema.NOT_MEASURED if res.get("not_installed") else schema.FAILED  # no runtime here, not a bad model
        return _row(t, backend, device, threads, status=status, error=res.get("error", "unknown error"))
    row = _row(t, backend, device, threads, status=schema.FAILED_VALIDATION if vfail else schema.OK, error=vfail,
               timing=environment.timing_label())  # 'emulated' under qemu: never a device timing
    _apply(row, res)
    if ev.note:
        row.notes.append(ev.note)
    tta = res.get("info", {}).get("tta", "none")
    if tta != "none":  # e2e latency and accuracy average the views; `latency` stays one view
        row.notes.append(f"test-time augmentation: {tta}")
    return row


def _bench_cpu(targets, ws, first_model, options, say) -> list[BenchResult]:
    cores = os.cpu_count() or 1
    plan = []
    for t in targets:
        if not t.ok:
            plan.append((t, None, None))
            continue
        for backend in cpu_backends(t.manifest.format):
            for n in thread_counts(options.threads, cores):
                plan.append((t, backend, n))
    rows: list[BenchResult] = []
    evaluated: dict[tuple[str, str], BenchResult] = {}
    for i, (t, backend, n) in enumerate(plan, 1):
        if backend is None:
            say(f"[{i}/{len(plan)}] {t.path}: cannot read: {t.error}")
            rows += _failed_rows(t, "cpu")
            continue
        key = (str(t.folder), backend)
        say(f"[{i}/{len(plan)}] {t.manifest.name} {t.manifest.format}-{t.manifest.precision} {backend} threads={n} ...")
        row = _measure(t, backend, "cpu", n, ws, first_model, options, evaluate=key not in evaluated, index=i)
        if key in evaluated and evaluated[key].accuracy is not None:
            src = evaluated[key]
            row.accuracy, row.macro_f1, row.eval_n, row.eval_set = src.accuracy, src.macro_f1, src.eval_n, src.eval_set
            row.notes.append(f"accuracy from the threads={src.threads} run")
        elif row.status != schema.FAILED:
            evaluated[key] = row
        say("      " + summary(row))
        rows.append(row)
    return rows


def _bench_gpu(targets, ws, first_model, options, paths_found, say) -> list[BenchResult]:
    rows: list[BenchResult] = []
    for t in targets:
        if not t.ok:
            rows += _failed_rows(t, "gpu")
            continue
        for gp in paths_found:
            if t.manifest.format not in gp.formats:
                continue
            if not gp.available:
                row = _row(t, gp.key, "gpu", None, status=schema.NOT_MEASURED, error=gp.detail)
                say(f"{t.manifest.name} {t.manifest.format}-{t.manifest.precision} {gp.key}: not measured ({gp.detail})")
                rows.append(row)
                continue
            extra, backend = {}, gp.runtime
            if gp.key == "onnxruntime-cuda":
                extra["providers"] = ["CUDAExecutionProvider"]
            elif gp.key == "onnxruntime-tensorrt":
                extra["providers"] = ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
            elif gp.key == "openvino-gpu":
                rows.append(_row(t, gp.key, "gpu", None, status=schema.NOT_MEASURED,
                                 error="fer_edge.runtime.load has no OpenVINO device option; OpenVINO runs on CPU only"))
                continue
            say(f"{t.manifest.name} {t.manifest.format}-{t.manifest.precision} {gp.key} ...")
            # "g" keeps these workers' temp files apart from the cpu rows'.
            row = _measure(t, backend, "gpu", options.threads, ws, first_model, options, True, f"g{len(rows)}", extra)
            row.backend = gp.key
            say("      " + summary(row))
            rows.append(row)
    return rows


def add_deltas(rows: list[BenchResult], manifests: dict | None = None) -> None:
    """Accuracy and macro-F1 deltas against the group's float reference (same model name).

    The reference is an fp32 row of this run (Keras first); failing that, the float
    accuracy convert recorded in the manifest, used only when this run scored the full
    test split (``manifests`` is empty under --limit).
    """
    groups: dict[str, list[BenchResult]] = {}
    for r in rows:
        groups.setdefault(r.name, []).append(r)
    for group in groups.values():
        refs = [r for r in group if r.precision == "fp32" and r.accuracy is not None and r.status != schema.FAILED]
        refs.sort(key=lambda r: (r.device != "cpu", REFERENCE_FORMATS.index(r.format) if r.format in REFERENCE_FORMATS else 9))
        if refs:
            ref_acc, ref_f1, ref_name = refs[0].accuracy, refs[0].macro_f1, f"{refs[0].format}-fp32 ({refs[0].backend})"
        else:
            recorded = [convert_reference(manifests[r.bundle]) for r in group if manifests and r.bundle in manifests]
            recorded = [x for x in recorded if x]
            if not recorded:
                continue
            ref_acc, ref_f1, ref_name = recorded[0]["accuracy"], recorded[0]["macro_f1"], "keras-fp32 (recorded by convert)"
        for r in group:
            if r.accuracy is None:
                continue
            r.reference = ref_name
            r.accuracy_delta = r.accuracy - ref_acc
            r.macro_f1_delta = (r.macro_f1 - ref_f1) if r.macro_f1 is not None and ref_f1 is not None else None


def summary(row: BenchResult) -> str:
    if row.status in (schema.FAILED, schema.NOT_MEASURED):
        return f"{row.status}: {row.error}"
    parts = [row.status]
    if row.latency:
        parts.append(f"p50 {row.latency.p50_ms:.3f} ms")
    if row.throughput_ips:
        parts.append(f"{row.throughput_ips:.0f} img/s @ {row.batch}")
    if row.accuracy is not None:
        parts.append(f"acc {row.accuracy:.4f}")
    if row.peak_rss_mb:
        parts.append(f"peak RSS {row.peak_rss_mb:.0f} MiB")
    return ", ".join(parts)
