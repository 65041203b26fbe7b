"""`--device rpi` on several hosts: each host runs the one-device remote path in its own thread.

The threads only wait on OpenSSH (`ssh` subprocesses), so a thread pool over
``remote.bench_remote`` is all the scheduling there is. With one host, its failure is
the command's error (as before); with several, a failing host gets its own error rows
and the other hosts' results are kept.
"""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import ConfigError, FerEdgeError
from . import schema
from .profiles import load_profile, profile_names
from .schema import BenchResult

# USER@HOST, HOST or an ssh_config alias, optionally :PORT; an IPv6 address goes in brackets.
_HOST = re.compile(r"(?P<host>(?:[^@\s:\[\]]+@)?(?:\[[0-9A-Fa-f:.]+\]|[^@\s:\[\]]+))(?::(?P<port>\d+))?")
HOSTS_LINE = "USER@HOST[:PORT] [PROFILE]"


@dataclasses.dataclass(frozen=True)
class Host:
    name: str  # what ssh gets: USER@HOST or an ssh_config alias (IPv6 without brackets)
    port: int | None = None
    profile: str | None = None  # rpi4 | rpi5; None: the command's --profile

    @property
    def label(self) -> str:
        return self.name + (f":{self.port}" if self.port else "")


def rpi_profiles() -> list[str]:
    return [p for p in profile_names() if load_profile(p).device == "rpi"]


def parse_host(text: str) -> Host:
    """``USER@HOST[:PORT]`` -> Host; raises ValueError with the reason."""
    m = _HOST.fullmatch(text.strip())
    if not m:
        raise ValueError(f"expected USER@HOST[:PORT] (IPv6 as [ADDR]:PORT), got {text!r}")
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535 in {text!r}")
    return Host(m["host"].replace("[", "").replace("]", ""), port)


def read_hosts_file(path: str | Path) -> list[Host]:
    """One host per line: ``USER@HOST[:PORT] [PROFILE]``; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read hosts file {path}: {exc.strerror or exc}") from exc
    profiles = rpi_profiles()
    hosts: list[Host] = []
    for no, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        try:
            if len(fields) > 2:
                raise ValueError(f"expected {HOSTS_LINE}, got {line!r}")
            host = parse_host(fields[0])
            if len(fields) == 2:
                if fields[1] not in profiles:
                    raise ValueError(f"unknown profile {fields[1]!r} (choose {', '.join(profiles)})")
                host = dataclasses.replace(host, profile=fields[1])
        except ValueError as exc:
            raise ConfigError(f"{path}:{no}: {exc}") from None
        hosts.append(host)
    if not hosts:
        raise ConfigError(f"{path}: no hosts (one per line: {HOSTS_LINE})")
    return hosts


def check_unique(hosts: list[Host]) -> None:
    seen: set[tuple[str, int | None]] = set()
    for h in hosts:
        if (h.name, h.port) in seen:
            raise ConfigError(f"host {h.label} is given twice")
        seen.add((h.name, h.port))


def bench_fleet(targets, ws, first_model, options, say) -> tuple[list[BenchResult], dict[str, dict]]:
    """Bench every host of ``options.hosts`` in parallel; one list of rows, one environment per host."""
    from .remote import bench_remote, machine_key

    per_host = [dataclasses.replace(options, host=h.name, port=h.port or options.port,
                                    profile=h.profile or options.profile, hosts=()) for h in options.rpi_hosts()]
    if len(per_host) == 1:
        return bench_remote(targets, ws, first_model, per_host[0], say)

    def one(opts):
        try:
            return bench_remote(targets, ws, first_model, opts, say)
        except FerEdgeError as exc:
            say(f"{machine_key(opts)}: failed: {exc}")
            return host_failed_rows(targets, opts, str(exc)), {}

    rows: list[BenchResult] = []
    envs: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=len(per_host), thread_name_prefix="fer-edge-host") as pool:
        for host_rows, host_envs in pool.map(one, per_host):  # results come back in host order
            rows += host_rows
            envs.update(host_envs)
    return rows, envs


def host_failed_rows(targets, options, error: str) -> list[BenchResult]:
    """One failed row per bundle for a host that could not run the bench."""
    from .remote import _row, machine_key

    machine = machine_key(options)
    return [_row(t, "-", None, machine, status=schema.FAILED, error=t.error if not t.ok else error) for t in targets]
