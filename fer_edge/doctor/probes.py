"""What `fer-edge doctor` reads from the machine, one function per fact.

Each probe returns plain data and never raises for a missing piece; the checks (checks.py) turn the
data into verdicts. Tests replace these functions to simulate other machines (a Pi 4, tflite-runtime
under numpy 2, a camera without permission...). Model inference runs in a child process
(``python -m fer_edge.doctor.infer``) so a backend that crashes or breaks on import cannot take the
doctor down with it.
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

INFER_TIMEOUT_S = 180.0


def system() -> dict[str, Any]:
    return {
        "os": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_path": sys.executable,
        "distro": _os_release().get("PRETTY_NAME", ""),
        "board": read_text("/proc/device-tree/model").strip("\x00 \n"),
        "bits": 64 if sys.maxsize > 2**32 else 32,
    }


def _os_release() -> dict[str, str]:
    out = {}
    for line in read_text("/etc/os-release").splitlines():
        k, _, v = line.partition("=")
        if k:
            out[k] = v.strip().strip('"')
    return out


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def version(dist: str) -> str | None:
    """The installed version of a distribution (pip name), or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def cpuinfo() -> dict[str, Any]:
    """CPU model and feature flags from /proc/cpuinfo ("flags" on x86, "Features" on ARM)."""
    text = read_text("/proc/cpuinfo")
    flags: set[str] = set()
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags |= set(value.split())
        elif key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key == "cpu part" and not model:
            model = f"ARM part {value.strip()}"
    return {"model": model, "flags": sorted(flags), "machine": platform.machine()}


# CPU flags of native bfloat16 arithmetic (x86 AVX512-BF16 / AMX, ARMv8.6 BF16): without one, TensorFlow
# emulates bfloat16 and mixed_bfloat16 can train slower than float32.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def native_bf16(cpu: dict[str, Any]) -> bool | None:
    """Whether the CPU has native bfloat16 arithmetic; None when its flags are unknown (no /proc/cpuinfo: macOS, Windows)."""
    return bool(set(cpu["flags"]) & set(NATIVE_BF16_FLAGS)) if cpu.get("flags") else None


def threads() -> dict[str, Any]:
    """Logical CPUs, the ones this process may run on, and a cgroup CPU quota (containers)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    quota = None
    cpu_max = read_text("/sys/fs/cgroup/cpu.max").split()
    if len(cpu_max) == 2 and cpu_max[0] != "max":
        try:
            quota = int(cpu_max[0]) / int(cpu_max[1])
        except (ValueError, ZeroDivisionError):
            quota = None
    return {"logical": os.cpu_count() or 1, "usable": usable, "cgroup_quota": quota}


def video_devices() -> list[dict[str, Any]]:
    """/dev/video* nodes and whether this user may open them."""
    out = []
    for path in sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p)):
        out.append({"path": path, "readable": os.access(path, os.R_OK | os.W_OK),
                    "name": read_text(f"/sys/class/video4linux/{Path(path).name}/name").strip()})
    return out


def libcamera() -> dict[str, Any]:
    """The Pi camera stack: the picamera2 and libcamera Python modules and the rpicam/libcamera apps."""
    return {
        "picamera2": has_module("picamera2"),
        "picamera2_version": version("picamera2"),
        "libcamera_module": has_module("libcamera"),
        "apps": [name for name in ("rpicam-hello", "libcamera-hello") if shutil.which(name)],
    }


def opencv() -> dict[str, Any]:
    """OpenCV's version, its Haar cascade folder, video I/O backends and GUI, and which pip builds are installed."""
    dists = {d: version(d) for d in ("opencv-python-headless", "opencv-python", "opencv-contrib-python",
                                      "opencv-contrib-python-headless")}
    info: dict[str, Any] = {"dists": {k: v for k, v in dists.items() if v}}
    try:
        import cv2
    except Exception as exc:  # noqa: BLE001 - a broken install is what we report
        info["error"] = f"{type(exc).__name__}: {exc}"
        return info
    info["version"] = cv2.__version__
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    info["haar"] = str(Path(folder) / "haarcascade_frontalface_default.xml") if folder else None
    info["haar_exists"] = bool(folder) and (Path(folder) / "haarcascade_frontalface_default.xml").is_file()
    info["yunet_api"] = hasattr(cv2, "FaceDetectorYN")
    try:
        from cv2 import videoio_registry as reg

        def names(ids):
            return [reg.getBackendName(b) for b in dict.fromkeys(ids) if reg.hasBackend(b)]

        info["backends"] = {"camera": names(reg.getCameraBackends()), "file": names(reg.getStreamBackends())}
    except Exception as exc:  # noqa: BLE001
        info["backends_error"] = f"{type(exc).__name__}: {exc}"
    gui = [ln.split(":", 1)[1].strip() for ln in cv2.getBuildInformation().splitlines() if ln.strip().startswith("GUI:")]
    info["gui"] = gui[0] if gui else "unknown"
    return info


def shipped() -> list[dict[str, Any]]:
    """Each shipped bundle: its files' sha256 (as found and as the manifest says) and whether they verify."""
    from ..bundle import read_bundle, sha256_file
    from ..errors import ModelError
    from ..shipped import shipped_bundles

    out = []
    for fmt, folder in shipped_bundles().items():
        row: dict[str, Any] = {"format": fmt, "path": str(folder)}
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            row["files"] = {name: {"expected": digest, "actual": sha256_file(folder / name)
                                   if (folder / name).is_file() else None}
                            for name, digest in manifest.get("files", {}).items()}
            read_bundle(folder, verify=True)
            row["verified"] = True
        except (ModelError, OSError, ValueError) as exc:
            row["verified"] = False
            row["error"] = str(exc)
        out.append(row)
    return out


def evaluation_data() -> dict[str, Any]:
    """The data root, where it comes from, and whether the dataset the shipped model's provenance names is there
    (bench and the model card score the shipped model on it)."""
    from .. import paths
    from ..data.provenance import resolve_path
    from ..errors import DataError
    from ..shipped import shipped_bundles

    root = paths.data_root()
    out: dict[str, Any] = {"data_root": str(root) if root else None, "source": paths.data_root_source()}
    bundles = shipped_bundles()
    if bundles:
        named = json.loads((next(iter(bundles.values())) / "manifest.json").read_text())
        out["shipped_data"] = named.get("provenance", {}).get("data", {}).get("path")
        try:
            found = resolve_path(out["shipped_data"], None) if out["shipped_data"] else None
        except DataError:
            found = None
        out["shipped_data_found"] = str(found) if found is not None and found.exists() else None
    return out


def face_detectors() -> dict[str, Any]:
    """The YuNet model file (weights folder) and whether OpenCV runs it on the shipped sample photo."""
    from ..face.detector import YUNET_FILE
    from ..paths import ENV_WEIGHTS, weights_path, weights_root

    path = weights_path("face", YUNET_FILE, required=False)
    out: dict[str, Any] = {"yunet": str(path) if path else None, "weights_root": str(weights_root() or ""),
                           "env": ENV_WEIGHTS, "file": YUNET_FILE}
    if path is not None:
        try:
            from ..bundle import sha256_file
            from ..face import create_detector
            from ..live.predict import read_rgb
            from ..shipped import sample_image

            out["sha256"] = sha256_file(path)
            out["faces_on_sample"] = len(create_detector("yunet", model_path=path).detect(read_rgb(sample_image())))
        except Exception as exc:  # noqa: BLE001
            out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def infer(backend: str, bundle: str | os.PathLike) -> dict[str, Any]:
    """Run the shipped ``bundle`` once through ``backend`` in a child process (fer_edge.doctor.infer)."""
    cmd = [sys.executable, "-m", "fer_edge.doctor.infer", backend, str(bundle)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INFER_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"no answer in {INFER_TIMEOUT_S:.0f} s"}
    result: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else -proc.returncode
        result.update(ok=False, error=f"the process crashed ({name})")
    elif not result:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        result = {"ok": False, "error": f"exit code {proc.returncode}: {tail or 'no output'}"}
    result["stderr_tail"] = proc.stderr.strip().splitlines()[-5:]
    return result
