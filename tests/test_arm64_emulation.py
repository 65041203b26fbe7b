"""The emulated Raspberry Pi checks (devices/arm64_emulation.py): CPU profiles, timing labels,
output comparisons, and (slow, when the arm64 root exists) the user's whole journey."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge.bench.environment import timing_label

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "devices"))

from emulation import journey, roots  # noqa: E402


def _cpuinfo_fields(path: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(one dict per processor, the board lines after them)."""
    blocks = [b for b in path.read_text().split("\n\n") if b.strip()]
    parse = lambda b: {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in b.splitlines())}  # noqa: E731
    cpus = [parse(b) for b in blocks if b.startswith("processor")]
    board = parse(blocks[-1]) if not blocks[-1].startswith("processor") else {}
    return cpus, board


@pytest.mark.parametrize("name, qemu_cpu, part, dotprod, model", [
    ("pi4", "cortex-a72", "0xd08", False, "Raspberry Pi 4"),
    ("pi5", "cortex-a76", "0xd0b", True, "Raspberry Pi 5"),
])
def test_pi_profiles_describe_their_cpu(name, qemu_cpu, part, dotprod, model):
    prof = roots.load_profiles()[name]
    assert prof.qemu_cpu == qemu_cpu
    cpus, board = _cpuinfo_fields(prof.cpuinfo)
    assert len(cpus) == 4 and [c["processor"] for c in cpus] == ["0", "1", "2", "3"]
    for c in cpus:
        assert c["CPU implementer"] == "0x41" and c["CPU architecture"] == "8" and c["CPU part"] == part
        features = c["Features"].split()
        assert {"fp", "asimd", "cpuid"} <= set(features)
        assert ("asimddp" in features) == dotprod  # the int8 kernel path XNNPACK takes
    assert board["Model"].startswith(model)


def test_timing_label_spots_qemu_even_with_a_pi_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.delenv("FER_EDGE_TIMING", raising=False)
    pi = roots.load_profiles()["pi4"].cpuinfo
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\n")
    midr = tmp_path / "midr_el1"
    absent = str(tmp_path / "absent")
    assert timing_label("x86_64", str(x86), absent) == "measured"
    assert timing_label("aarch64", str(x86), absent) == "emulated"  # qemu passing the host's cpuinfo through
    assert timing_label("aarch64", str(pi), absent) == "emulated"  # a Pi's cpuinfo bind-mounted, no ARM /sys
    midr.write_text("0x00000000410fd083\n")
    assert timing_label("aarch64", str(pi), str(midr)) == "measured"  # a real arm64 kernel
    assert timing_label("armv7l", str(pi), absent) == "measured"  # 32-bit kernels have no ID registers in /sys
    monkeypatch.setenv("FER_EDGE_TIMING", "emulated")
    assert timing_label("x86_64", str(x86), absent) == "emulated"


def _face(label: str, happy: float, x: float) -> dict:
    return {"box": [x, 10.0, 50.0, 60.0], "label": label, "score": happy,
            "scores": {"happy": happy, "sad": round(1 - happy, 4)}}


def test_predict_and_live_comparisons_catch_differences():
    x86 = {"stdout": json.dumps({"images": [{"faces": [_face("happy", 0.9141, 100)]}]})}
    same = {"stdout": json.dumps({"images": [{"faces": [_face("happy", 0.9102, 101)]}]})}
    other = {"stdout": json.dumps({"images": [{"faces": [_face("sad", 0.3, 100)]}]})}
    ok = journey.compare_predict(x86, same)
    assert ok["labels_equal"] and ok["max_prob_diff"] == pytest.approx(0.0039) and ok["max_box_diff_px"] == 1.0
    assert not journey.compare_predict(x86, other)["labels_equal"]

    def live(frames):
        lines = [json.dumps({"type": "frame", "frame": i, "faces": f}) for i, f in enumerate(frames)]
        return {"stdout": "\n".join(lines + [json.dumps({"type": "summary", "faces": sum(map(len, frames))})])}

    a = live([[_face("happy", 0.9, 100)], [_face("happy", 0.9, 100), _face("sad", 0.2, 300)], []])
    b = live([[_face("sad", 0.4, 100)], [_face("happy", 0.9, 100)], []])
    got = journey.compare_live(a, b)
    assert got["frames_x86"] == got["frames_arm64"] == 3
    assert got["frames_same_face_count"] == 2 and got["frames_labels_equal"] == 1  # frame 0 differs, frame 1 unmatched
    assert got["max_prob_diff"] == pytest.approx(0.5)


def test_a_stopped_check_keeps_its_finished_parts_marked_partial(tmp_path):
    """Each finished part is written at once, labelled partial; the last write drops the label."""
    import time

    import arm64_emulation

    committed = json.loads((REPO / "benchmarks/results/arm64_emulation.json").read_text())
    so_far = {k: v for k, v in committed.items() if k not in ("isa", "partial", "minutes", "host_load_average_end")}
    out = tmp_path / "emu.json"
    arm64_emulation.save(out, so_far, time.time(), unfinished="the ISA comparison had not run yet")
    partial = json.loads(out.read_text())
    assert partial["partial"] == "the ISA comparison had not run yet" and "isa" not in partial
    md = out.with_suffix(".md").read_text()
    assert "**Partial results, written while the check ran: the ISA comparison had not run yet.**" in md
    assert "## The user's journey" in md and "## Each ISA path" not in md
    # Midway through the ISA part: the x86 references and one emulated run, no Pi 4 vs Pi 5 comparison yet.
    isa = committed["isa"]
    first = "arm64 bookworm pi4 ai-edge-litert"
    midway = {**isa, "runs_by": {k: v for k, v in isa["runs_by"].items() if k.startswith("x86") or k == first},
              "comparison": [c for c in isa["comparison"] if c["arm64"] == first], "cross_profile": []}
    arm64_emulation.save(out, {**so_far, "isa": midway}, time.time(), unfinished="the ISA comparison was still running")
    md = out.with_suffix(".md").read_text()
    assert "## Each ISA path" in md and "ISA comparison was still running" in md and "at the last write" in md
    assert json.loads(out.read_text())["isa"]["runs_by"].keys() == midway["runs_by"].keys()

    arm64_emulation.save(out, {**so_far, "isa": isa}, time.time(), unfinished=None)
    assert "partial" not in json.loads(out.read_text())
    assert "Partial results" not in out.with_suffix(".md").read_text()


def test_a_failed_partial_write_warns_and_the_check_goes_on(tmp_path, monkeypatch, capsys):
    import time

    import arm64_emulation

    def broken(out):
        raise OSError("disk full")

    monkeypatch.setattr(arm64_emulation.report, "markdown", broken)
    out = tmp_path / "emu.json"
    arm64_emulation.save(out, {}, time.time(), unfinished="the ISA comparison had not run yet")
    assert "could not write the partial results" in capsys.readouterr().err and not out.exists()
    with pytest.raises(OSError, match="disk full"):  # the final write must not fail silently
        arm64_emulation.save(out, {}, time.time(), unfinished=None)


@pytest.mark.slow
def test_pi_user_journey_in_the_emulated_bookworm_root(tmp_path):
    """Wheel -> venv -> predict / live / bench inside arm64 Debian bookworm as a Pi 4 CPU, vs x86."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mount namespaces and chroot)")
    why = roots.missing_root("bookworm")
    if why:
        pytest.skip(why)
    from fer_edge.paths import data_path

    data_path("fer2013", "fer2013.csv.gz")  # DataError (a clear failure) without the dataset
    out = tmp_path / "journey.json"
    proc = subprocess.run([sys.executable, str(REPO / "devices/arm64_emulation.py"), "check", "--release", "bookworm",
                           "--pi", "4", "--only", "journey", "--frames", "12", "--limit", "60", "--runs", "3",
                           "--out", str(out)], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    j = report["journey"]
    (root,) = j["arm64"]
    assert root["install"]["exit"] == 0 and root["install"]["versions"]["python"].startswith("3.11")
    steps = root["profiles"]["pi4"]
    for name in ("predict", "live", "bench"):
        assert steps[name]["exit"] == 0, steps[name]["stderr_tail"]
    (row,) = j["compared"]
    assert row["predict"]["labels_equal"] and row["predict"]["faces_arm64"] >= 1
    assert row["live"]["frames_arm64"] == row["live"]["frames_x86"] == 12
    tflite = [r for r in row["bench"] if r["bundle"] == "tflite-int8"]
    assert tflite and tflite[0]["status"] == "ok" and tflite[0]["timing"] == "emulated"
    assert tflite[0]["eval_n"] == 60
    assert "emulated" in out.with_suffix(".md").read_text()
