"""The checks of `fer-edge doctor`: facts from probes.py in, one verdict per topic out, each failure
with the command that fixes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import probes

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
OPENCV_PIN = "'opencv-python-headless>=4.8,<5'"  # as pyproject.toml: 4.8+ runs YuNet 2023mar, 5 lost Haar
REINSTALL_FER_EDGE = "pip install --force-reinstall --no-deps fer-edge"
# tflite-runtime 2.14 needs NumPy 1.x; OpenCV wheels from 4.12 require NumPy 2, so both move back
# (pip's resolver picks numpy 1.26.4 and opencv-python-headless 4.11.0.86 for this).
NUMPY1_FIX = "pip install 'numpy<2' 'opencv-python-headless>=4.8,<4.12'"


@dataclass
class Check:
    name: str
    status: str  # ok | info | warn | fail
    summary: str
    fix: str | None = None  # a command that fixes it (warn/fail)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DoctorReport:
    version: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in (OK, INFO, WARN, FAIL)}

    def to_dict(self) -> dict[str, Any]:
        return {"fer_edge": self.version, "ok": self.ok, "counts": self.counts(),
                "checks": [asdict(c) for c in self.checks]}

    def format(self) -> str:
        lines = [f"fer-edge doctor {self.version}"]
        for c in self.checks:
            lines.append(f"{c.status.upper():<5} {c.name:<14} {c.summary}")
            if c.fix:
                lines.append(f"{'':<20} fix: {c.fix}")
        n = self.counts()
        lines.append(f"{n[OK]} ok, {n[INFO]} info, {n[WARN]} warnings, {n[FAIL]} failed")
        return "\n".join(lines)


def _major(ver: str | None) -> int:
    try:
        return int(str(ver).split(".")[0])
    except ValueError:
        return 0


def _vtuple(ver: str | None) -> tuple[int, ...]:
    out = []
    for part in str(ver or "0").split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def is_arm(machine: str) -> bool:
    return machine.lower().startswith(("aarch64", "arm"))


def is_pi(sysinfo: dict) -> bool:
    return "raspberry pi" in sysinfo.get("board", "").lower()


# -- checks --------------------------------------------------------------------------------------
def check_system(s: dict) -> Check:
    board = f", {s['board']}" if s.get("board") else ""
    distro = f" ({s['distro']})" if s.get("distro") else ""
    summary = f"{s['os']} {s['release']} {s['machine']}{distro}{board}, Python {s['python']}"
    if _vtuple(s["python"]) < (3, 10):
        return Check("system", FAIL, summary + ": fer-edge needs Python 3.10 or newer",
                     "sudo apt install -y python3 python3-venv  # then recreate the venv with that python", s)
    if s.get("bits") == 32 or s["machine"].lower() in ("armv7l", "armv6l", "i686", "i386"):
        return Check("system", WARN, summary + ": a 32-bit OS; ai-edge-litert publishes no 32-bit wheels "
                     "(only the old tflite-runtime runs) and int8 kernels are slower; install a 64-bit OS "
                     "(Raspberry Pi OS 64-bit)", None, s)
    return Check("system", OK, summary, None, s)


def check_cpu(cpu: dict) -> Check:
    flags = set(cpu["flags"])
    machine = cpu["machine"]
    model = f"{cpu['model']}: " if cpu.get("model") else ""
    if is_arm(machine):
        if "asimddp" in flags:
            return Check("cpu", OK, f"{model}NEON dot-product (asimddp): int8 kernels run fast (e.g. Pi 5)", None, cpu)
        return Check("cpu", WARN, f"{model}no NEON dot-product (asimddp), e.g. a Pi 4's Cortex-A72: int8 runs "
                     "on plain NEON, about as fast as float (it still saves memory); nothing to install", None, cpu)
    if machine.lower() in ("x86_64", "amd64", "i686", "i386"):
        vnni = [name for flag, name in (("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI")) if flag in flags]
        if vnni:
            return Check("cpu", OK, f"{model}{' and '.join(vnni)}: int8 dot products in hardware", None, cpu)
        simd = "AVX2" if "avx2" in flags else "SSE only"
        # onnxruntime's U8S8 kernel sums product pairs in int16 here: full-range 8-bit weights can saturate
        # (benchmarks/results/onnx_saturation.md: the shipped ONNX int8 69.94% vs 71.69% on an AVX2 EPYC)
        return Check("cpu", WARN, f"{model}no AVX512-VNNI/AVX-VNNI ({simd}): int8 gains less over float on this "
                     "CPU, and ONNX int8 models with full-range 8-bit weights (the shipped onnx-int8 among them) lose "
                     "accuracy to int16 saturation; tflite-int8 "
                     "(the default) and openvino-int8 keep theirs, and `fer-edge convert --int8` quantizes ONNX "
                     "weights to 7 bits", None, cpu)
    return Check("cpu", INFO, f"{model}{machine}: int8 speed not assessed for this architecture", None, cpu)


def check_threads(t: dict) -> Check:
    parts = [f"{t['logical']} logical CPUs, {t['usable']} usable by this process"]
    if t.get("cgroup_quota"):
        parts.append(f"cgroup quota {t['cgroup_quota']:g} CPUs")
    effective = min(t["usable"], int(t["cgroup_quota"]) or 1) if t.get("cgroup_quota") else t["usable"]
    parts.append(f"inference uses {effective} thread{'s' if effective != 1 else ''} by default "
                 "(--threads N to leave cores for capture)")
    return Check("threads", OK, "; ".join(parts), None, {**t, "default_threads": effective})


def check_tflite(numpy_version: str | None, result: dict | None, machine: str) -> Check:
    details = {"numpy": numpy_version, "ai-edge-litert": probes.version("ai-edge-litert"),
               "tflite-runtime": probes.version("tflite-runtime"), "probe": result}
    np_text = f"numpy {numpy_version}"
    if result is None:
        return Check("tflite", FAIL, "no shipped TFLite bundle to test the interpreter with", REINSTALL_FER_EDGE, details)
    if result.get("ok"):
        return Check("tflite", OK, f"{result['package']} {result['version']} with {np_text}: the shipped int8 "
                     f"model ran ({result['ms']:.2f} ms, '{result['label']}' on the sample photo)", None, details)
    imports = result.get("imports", {})
    litert, tfl = imports.get("ai_edge_litert", {}), imports.get("tflite_runtime", {})
    error = result.get("error", "")
    install = "pip install tflite-runtime" if machine.lower() in ("armv7l", "armv6l") else "pip install ai-edge-litert"
    if not litert.get("installed") and not tfl.get("installed"):
        return Check("tflite", FAIL, f"no TFLite interpreter installed (ai-edge-litert or tflite-runtime); "
                     f"{np_text}", install, details)
    if litert.get("ok") is False:
        return Check("tflite", FAIL, f"ai-edge-litert {details['ai-edge-litert'] or ''} is installed but does not "
                     f"import with {np_text}: {litert['error']}", "pip install --force-reinstall ai-edge-litert", details)
    if tfl.get("installed") and not litert.get("installed"):
        tfl_error = tfl.get("error") or error
        if _major(numpy_version) >= 2 and (tfl.get("ok") is False or "numpy" in error.lower()):
            return Check("tflite", FAIL, f"tflite-runtime {details['tflite-runtime'] or ''} was built for NumPy 1.x "
                         f"and fails with {np_text}: {tfl_error} (or, on a 64-bit OS: pip install ai-edge-litert)",
                         NUMPY1_FIX, details)
        if tfl.get("ok") is False:
            return Check("tflite", FAIL, f"tflite-runtime does not import: {tfl_error}",
                         "pip install --force-reinstall tflite-runtime", details)
    package = "ai-edge-litert" if litert.get("installed") else "tflite-runtime"
    return Check("tflite", FAIL, f"{package} could not run the shipped int8 model with {np_text}: {error}",
                 f"pip install --force-reinstall {package}", details)


def check_optional_backend(name: str, module: str, dist: str, extra: str, bundle, run_inference: bool) -> Check:
    ver = probes.version(dist)
    if not probes.has_module(module):
        return Check(name, INFO, f"not installed (optional backend: pip install 'fer-edge[{extra}]')", None, {})
    if bundle is None or not run_inference:
        why = "no shipped bundle to test it with" if bundle is None else "inference not run (--quick)"
        return Check(name, INFO, f"{dist} {ver}: {why}", None, {"version": ver})
    result = probes.infer(name, bundle)
    if result.get("ok"):
        return Check(name, OK, f"{dist} {ver}: the shipped int8 model ran ({result['ms']:.2f} ms, "
                     f"'{result['label']}' on the sample photo)", None, {"version": ver, "probe": result})
    return Check(name, FAIL, f"{dist} {ver} could not run the shipped int8 model: {result.get('error')}",
                 f"pip install --force-reinstall {dist}", {"version": ver, "probe": result})


def check_opencv(cv: dict, os_name: str) -> Check:
    if "error" in cv:
        return Check("opencv", FAIL, f"OpenCV does not import: {cv['error']}",
                     f"pip install --force-reinstall {OPENCV_PIN}", cv)
    dists = cv.get("dists", {})
    backends = cv.get("backends", {})
    cams, files = backends.get("camera", []), backends.get("file", [])
    gui = cv.get("gui", "unknown")
    summary = (f"OpenCV {cv['version']} ({', '.join(dists) or 'not from pip'}); Haar cascades "
               f"{'yes' if cv.get('haar_exists') else 'MISSING'}; camera backends {', '.join(cams) or 'none'}; "
               f"file/stream backends {', '.join(files) or 'none'}; GUI {gui}"
               + (" (no window: use `live --serve 8080` or --headless)" if gui.upper() == "NONE" else ""))
    if len(dists) > 1:
        return Check("opencv", WARN, summary + f"; {len(dists)} OpenCV packages are installed and overwrite each "
                     "other's cv2 module", "pip uninstall -y " + " ".join(dists) + f" && pip install {OPENCV_PIN}", cv)
    if _vtuple(cv["version"]) < (4, 8) or not cv.get("yunet_api"):
        return Check("opencv", FAIL, summary + "; OpenCV older than 4.8 cannot run the YuNet face detector",
                     f"pip install {OPENCV_PIN}", cv)
    if not cv.get("haar_exists"):
        return Check("opencv", WARN, summary + "; without the Haar cascades (OpenCV 5 dropped them) there is no "
                     "face detector when the YuNet file is missing", f"pip install {OPENCV_PIN}", cv)
    if "FFMPEG" not in files and "GSTREAMER" not in files:
        return Check("opencv", WARN, summary + "; without FFMPEG or GStreamer, video files and rtsp:// streams "
                     "do not open", f"pip install --force-reinstall {OPENCV_PIN}", cv)
    if os_name == "Linux" and "V4L2" not in cams:
        return Check("opencv", WARN, summary + "; without V4L2, USB cameras (/dev/video*) do not open",
                     f"pip install --force-reinstall {OPENCV_PIN}", cv)
    return Check("opencv", OK, summary, None, cv)


def check_face_detector(fd: dict) -> Check:
    if fd.get("yunet") is None:
        where = f"{fd['weights_root']}/face/" if fd.get("weights_root") else "$" + fd["env"] + "/face/"
        return Check("face_detector", WARN, f"YuNet model not found ({where}{fd['file']}): live and predict fall "
                     "back to OpenCV's Haar cascade, which misses turned and small faces (get the file from "
                     "github.com/opencv/opencv_zoo, models/face_detection_yunet)",
                     f"mkdir -p ~/fer-edge-weights/face && cp {fd['file']} ~/fer-edge-weights/face/ && "
                     f"export {fd['env']}=~/fer-edge-weights", fd)
    if "error" in fd:
        return Check("face_detector", FAIL, f"YuNet {fd['yunet']} does not run: {fd['error']}",
                     f"pip install --force-reinstall {OPENCV_PIN}", fd)
    found = fd.get("faces_on_sample", 0)
    summary = f"YuNet {fd['yunet']} (sha256 {fd.get('sha256', '')[:12]}...): {found} face(s) on the sample photo"
    if found < 1:
        return Check("face_detector", WARN, summary + "; expected one (a damaged file?)",
                     f"sha256sum {fd['yunet']}  # compare with opencv_zoo's face_detection_yunet_2023mar.onnx", fd)
    return Check("face_detector", OK, summary, None, fd)


def check_shipped(rows: list[dict]) -> Check:
    if not rows:
        return Check("shipped_models", FAIL, "no shipped model bundle in this installation", REINSTALL_FER_EDGE, {})
    parts, bad = [], []
    for r in rows:
        digests = ", ".join(f"{name} {f['expected'][:12]}..." for name, f in r.get("files", {}).items())
        parts.append(f"{r['format']}-int8 ({digests})")
        if not r.get("verified"):
            bad.append(f"{r['format']}: {r.get('error', 'not verified')}")
    if bad:
        return Check("shipped_models", FAIL, "shipped bundle damaged: " + "; ".join(bad), REINSTALL_FER_EDGE,
                     {"bundles": rows})
    return Check("shipped_models", OK, "sha256 verified: " + "; ".join(parts), None, {"bundles": rows})


def check_evaluation_data(d: dict) -> Check:
    """Datasets are optional on a device: without them bench measures speed, not accuracy."""
    where = f"data root {d['data_root']} (from {d['source']})" if d.get("data_root") else "no data root"
    if d.get("shipped_data_found"):
        return Check("evaluation_data", OK, f"{where}; the shipped model's test set is there "
                     f"({d['shipped_data_found']}): bench scores its accuracy", None, d)
    named = d.get("shipped_data") or "its dataset"
    return Check("evaluation_data", INFO, f"{where}; {named} not found: bench of the shipped model measures speed only "
                 "(set FER_EDGE_DATA to the folder holding fer2013/fer2013.csv.gz, or pass --data)", None, d)


def check_cameras(devices: list[dict], cam: dict, sysinfo: dict) -> Check:
    details = {"video_devices": devices, **cam}
    names = [f"{d['path']}{' (' + d['name'] + ')' if d.get('name') else ''}" for d in devices]
    pi_stack = (f"picamera2 {cam.get('picamera2_version') or ''}".strip() if cam.get("picamera2") else "no picamera2")
    summary = f"{', '.join(names) or 'no /dev/video*'}; {pi_stack}; libcamera apps: {', '.join(cam.get('apps', [])) or 'none'}"
    denied = [d["path"] for d in devices if not d.get("readable")]
    if denied:
        return Check("cameras", FAIL, summary + f"; this user may not open {', '.join(denied)}",
                     "sudo usermod -aG video $USER  # then log out and back in", details)
    if is_pi(sysinfo):
        if not cam.get("picamera2"):
            return Check("cameras", WARN, summary + "; on a Pi, --source picamera needs picamera2 (from apt, "
                         "seen by a venv made with --system-site-packages)",
                         "sudo apt install -y python3-picamera2 && python3 -m venv --system-site-packages .venv", details)
        if not cam.get("apps"):
            return Check("cameras", WARN, summary + "; the libcamera apps are missing (camera self-test)",
                         "sudo apt install -y rpicam-apps && rpicam-hello --list-cameras", details)
    if not devices and not cam.get("picamera2"):
        return Check("cameras", WARN, summary + ": no camera found; connect a USB or Pi camera "
                     "(live still reads video files and rtsp:// streams)", None, details)
    return Check("cameras", OK, summary, None, details)


def run_doctor(run_inference: bool = True) -> DoctorReport:
    """Every check, in order; ``run_inference=False`` skips running the models (seconds faster)."""
    from .. import __version__
    from ..shipped import shipped_bundles

    sysinfo = probes.system()
    bundles = shipped_bundles()
    tflite_result = None
    if "tflite" in bundles and run_inference:
        tflite_result = probes.infer("litert", bundles["tflite"])
    checks = [check_system(sysinfo), check_cpu(probes.cpuinfo()), check_threads(probes.threads())]
    if run_inference:
        checks.append(check_tflite(probes.version("numpy"), tflite_result, sysinfo["machine"]))
    else:
        versions = ", ".join(f"{dist} {probes.version(dist) or 'not installed'}"
                             for dist in ("ai-edge-litert", "tflite-runtime", "numpy"))
        checks.append(Check("tflite", INFO, f"{versions}: inference not run (--quick)"))
    checks.append(check_optional_backend("onnxruntime", "onnxruntime", "onnxruntime", "onnx", bundles.get("onnx"),
                                         run_inference))
    checks.append(check_optional_backend("openvino", "openvino", "openvino", "openvino", bundles.get("openvino"),
                                         run_inference))
    checks += [check_opencv(probes.opencv(), sysinfo["os"]), check_face_detector(probes.face_detectors()),
               check_shipped(probes.shipped()), check_evaluation_data(probes.evaluation_data()),
               check_cameras(probes.video_devices(), probes.libcamera(), sysinfo)]
    return DoctorReport(__version__, checks)
