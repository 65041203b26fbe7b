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


def timing_label(machine: str | None = None, cpuinfo: str = "/proc/cpuinfo",
                 midr: str = "/sys/devices/system/cpu/cpu0/regs/identification/midr_el1") -> str:
    """'emulated' for an ARM Python under qemu user-mode, else 'measured'; $FER_EDGE_TIMING overrides.

    qemu-user runs the ARM program on the x86 kernel: /proc/cpuinfo is the host's (no ARM
    implementer) unless a Pi's was bind-mounted over it, and /sys never has the ID register
    every arm64 kernel exports, so either sign means the timings are not the device's.
    """
    if os.environ.get("FER_EDGE_TIMING"):
        return os.environ["FER_EDGE_TIMING"]
    machine = (machine or platform.machine()).lower()
    if machine not in ("aarch64", "arm64", "armv7l", "armv8l"):
        return "measured"
    try:
        with open(cpuinfo) as fh:
            if "CPU implementer" not in fh.read():
                return "emulated"
    except OSError:
        return "measured"
    if machine in ("aarch64", "arm64") and not os.path.exists(midr):
        return "emulated"
    return "measured"


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
        "timing": timing_label(),
    }
    if extra:
        env.update(extra)
    return env
