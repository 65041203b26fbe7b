"""Device profiles: one typed schema (unknown keys rejected) and `bench --setup --host` runs exactly
the install commands the profile prints, with its fallback when one fails."""

from __future__ import annotations

import subprocess

import pytest

from fer_edge.bench.profiles import load_profile, parse_profile, profile_names
from fer_edge.errors import ConfigError


def test_every_shipped_profile_parses():
    assert set(profile_names()) >= {"cpu", "gpu", "rpi4", "rpi5"}
    for name in profile_names():
        prof = load_profile(name)
        assert prof.name == name and prof.install
    assert load_profile("rpi5").remote_python.startswith("~/")


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "description": "d", "device": "cpu", "runtimes": ["litert"]}, "unknown key 'runtimes'"),
    ({"name": "x", "description": "d"}, "missing key 'device'"),
    ({"name": "x", "description": "d", "device": "tpu"}, "device must be one of"),
    ({"name": "x", "description": "d", "device": "rpi"}, "needs remote_python"),
])
def test_bad_profiles_are_refused(data, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_profile(data, "x.toml")
    assert "x.toml" in str(info.value)


class FakeSSH:
    """Records commands; the ones listed in ``fail`` exit 1."""

    where = "pi@fake"

    def __init__(self, fail=()):
        self.fail, self.ran = set(fail), []

    def run(self, cmd, timeout=None):
        self.ran.append(cmd)
        code = 1 if cmd in self.fail else 0
        return subprocess.CompletedProcess(cmd, code, b"ok 2.4.6 ai_edge_litert.interpreter\n" if not code else b"",
                                           b"no wheel\n" if code else b"")


def test_setup_runs_the_profiles_commands_then_the_fallback():
    from fer_edge.bench.remote import perform_setup

    prof = load_profile("rpi4")
    ssh = FakeSSH()
    perform_setup(ssh, "rpi4", lambda s: None)
    assert ssh.ran[: len(prof.install)] == list(prof.install)
    assert "import numpy" in ssh.ran[-1] and len(ssh.ran) == len(prof.install) + 1

    ssh = FakeSSH(fail={prof.install[-1]})
    perform_setup(ssh, "rpi4", lambda s: None)
    assert ssh.ran[len(prof.install): len(prof.install) + len(prof.fallback_install)] == list(prof.fallback_install)


def test_setup_failure_names_the_command():
    from fer_edge.bench.remote import perform_setup
    from fer_edge.bench.ssh import RemoteError

    prof = load_profile("rpi4")
    ssh = FakeSSH(fail={prof.install[0]})
    with pytest.raises(RemoteError, match="sudo apt-get install"):
        perform_setup(ssh, "rpi4", lambda s: None)


def test_profile_values_are_typed():
    with pytest.raises(ConfigError, match="install must be a list of strings"):
        parse_profile({"name": "x", "description": "d", "device": "cpu", "install": "pip install x"}, "x.toml")
    with pytest.raises(ConfigError, match="threads must be int"):
        parse_profile({"name": "x", "description": "d", "device": "rpi", "remote_python": "p", "threads": "4"}, "x.toml")
