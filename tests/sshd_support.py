"""Real OpenSSH servers on localhost for the remote-bench tests (holds no tests itself).

Each server gets its own folder with a temporary host key, its own authorized_keys and
a free port picked here; it skips the test with the reason when sshd is not installed
or cannot start.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@dataclass
class SSHServer:
    port: int
    proc: subprocess.Popen
    known_hosts_line: str  # "[127.0.0.1]:PORT TYPE KEY"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_sshd(folder: Path, authorized_keys: str) -> SSHServer:
    """Start sshd on 127.0.0.1 at a free port, accepting ``authorized_keys`` for the current user."""
    if SSHD is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed (apt-get install openssh-server)")
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    keygen(d / "host_key")
    (d / "authorized_keys").write_text(authorized_keys)
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {getpass.getuser()}\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.skip(f"sshd could not start: {proc.stderr.read().decode()[-300:]}")
            time.sleep(0.05)
    host_pub = (d / "host_key.pub").read_text().split()
    return SSHServer(port, proc, f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}")


def client_alias(alias: str, port: int, identity: Path, known_hosts: Path) -> str:
    """An ssh_config ``Host`` block reaching 127.0.0.1:PORT with one key and a strict known_hosts."""
    return (f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n  IdentitiesOnly yes\n"
            f"  IdentityFile {identity}\n  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n")
