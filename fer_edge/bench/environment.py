"""Describe the machine a benchmark ran on: stdlib only (also copied to a remote)."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

# Distributions whose versions matter for the numbers (looked up, never imported).
RUNTIME_PACKAGES = (
    "numpy",
    "ai-edge-litert",
    "tflite-runtime",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "tensorflow",
    "keras",
    "opencv-python-headless",
    "fer-edge",
)


def cpu_model() -> str:
    """The CPU's marketing name (or the Pi's board model when /proc/cpuinfo has none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def board_model() -> str:
    """Raspberry Pi (and other device-tree boards) report their model here."""
    try:
        with open("/proc/device-tree/model", "rb") as fh:
            return fh.read().rstrip(b"\x00").decode(errors="replace")
    except OSError:
        return ""


def package_versions(names: tuple[str, ...] = RUNTIME_PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def capture(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready description of this machine and its Python."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        load = [round(x, 2) for x in os.getloadavg()]  # a busy machine makes percentiles noisy
    except (AttributeError, OSError):
        load = None
    env = {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "board": board_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count() or 1,
        "usable_cores": usable,
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
        "load_average": load,
    }
    if extra:
        env.update(extra)
    return env
