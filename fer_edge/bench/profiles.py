"""Device profiles (devices/profiles/*.toml, installed as fer_edge.device_profiles): one typed
schema, unknown keys rejected with the file and the key named.

Which runtimes and GPU paths a cpu/gpu row uses comes from the backend table
(fer_edge.runtime.backends) and bench/gpu.py, not from the profile; a profile says how to
set a device up and, for a Pi, where its runtime lives.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources

from ..compat import tomllib
from ..errors import ConfigError

PACKAGE = "fer_edge.device_profiles"
DEVICES = ("cpu", "gpu", "rpi")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    device: str  # one of DEVICES
    expected_python: str = "?"
    install: tuple[str, ...] = ()  # shell commands, run in order (on a Pi: by `bench --setup --host`)
    fallback_install: tuple[str, ...] = ()  # run instead when the last install command (the interpreter) fails
    notes: str = ""
    # rpi only
    formats: tuple[str, ...] = ("tflite",)
    threads: int = 4  # the device's cores; the bench also runs 1 thread
    remote_python: str = ""
    remote_dir: str = "~/.fer-edge/bench"


def profile_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PACKAGE).iterdir() if p.name.endswith(".toml"))


def load_profile(name: str) -> DeviceProfile:
    path = resources.files(PACKAGE) / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown device profile {name!r}; choose one of {', '.join(profile_names())}")
    try:
        data = tomllib.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"device profile {name}.toml is not valid TOML ({exc})") from exc
    return parse_profile(data, f"{name}.toml")


def parse_profile(data: dict, where: str) -> DeviceProfile:
    known = {f.name for f in fields(DeviceProfile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"device profile {where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
    missing = [k for k in ("name", "description", "device") if k not in data]
    if missing:
        raise ConfigError(f"device profile {where}: missing key {missing[0]!r}")
    if data["device"] not in DEVICES:
        raise ConfigError(f"device profile {where}: device must be one of {', '.join(DEVICES)}, not {data['device']!r}")
    if data["device"] == "rpi" and not data.get("remote_python"):
        raise ConfigError(f"device profile {where}: a Raspberry Pi profile needs remote_python")
    for f in fields(DeviceProfile):  # a string where a list of commands belongs would run letter by letter
        if f.name in data:
            want = (list,) if f.type.startswith("tuple") else (int,) if f.type == "int" else (str,)
            if not isinstance(data[f.name], want) or (want == (list,) and not all(isinstance(c, str) for c in data[f.name])):
                kind = "a list of strings" if want == (list,) else want[0].__name__
                raise ConfigError(f"device profile {where}: {f.name} must be {kind}, not {data[f.name]!r}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return DeviceProfile(**values)
