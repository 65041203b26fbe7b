"""Which GPU paths exist here, and if not, exactly what is missing.

A GPU row is only measured when its runtime really sees a GPU; otherwise the row
is "not measured" with the reason (never a crash, never a silent CPU run).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata


@dataclass
class GpuPath:
    key: str  # onnxruntime-cuda | onnxruntime-tensorrt | openvino-gpu | tensorflow-gpu | litert-gpu
    runtime: str  # the runtime backend a row uses
    formats: tuple[str, ...]  # bundle formats this path can run
    available: bool
    detail: str  # what was found, or exactly what is missing

    def to_dict(self) -> dict:
        d = asdict(self)
        d["formats"] = list(self.formats)
        return d


def nvidia_present() -> tuple[bool, str]:
    devs = [p for p in ("/dev/nvidia0", "/dev/nvidiactl") if os.path.exists(p)]
    smi = shutil.which("nvidia-smi")
    if devs:
        return True, f"NVIDIA device nodes {devs}" + (f", {smi}" if smi else "")
    return False, "no NVIDIA GPU or driver (no /dev/nvidia0, " + ("nvidia-smi present)" if smi else "no nvidia-smi)")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _probe_onnxruntime(nv: tuple[bool, str]) -> list[GpuPath]:
    if importlib.util.find_spec("onnxruntime") is None:
        msg = "onnxruntime is not installed (pip install onnxruntime-gpu)"
        return [GpuPath("onnxruntime-cuda", "onnxruntime", ("onnx",), False, msg),
                GpuPath("onnxruntime-tensorrt", "onnxruntime", ("onnx",), False, msg)]
    import onnxruntime as ort

    have = ort.get_available_providers()
    dist = "onnxruntime-gpu" if _version("onnxruntime-gpu") else "onnxruntime"
    out = []
    for key, ep in (("onnxruntime-cuda", "CUDAExecutionProvider"), ("onnxruntime-tensorrt", "TensorrtExecutionProvider")):
        if ep not in have:
            detail = f"{dist} {ort.__version__} has no {ep} (providers: {', '.join(have)}); install onnxruntime-gpu"
            if not nv[0]:
                detail += f"; and {nv[1]}"
            out.append(GpuPath(key, "onnxruntime", ("onnx",), False, detail))
        elif not nv[0]:
            out.append(GpuPath(key, "onnxruntime", ("onnx",), False, f"{ep} is installed but {nv[1]}"))
        else:
            out.append(GpuPath(key, "onnxruntime", ("onnx",), True, f"{ep} in {dist} {ort.__version__}; {nv[1]}"))
    return out


def _probe_openvino() -> GpuPath:
    if importlib.util.find_spec("openvino") is None:
        return GpuPath("openvino-gpu", "openvino", ("openvino", "onnx"), False, "openvino is not installed")
    import openvino as ov

    devices = ov.Core().available_devices
    gpus = [d for d in devices if d.startswith("GPU")]
    if not gpus:
        return GpuPath("openvino-gpu", "openvino", ("openvino", "onnx"), False,
                       f"OpenVINO {ov.get_version()} sees devices {devices}: no GPU device "
                       "(needs an Intel GPU with its OpenCL/Level Zero driver)")
    return GpuPath("openvino-gpu", "openvino", ("openvino", "onnx"), True, f"OpenVINO devices {devices}")


def _probe_tensorflow(timeout: float = 180) -> GpuPath:
    if importlib.util.find_spec("tensorflow") is None:
        return GpuPath("tensorflow-gpu", "keras", ("keras",), False, "tensorflow is not installed (pip install 'fer-edge[train]')")
    # In a subprocess: importing TensorFlow costs seconds and hundreds of MB we do not want here.
    code = ("import json,tensorflow as tf;"
            "print(json.dumps({'v':tf.__version__,'cuda':tf.test.is_built_with_cuda(),"
            "'gpus':[d.name for d in tf.config.list_physical_devices('GPU')]}))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        return GpuPath("tensorflow-gpu", "keras", ("keras",), False, f"could not query TensorFlow ({type(exc).__name__})")
    if info["gpus"]:
        return GpuPath("tensorflow-gpu", "keras", ("keras",), True, f"TensorFlow {info['v']} GPUs {info['gpus']}")
    why = "is built without CUDA" if not info["cuda"] else "finds no GPU (no CUDA driver or device)"
    return GpuPath("tensorflow-gpu", "keras", ("keras",), False, f"TensorFlow {info['v']} {why}")


def probe(include_tensorflow: bool = True) -> list[GpuPath]:
    nv = nvidia_present()
    paths = _probe_onnxruntime(nv) + [_probe_openvino()]
    if include_tensorflow:
        paths.append(_probe_tensorflow())
    paths.append(GpuPath("litert-gpu", "litert", ("tflite",), False,
                         "fer-edge runs TFLite bundles with the LiteRT CPU interpreter only (no GPU delegate)"))
    return paths
