"""Per-format x precision tool settings from convert/profiles/*.toml (package fer_edge.quant_profiles)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ..compat import tomllib
from ..errors import ConfigError
from ..formats import check_precision


def load_profile(fmt: str, precision: str) -> dict[str, Any]:
    """The [common] table merged with the [precision] table of ``<fmt>.toml``."""
    check_precision(fmt, precision)
    try:
        text = resources.files("fer_edge.quant_profiles").joinpath(f"{fmt}.toml").read_text()
    except FileNotFoundError:
        raise ConfigError(f"no conversion profile {fmt}.toml in fer_edge.quant_profiles") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{fmt}.toml: invalid TOML ({exc})") from exc
    if precision not in table:
        raise ConfigError(f"{fmt}.toml has no [{precision}] table")
    return {**table.get("common", {}), **table[precision]}
