"""The `fer-edge` command line: a thin click skin over the importable API."""

from .main import main

__all__ = ["main"]
