"""`fer-edge doctor`: the real environment, and simulated Pi-like failures (probes replaced, or a fake
tflite-runtime built for NumPy 1 put in front of the real packages)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.bundle import read_bundle
from fer_edge.cli.main import main as cli
from fer_edge.doctor import FAIL, OK, WARN, run_doctor
from fer_edge.doctor import checks as doc
from fer_edge.doctor import probes
from fer_edge.shipped import shipped_bundles

EXE = Path(sys.executable).with_name("fer-edge")


def _by_name(report):
    return {c.name: c for c in report.checks}


@pytest.fixture(scope="module")
def real_report():
    return run_doctor()


def test_real_environment(real_report):
    checks = _by_name(real_report)
    assert list(checks) == ["system", "cpu", "threads", "tflite", "onnxruntime", "openvino", "opencv",
                            "face_detector", "shipped_models", "evaluation_data", "cameras"]
    # The base install works here: TFLite ran the shipped int8 model with this numpy.
    tfl = checks["tflite"]
    assert tfl.status == OK, tfl
    assert tfl.details["probe"]["numpy"] == probes.version("numpy") and tfl.details["probe"]["ms"] > 0
    assert f"numpy {probes.version('numpy')}" in tfl.summary
    # The shipped bundles' sha256 are the manifests' and they verify.
    assert checks["shipped_models"].status == OK
    for row in checks["shipped_models"].details["bundles"]:
        manifest = read_bundle(row["path"]).manifest
        assert {n: f["actual"] for n, f in row["files"].items()} == manifest.files
    assert checks["system"].summary.endswith(f"Python {sys.version.split()[0]}")
    assert checks["opencv"].details["version"] == __import__("cv2").__version__
    flags = set(probes.cpuinfo()["flags"])
    if "avx512_vnni" in flags:
        assert checks["cpu"].status == OK and "AVX512-VNNI" in checks["cpu"].summary
    elif "avx2" in flags and "avx_vnni" not in flags:  # U8S8 saturation: the user is told which artifacts keep accuracy
        assert checks["cpu"].status == WARN and "saturation" in checks["cpu"].summary
    assert checks["threads"].details["usable"] >= 1
    for name in ("onnxruntime", "openvino"):
        assert checks[name].status == (OK if probes.has_module(name) else "info"), checks[name]
    yunet = probes.face_detectors()["yunet"]
    assert checks["face_detector"].status == (OK if yunet else WARN)
    for c in real_report.checks:  # every failure or warning that software can fix names its command
        if c.status == FAIL:
            assert c.fix
    text = real_report.format()
    assert all(c.name in text for c in real_report.checks)
    json.dumps(real_report.to_dict())  # plain data only


def test_cli_json_and_quick_mode():
    proc = subprocess.run([str(EXE), "doctor", "--json"], capture_output=True, text=True, timeout=300)
    doc_json = json.loads(proc.stdout)
    assert proc.returncode == (0 if doc_json["ok"] else 1), proc.stderr
    assert [c["name"] for c in doc_json["checks"]][0] == "system"
    assert all(set(c) == {"name", "status", "summary", "fix", "details"} for c in doc_json["checks"])
    code = ("import sys; from fer_edge.doctor import run_doctor; r = run_doctor(run_inference=False); "
            "print([m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules], r.checks[3].summary)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.startswith("[]") and "inference not run" in out


def test_quick_mode_says_not_installed(monkeypatch):
    real = probes.version
    monkeypatch.setattr(probes, "version", lambda dist: None if dist == "tflite-runtime" else real(dist))
    summary = _by_name(run_doctor(run_inference=False))["tflite"].summary
    assert "tflite-runtime not installed" in summary and "None" not in summary, summary
    assert f"numpy {real('numpy')}" in summary and "inference not run (--quick)" in summary


def test_evaluation_data_says_whether_bench_can_score_the_shipped_model(monkeypatch, tmp_path, fer2013_csv):
    root = tmp_path / "data"
    (root / "fer2013").mkdir(parents=True)
    monkeypatch.setenv("FER_EDGE_DATA", str(root))
    check = doc.check_evaluation_data(probes.evaluation_data())
    assert check.status == "info" and f"data root {root} (from FER_EDGE_DATA)" in check.summary
    assert "$FER_EDGE_DATA/fer2013/fer2013.csv.gz not found: bench of the shipped model measures speed only" in check.summary
    (root / "fer2013" / "fer2013.csv.gz").symlink_to(fer2013_csv)
    check = doc.check_evaluation_data(probes.evaluation_data())
    assert check.status == OK and f"({root / 'fer2013' / 'fer2013.csv.gz'}): bench scores its accuracy" in check.summary


def test_pi_with_tflite_runtime_built_for_numpy1_under_numpy2(tmp_path):
    """A Pi-like install: no ai-edge-litert, tflite-runtime 2.14 (built against NumPy 1.x), NumPy 2.
    Fake packages in front of the real ones make the real probe (a child process) meet that failure."""
    site = tmp_path / "site"
    (site / "ai_edge_litert").mkdir(parents=True)
    (site / "ai_edge_litert" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'ai_edge_litert'\", name='ai_edge_litert')\n")
    (site / "tflite_runtime").mkdir()
    (site / "tflite_runtime" / "__init__.py").write_text("__version__ = '2.14.0'\n")
    # What the real wheel does under NumPy 2: a long warning, then this ImportError.
    (site / "tflite_runtime" / "interpreter.py").write_text(textwrap.dedent("""\
        import sys
        print("A module that was compiled using NumPy 1.x cannot be run in NumPy 2.x as it may crash.",
              file=sys.stderr)
        raise ImportError("numpy.core.multiarray failed to import")
        """))
    meta = site / "tflite_runtime-2.14.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: tflite-runtime\nVersion: 2.14.0\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([str(EXE), "doctor", "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    tfl = next(c for c in report["checks"] if c["name"] == "tflite")
    assert tfl["status"] == FAIL and tfl["fix"] == doc.NUMPY1_FIX and "'numpy<2'" in tfl["fix"]
    assert "tflite-runtime 2.14.0" in tfl["summary"] and "numpy 2." in tfl["summary"]
    assert "numpy.core.multiarray failed to import" in tfl["summary"]
    assert report["ok"] is False and report["counts"]["fail"] >= 1
    proc = subprocess.run([str(EXE), "doctor"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1 and f"fix: {doc.NUMPY1_FIX}" in proc.stdout


# -- simulated machines (probes replaced) ----------------------------------------------------------
PI4 = {"os": "Linux", "release": "6.6.31+rpt-rpi-v8", "machine": "aarch64", "python": "3.11.2",
       "python_path": "/home/pi/.venv/bin/python", "distro": "Debian GNU/Linux 12 (bookworm)",
       "board": "Raspberry Pi 4 Model B Rev 1.5", "bits": 64}


@pytest.fixture
def pi4(monkeypatch):
    """A Pi 4 whose camera stack is missing; the rest of the machine is real."""
    monkeypatch.setattr(probes, "system", lambda: dict(PI4))
    monkeypatch.setattr(probes, "cpuinfo", lambda: {"model": "ARM part 0xd08", "machine": "aarch64",
                                                    "flags": ["fp", "asimd", "evtstrm", "crc32", "cpuid"]})
    monkeypatch.setattr(probes, "video_devices", lambda: [])
    monkeypatch.setattr(probes, "libcamera", lambda: {"picamera2": False, "picamera2_version": None,
                                                      "libcamera_module": False, "apps": []})
    monkeypatch.setattr(probes, "infer", lambda backend, bundle: {"ok": True, "package": "ai-edge-litert",
                                                                   "version": "1.4.0", "ms": 1.9, "label": "happy"})


def test_pi4_without_picamera2_and_without_dot_product(pi4):
    checks = _by_name(run_doctor())
    assert checks["cpu"].status == WARN and "asimddp" in checks["cpu"].summary and checks["cpu"].fix is None
    cam = checks["cameras"]
    assert cam.status == WARN and cam.fix.startswith("sudo apt install -y python3-picamera2")
    assert "--system-site-packages" in cam.fix
    assert checks["system"].status == OK and "Raspberry Pi 4" in checks["system"].summary


def test_pi_camera_stack_present_but_no_permission(pi4, monkeypatch):
    monkeypatch.setattr(probes, "libcamera", lambda: {"picamera2": True, "picamera2_version": "0.3.19",
                                                      "libcamera_module": True, "apps": ["rpicam-hello"]})
    monkeypatch.setattr(probes, "video_devices", lambda: [{"path": "/dev/video0", "readable": False, "name": "unicam"}])
    monkeypatch.setattr(probes, "cpuinfo", lambda: {"model": "", "machine": "aarch64", "flags": ["asimd", "asimddp"]})
    runner = CliRunner()
    res = runner.invoke(cli, ["doctor"])
    assert res.exit_code == 1, res.output
    assert "FAIL  cameras" in res.output and "fix: sudo usermod -aG video $USER" in res.output
    checks = _by_name(run_doctor())
    assert checks["cpu"].status == OK  # a Pi 5's Cortex-A76 has the dot product
    monkeypatch.setattr(probes, "video_devices", lambda: [{"path": "/dev/video0", "readable": True, "name": "unicam"}])
    assert _by_name(run_doctor())["cameras"].status == OK


@pytest.mark.parametrize("case, fix", [
    ("none", "pip install ai-edge-litert"),
    ("none-armv7", "pip install tflite-runtime"),
    ("litert-broken", "pip install --force-reinstall ai-edge-litert"),
    ("crash", "pip install --force-reinstall ai-edge-litert"),
    ("tflite-runtime-numpy2", doc.NUMPY1_FIX),
])
def test_tflite_failures_name_their_fix(case, fix):
    absent = {"installed": False}
    imports = {
        "none": {"ai_edge_litert": absent, "tflite_runtime": absent},
        "none-armv7": {"ai_edge_litert": absent, "tflite_runtime": absent},
        "litert-broken": {"ai_edge_litert": {"installed": True, "ok": False, "error": "ImportError: libfoo.so"},
                          "tflite_runtime": absent},
        "crash": {"ai_edge_litert": {"installed": True, "ok": True, "version": "2.3.0"}, "tflite_runtime": absent},
        "tflite-runtime-numpy2": {"ai_edge_litert": absent, "tflite_runtime": {
            "installed": True, "ok": False, "error": "ImportError: numpy.core.multiarray failed to import"}},
    }[case]
    result = {"ok": False, "imports": imports, "error": "the process crashed (SIGSEGV)" if case == "crash"
              else "MissingExtraError: no TFLite interpreter installed"}
    machine = "armv7l" if case == "none-armv7" else "aarch64"
    c = doc.check_tflite("2.1.0", result, machine)
    assert c.status == FAIL and c.fix == fix, c
    if case == "crash":
        assert "SIGSEGV" in c.summary
    assert doc.check_tflite("1.26.4", {"ok": True, "package": "tflite-runtime", "version": "2.14.0", "ms": 3.0,
                                       "label": "happy"}, "armv7l").status == OK


def test_opencv_problems():
    good = {"dists": {"opencv-python-headless": "4.10.0"}, "version": "4.10.0", "haar_exists": True,
            "yunet_api": True, "backends": {"camera": ["V4L2", "FFMPEG"], "file": ["FFMPEG"]}, "gui": "NONE"}
    c = doc.check_opencv(good, "Linux")
    assert c.status == OK and "live --serve" in c.summary
    cases = {
        "two builds": ({**good, "dists": {"opencv-python-headless": "4.10.0", "opencv-python": "4.9.0"}}, WARN,
                       "pip uninstall -y opencv-python-headless opencv-python"),
        "opencv 5": ({**good, "version": "5.0.0", "haar_exists": False}, WARN, doc.OPENCV_PIN),
        "old": ({**good, "version": "4.5.1", "yunet_api": False}, FAIL, doc.OPENCV_PIN),
        "no ffmpeg": ({**good, "backends": {"camera": ["V4L2"], "file": ["CV_IMAGES"]}}, WARN, "--force-reinstall"),
        "no v4l2": ({**good, "backends": {"camera": ["FFMPEG"], "file": ["FFMPEG"]}}, WARN, "--force-reinstall"),
        "broken": ({"dists": {}, "error": "ImportError: libGL.so.1"}, FAIL, "--force-reinstall"),
    }
    for name, (info, status, fix) in cases.items():
        c = doc.check_opencv(info, "Linux")
        assert c.status == status and fix in c.fix, (name, c)


def test_damaged_shipped_bundle_is_a_failure(tmp_path, monkeypatch):
    import fer_edge.shipped

    copy = tmp_path / "tflite-int8"
    shutil.copytree(shipped_bundles()["tflite"], copy)
    model = copy / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    monkeypatch.setattr(fer_edge.shipped, "shipped_bundles", lambda: {"tflite": copy})
    c = doc.check_shipped(probes.shipped())
    assert c.status == FAIL and c.fix == doc.REINSTALL_FER_EDGE and "sha256" in c.summary
    row = c.details["bundles"][0]
    assert row["files"]["model.tflite"]["actual"] != row["files"]["model.tflite"]["expected"]
    monkeypatch.setattr(fer_edge.shipped, "shipped_bundles", lambda: {})
    assert doc.check_shipped(probes.shipped()).status == FAIL


def test_missing_face_detector_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_WEIGHTS", str(tmp_path))
    c = doc.check_face_detector(probes.face_detectors())
    assert c.status == WARN and "Haar" in c.summary and "export FER_EDGE_WEIGHTS=" in c.fix
    assert str(tmp_path) in c.summary


def test_cpu_and_system_verdicts():
    x86 = {"model": "Intel Core i5", "machine": "x86_64", "flags": ["sse4_2", "avx2"]}
    assert doc.check_cpu(x86).status == WARN and "AVX2" in doc.check_cpu(x86).summary
    assert "saturation" in doc.check_cpu(x86).summary  # which int8 artifacts lose accuracy on such a CPU
    assert doc.check_cpu({**x86, "flags": ["avx2", "avx_vnni"]}).status == OK
    assert doc.check_cpu({"model": "", "machine": "riscv64", "flags": []}).status == "info"
    old_py = {**PI4, "python": "3.9.2"}
    assert doc.check_system(old_py).status == FAIL and doc.check_system(old_py).fix
    armv7 = {**PI4, "machine": "armv7l", "bits": 32}
    assert doc.check_system(armv7).status == WARN and "64-bit" in doc.check_system(armv7).summary
    t = doc.check_threads({"logical": 8, "usable": 8, "cgroup_quota": 2.0})
    assert t.details["default_threads"] == 2 and "quota 2" in t.summary
