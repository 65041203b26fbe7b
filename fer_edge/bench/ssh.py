"""A thin OpenSSH client wrapper: the system ``ssh`` binary, so ~/.ssh/config, agents,
ProxyJump and known_hosts all apply. Host-key checking stays on (BatchMode makes an
unknown or changed key an error instead of a prompt).
"""

from __future__ import annotations

import io
import shlex
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import FerEdgeError


class RemoteError(FerEdgeError):
    """The remote device could not be reached, refused us, or lacks what the runner needs."""


def remote_path(path: str) -> str:
    """Quote a remote path for the remote shell, letting a leading ~/ expand to $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


@dataclass
class SSH:
    host: str  # USER@HOST or a Host alias of ~/.ssh/config
    port: int | None = None
    config: str | None = None  # an ssh_config file instead of ~/.ssh/config
    connect_timeout: int = 10

    def argv(self, command: str) -> list[str]:
        exe = shutil.which("ssh")
        if exe is None:
            raise RemoteError("the OpenSSH client (ssh) is not installed here; install openssh-client")
        args = [exe, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if self.config:
            args += ["-F", str(self.config)]
        if self.port:
            args += ["-p", str(self.port)]
        return args + ["--", self.host, command]

    @property
    def where(self) -> str:
        return f"{self.host}" + (f" port {self.port}" if self.port else "")

    def run(self, command: str, stdin: bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``command`` in the remote shell; ssh's own failures (exit 255) become RemoteErrors."""
        try:
            proc = subprocess.run(self.argv(command), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RemoteError(f"{self.where}: no answer within {timeout:.0f} s running {command.split()[0]!r}") from exc
        if proc.returncode == 255:
            raise RemoteError(self.explain(proc.stderr.decode(errors="replace")))
        return proc

    def explain(self, stderr: str) -> str:
        """One clear line for ssh's common failures."""
        last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "no message")
        low = stderr.lower()
        port = f" -p {self.port}" if self.port else ""
        if "could not resolve hostname" in low:
            return f"cannot reach {self.where}: the host name does not resolve ({last})"
        for sign in ("connection refused", "no route to host", "timed out", "network is unreachable",
                     "connection closed", "connection reset"):
            if sign in low:
                return f"cannot reach {self.where}: {last}; is the device on and its SSH server running?"
        if "host key verification failed" in low or "remote host identification has changed" in low:
            return (f"host key of {self.where} is unknown or has changed ({last}); check it and add it to "
                    f"known_hosts by connecting once: ssh{port} {self.host}")
        if "permission denied" in low or "too many authentication failures" in low:
            return (f"authentication to {self.where} failed ({last}); set up key login, e.g. "
                    f"ssh-copy-id{port} {self.host}")
        return f"ssh to {self.where} failed: {last}"

    def upload_dir(self, local: Path, remote_dir: str, timeout: float = 600) -> None:
        """Copy ``local``'s contents into a fresh ``remote_dir`` (a tar stream over one ssh call)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for item in sorted(Path(local).iterdir()):
                tar.add(item, arcname=item.name)
        d = remote_path(remote_dir)
        proc = self.run(f"rm -rf {d} && mkdir -p {d} && tar -xf - -C {d}", stdin=buf.getvalue(), timeout=timeout)
        if proc.returncode != 0:
            raise RemoteError(f"{self.where}: copying to {remote_dir} failed: {proc.stderr.decode(errors='replace').strip()}")
