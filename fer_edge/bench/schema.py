"""The one results schema of `fer-edge bench` (JSON, CSV, Markdown and plots read it).

A report holds the settings, one environment per machine that ran something, the
GPU probe (when asked) and one ``BenchResult`` row per bundle x backend x threads.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA = "fer-edge/bench@1"

# Row statuses.
OK = "ok"
FAILED_VALIDATION = "exported-but-failed-validation"
FAILED = "failed"
NOT_MEASURED = "not measured"
STATUSES = (OK, FAILED_VALIDATION, FAILED, NOT_MEASURED)

# How the timings were obtained.
MEASURED = "measured"
EMULATED = "emulated"  # qemu user-mode: never a device timing


@dataclass
class Latency:
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Latency | None":
        return None if d is None else cls(**{f.name: d[f.name] for f in fields(cls)})


@dataclass
class BenchResult:
    """One measured (or not measurable) configuration."""

    bundle: str  # bundle folder as given
    name: str  # manifest name
    format: str
    precision: str
    backend: str  # litert | onnxruntime | openvino | keras | onnxruntime-cuda ...
    device: str  # cpu | gpu | rpi
    threads: int | None
    status: str
    error: str = ""
    role: str = "model"  # model | baseline
    machine: str = "host"  # key into BenchReport.environments
    timing: str = MEASURED  # measured | emulated
    backend_version: str = ""
    precision_hint: str | None = None  # OpenVINO's INFERENCE_PRECISION_HINT as compiled
    size_bytes: int | None = None  # the model files (model + weights), not the manifest
    # accuracy on the evaluation set
    eval_set: str = ""
    eval_n: int | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    reference: str = ""  # which row is the float reference for the deltas
    accuracy_delta: float | None = None
    macro_f1_delta: float | None = None
    # speed and memory
    latency: Latency | None = None  # model only, one image, preprocessed input ready
    latency_e2e: Latency | None = None  # uint8 face -> probabilities (bundle preprocessing + model)
    batch: int | None = None
    throughput_ips: float | None = None  # images/s at ``batch``
    first_inference_ms: float | None = None  # load (sha256 check, backend build) + first run
    rss_before_load_mb: float | None = None
    peak_rss_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        t = f" t{self.threads}" if self.threads else ""
        return f"{self.name} {self.format}-{self.precision} {self.backend}{t}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchResult":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["latency"] = Latency.from_dict(d.get("latency"))
        kw["latency_e2e"] = Latency.from_dict(d.get("latency_e2e"))
        return cls(**kw)


@dataclass
class BenchReport:
    device: str
    settings: dict[str, Any]
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[BenchResult] = field(default_factory=list)
    gpu_probe: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "created": self.created,
            "device": self.device,
            "settings": self.settings,
            "environments": self.environments,
            "gpu_probe": self.gpu_probe,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchReport":
        if d.get("schema") != SCHEMA:
            from ..errors import ConfigError

            raise ConfigError(f"bench results schema is {d.get('schema')!r}, expected {SCHEMA!r}")
        return cls(
            device=d["device"],
            settings=d.get("settings", {}),
            environments=d.get("environments", {}),
            results=[BenchResult.from_dict(r) for r in d.get("results", [])],
            gpu_probe=d.get("gpu_probe", []),
            created=d.get("created", ""),
        )

    def merge(self, other: "BenchReport") -> None:
        """Add another report's rows (e.g. fetched from a Pi) to this one."""
        self.environments.update(other.environments)
        self.results.extend(other.results)
        self.gpu_probe.extend(other.gpu_probe)
