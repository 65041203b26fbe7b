"""Device profiles (devices/profiles/*.toml, installed as fer_edge.device_profiles)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ..errors import ConfigError

PACKAGE = "fer_edge.device_profiles"


def _toml():
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise ConfigError("reading device profiles on Python 3.10 needs tomli (pip install tomli)") from exc
    return tomllib


def profile_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PACKAGE).iterdir() if p.name.endswith(".toml"))


def load_profile(name: str) -> dict[str, Any]:
    path = resources.files(PACKAGE) / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown device profile {name!r}; choose one of {', '.join(profile_names())}")
    try:
        return _toml().loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"device profile {name}.toml is not valid TOML ({exc})") from exc
