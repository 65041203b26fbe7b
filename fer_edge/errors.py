"""User-facing errors.

Anything raised as a ``FerEdgeError`` is a problem with the user's input or
environment: the CLI prints its message on one line and exits non-zero without
a traceback. Bugs stay ordinary exceptions so they keep their traceback.
"""

from __future__ import annotations

import importlib
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
