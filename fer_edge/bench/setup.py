"""`fer-edge bench --setup`: what to install on a device, and (rpi with --host) doing it."""

from __future__ import annotations

from typing import Callable

from .profiles import load_profile


def setup_device(devices, profile: str, host: str | None, port: int | None, ssh_config: str | None,
                 say: Callable[[str], None]) -> str:
    lines = []
    for device in devices:
        name = profile if device == "rpi" else device
        prof = load_profile(name)
        lines.append(f"# {prof.description} (profile {name}, Python {prof.expected_python})")
        lines += list(prof.install)
        if prof.fallback_install:
            lines.append("# if ai-edge-litert has no wheel for this Python:")
            lines += list(prof.fallback_install)
        if prof.notes:
            lines.append(f"# {prof.notes}")
        if device == "rpi" and host:
            from .remote import perform_setup
            from .ssh import SSH

            perform_setup(SSH(host, port, ssh_config), name, say)
            lines.append(f"# installed on {host}: run fer-edge bench BUNDLE --device rpi --host {host}")
        elif device == "rpi":
            lines.append("# run these on the Pi, or pass --host USER@HOST to have fer-edge run them over SSH")
    return "\n".join(lines)
