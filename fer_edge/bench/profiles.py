"""Device profiles (devices/profiles/*.toml, installed as fer_edge.device_profiles)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ..compat import tomllib
from ..errors import ConfigError

PACKAGE = "fer_edge.device_profiles"


def profile_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PACKAGE).iterdir() if p.name.endswith(".toml"))


def load_profile(name: str) -> dict[str, Any]:
    path = resources.files(PACKAGE) / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown device profile {name!r}; choose one of {', '.join(profile_names())}")
    try:
        return tomllib.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"device profile {name}.toml is not valid TOML ({exc})") from exc
