"""User-facing errors.

Anything raised as a ``FerEdgeError`` is a problem with the user's input or
environment: the CLI prints its message on one line and exits non-zero without
a traceback. Bugs stay ordinary exceptions so they keep their traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from types import ModuleType


class FerEdgeError(Exception):
    """A user error with a message that says what is wrong and where."""

    exit_code = 2


class DataError(FerEdgeError):
    """A dataset, image or label file is missing, malformed or inconsistent."""


class ModelError(FerEdgeError):
    """A model file or bundle is missing, malformed or does not match its manifest."""


class ConfigError(FerEdgeError):
    """A recipe, profile or argument combination is invalid."""


class MissingExtraError(FerEdgeError):
    """An optional dependency is not installed."""


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise a clear error naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise MissingExtraError(
            f"{module} is needed{what} but is not installed ({exc}); "
            f"install it with: pip install 'fer-edge[{extra}]'"
        ) from exc


# What each pip extra installs (pyproject.toml's optional-dependencies), by top-level module. Commands
# check the whole extra up front; a later failed import of one of these is reported the same way.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "train": ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "matplotlib", "sklearn", "pydantic"),
    "onnx": ("onnx", "onnxruntime", "tf2onnx", "sympy"),
    "openvino": ("openvino", "nncf"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None  # locates the module without importing it
    except (ImportError, ValueError):
        return False


def require_extras(extras: Iterable[str], purpose: str) -> None:
    """Fail before any work when ``purpose`` needs extras that are not installed: one error naming
    every missing module and the single pip command that installs them all."""
    missing_modules: list[str] = []
    missing_extras: list[str] = []
    for extra in dict.fromkeys(e for e in extras if e):
        absent = [m for m in EXTRA_MODULES[extra] if not _installed(m)]
        if absent:
            missing_modules += absent
            missing_extras.append(extra)
    if missing_extras:
        verb = "is" if len(missing_modules) == 1 else "are"
        raise MissingExtraError(
            f"{purpose} needs {', '.join(missing_modules)}, which {verb} not installed; "
            f"install with: pip install 'fer-edge[{','.join(missing_extras)}]'"
        )


def missing_extra_error(exc: ModuleNotFoundError) -> MissingExtraError | None:
    """The user-facing error for a failed import of an optional module; None for any other module
    (a real bug, which keeps its traceback)."""
    top = (exc.name or "").split(".")[0]
    for extra, modules in EXTRA_MODULES.items():
        if top in modules:
            return MissingExtraError(f"{top} is needed but is not installed; install it with: pip install 'fer-edge[{extra}]'")
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (tool errors can be pages long), at most 300 characters."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
