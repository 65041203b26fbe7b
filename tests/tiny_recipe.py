"""The tests' tiny plain CNN (tests/recipes/tiny_plain.toml) and its variants."""

from __future__ import annotations

import json
from pathlib import Path

BASE = Path(__file__).resolve().with_name("recipes") / "tiny_plain.toml"


def tiny_recipe(changes: str = "") -> str:
    """A recipe's text: the tiny base plus ``changes``, TOML whose keys replace or add to the base's."""
    return f"extends = {json.dumps(BASE.as_posix())}\n{changes}"
