"""arm64 Debian roots under qemu user-mode emulation, with a Raspberry Pi CPU profile.

A root is built once by ``debootstrap --arch=arm64`` and reused. Every command runs in a
private mount namespace (``unshare --mount``): /proc, /sys and /dev are mounted, the
profile's /proc/cpuinfo is bind-mounted over the emulated one and ``QEMU_CPU`` selects
the CPU model, so two profiles never share state and nothing stays mounted afterwards.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fer_edge.compat import tomllib

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Beside the checkout, like shared/ (the roots are ~1 GiB each and never go into the repo).
ROOTS = Path(os.environ.get("FER_EDGE_ARM64_ROOTS", REPO.parent / "arm64"))
MIRROR = os.environ.get("FER_EDGE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
QEMU = "/usr/bin/qemu-aarch64-static"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The standard qemu-aarch64 magic/mask (ELF64, little endian, e_machine 0xb7 = AArch64).
AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
DONE = ".fer-edge-root-ok"

# release -> what it stands for. Raspberry Pi OS 12 and 13 are built on these Debian releases.
RELEASES = {
    "bookworm": "Debian 12 bookworm (Raspberry Pi OS 12's base), Python 3.11",
    "trixie": "Debian 13 trixie (Raspberry Pi OS 13's base), Python 3.13",
}


@dataclass(frozen=True)
class Profile:
    name: str  # pi4 | pi5
    board: str
    qemu_cpu: str
    cpuinfo: Path
    isa: str


def load_profiles() -> dict[str, Profile]:
    data = tomllib.loads((HERE / "profiles.toml").read_text())
    return {name: Profile(name, p["board"], p["qemu_cpu"], HERE / p["cpuinfo"], p["isa"]) for name, p in data.items()}


def root_dir(release: str) -> Path:
    return ROOTS / release


def missing_root(release: str) -> str:
    """'' when the root is built, else why it cannot be used (for a skip or an error)."""
    if release not in RELEASES:
        return f"unknown release {release!r}; choose one of {', '.join(RELEASES)}"
    root = root_dir(release)
    if not (root / DONE).exists():
        return (f"no arm64 {release} root at {root} (build it: sudo .venv/bin/python devices/arm64_emulation.py "
                f"prepare --release {release})")
    if not Path(QEMU).exists():
        return f"{QEMU} missing (apt-get install qemu-user-static)"
    return ""


def sh(*cmd: str, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def register_binfmt() -> None:
    """Register qemu-aarch64 with binfmt_misc by hand (no systemd/binfmt-support needed)."""
    if not (BINFMT / "register").exists():
        sh("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT))
    if (BINFMT / "qemu-aarch64").exists():
        return
    if not Path(QEMU).exists():
        sys.exit(f"{QEMU} missing: apt-get install qemu-user-static")
    # F (fix binary): the kernel opens the interpreter now, so it works inside the chroot.
    rule = f":qemu-aarch64:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{QEMU}:F"
    with open(BINFMT / "register", "w") as fh:
        fh.write(rule)
    print("registered qemu-aarch64 with binfmt_misc", flush=True)


def build_root(release: str) -> Path:
    """debootstrap the root (slow: its second stage runs under emulation), then give it network."""
    register_binfmt()
    root = root_dir(release)
    if not (root / DONE).exists():
        if not shutil.which("debootstrap"):
            sys.exit("debootstrap missing: apt-get install debootstrap")
        sh("debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
           release, str(root), MIRROR)
        (root / DONE).write_text(time.strftime("%F %T"))
    # pip reaches the package index through the host's CA bundle (a TLS-inspecting proxy here).
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    return root


def qemu_version() -> str:
    out = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


@dataclass(frozen=True)
class Bind:
    host: Path
    guest: str  # absolute path inside the root
    read_only: bool = True


def run(release: str, command: str, profile: Profile, binds: tuple[Bind, ...] = (), env: dict | None = None,
        timeout: float | None = None, echo: bool = True) -> subprocess.CompletedProcess:
    """Run ``command`` (sh) inside the root as ``profile``'s CPU; returns the finished process (text)."""
    root = root_dir(release)
    q = shlex.quote
    steps = [f"mount -t proc proc {q(str(root / 'proc'))}",
             f"mount -t sysfs sysfs {q(str(root / 'sys'))}",
             f"mount --rbind /dev {q(str(root / 'dev'))}",
             f"mount --bind {q(str(profile.cpuinfo))} {q(str(root / 'proc/cpuinfo'))}"]
    for b in binds:
        target = root / b.guest.lstrip("/")
        if b.host.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(exist_ok=True)
        steps.append(f"mount --bind {q(str(b.host))} {q(str(target))}")
        if b.read_only:
            steps.append(f"mount -o remount,bind,ro {q(str(target))}")
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"  # the host's PATH, not the root's
    steps.append(f"exec {chroot} {q(str(root))} /bin/sh -c {q(command)}")
    full = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LANG": "C.UTF-8",
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_DEFAULT_TIMEOUT": "180", "QEMU_CPU": profile.qemu_cpu,
            # Every timing from here is emulation, whatever /proc/cpuinfo says.
            "FER_EDGE_TIMING": "emulated", **(env or {})}
    if echo:
        print(f"+ [{release} {profile.name}] {command}", flush=True)
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", " && ".join(steps)],
                              env=full, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, _text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {timeout:.0f} s")


def _text(b) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def guest_cpu(release: str, profile: Profile) -> dict:
    """What the emulated CPU tells a program: the HWCAP bits XNNPACK and ruy choose kernels by,
    and the core /proc/cpuinfo names."""
    probe = ("python3 -c \"import ctypes, json, platform; g = ctypes.CDLL(None).getauxval; g.restype = ctypes.c_ulong; "
             "h, h2 = g(16), g(26); part = [l.split(':')[1].strip() for l in open('/proc/cpuinfo') if l.startswith('CPU part')]; "
             "print(json.dumps({'machine': platform.machine(), 'hwcap': h, 'hwcap2': h2, 'cpu_part': part[:1]}))\"")
    proc = run(release, probe, profile, echo=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    import json

    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    # Linux arm64 HWCAP bits (arch/arm64/include/uapi/asm/hwcap.h).
    hwcap = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp", "asimdhp",
             "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512", "sve")
    hwcap2 = {13: "i8mm", 14: "bf16", 1: "sve2"}
    seen["features"] = ([name for bit, name in enumerate(hwcap) if seen["hwcap"] >> bit & 1]
                        + [name for bit, name in hwcap2.items() if seen["hwcap2"] >> bit & 1])
    return seen

