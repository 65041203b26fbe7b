"""Recipes are TOML data files: one per recipe, selectable by name or by path.

Built-in recipes live in ``train/recipes`` and are installed as the package
``fer_edge.recipes``; they are read with importlib.resources so a pip-installed
user reaches them too.

A variant names its parent and states only what differs (``extends = "edge_plain44"``, or a path
relative to the variant's file): tables are merged key by key, any other value replaces the
parent's. The loaded recipe is the merged one, so provenance records every effective setting.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..compat import tomllib
from ..errors import ConfigError

# Every recipe must have these tables; keys inside are checked where they are used.
REQUIRED = ("name", "data", "input", "model", "train")


# Words for readers, not settings: editing them must not stop a run from resuming.
_PROSE = ("description", "paper", "claim", "report")


def training_digest(recipe_data: dict[str, Any]) -> str:
    """sha256 of what a training run depends on: the recipe without its prose (description, paper,
    claim, the report's notes and t-SNE size), protocol labels and the list of LOSO folds (a fold trains
    the same whichever other folds run, its subject is its folder's name). ``--resume`` and a LOSO
    run's finished folds compare it, so a reworded note keeps a long run resumable while a changed
    setting does not."""
    data = {k: v for k, v in recipe_data.items() if k not in _PROSE}
    protocols = data.get("data", {}).get("protocols")
    if protocols:
        data = {**data, "data": {**data["data"], "protocols": {
            name: {k: v for k, v in p.items() if k not in ("label", "folds")} for name, p in protocols.items()}}}
    return hashlib.sha256(_canonical(data)).hexdigest()


def full_digest(recipe_data: dict[str, Any]) -> str:
    """The digest runs checkpointed before training_digest existed recorded (the whole recipe)."""
    return hashlib.sha256(_canonical(recipe_data)).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()


@dataclass
class Recipe:
    name: str
    data: dict[str, Any]  # the whole recipe as a dict (stored verbatim in provenance)
    source: str  # "builtin:NAME" or a file path
    sha256: str  # of the recipe file's bytes

    def section(self, key: str) -> dict[str, Any]:
        return self.data.get(key, {})

    @property
    def stages(self) -> list[dict[str, Any]]:
        """Training stages (e.g. head only, then all layers); one stage when none are listed."""
        train = self.data["train"]
        stages = train.get("stages")
        if not stages:
            return [{"epochs": int(train["epochs"]), "trainable": train.get("trainable", "all")}]
        return [dict(s) for s in stages]

    @property
    def epochs(self) -> int:
        return sum(int(s["epochs"]) for s in self.stages)


def builtin_names() -> list[str]:
    root = resources.files("fer_edge.recipes")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A built-in recipe by name (``edge_mobilenetv2_64``) or a recipe file by path."""
    data, source, digest = _read_merged(str(name_or_path), chain=())
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"{source}: recipe lacks {missing}")
    from .recipe_schema import validate_recipe

    validate_recipe(data, source)
    return Recipe(name=str(data["name"]), data=data, source=source, sha256=digest)


def _merged(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_merged(text: str, chain: tuple[str, ...], base_dir: Path | None = None) -> tuple[dict[str, Any], str, str]:
    """(recipe dict with its parents merged in, source, sha256 over its own bytes and its parents')."""
    raw, source = _read_raw(text, base_dir)
    if source in chain:
        raise ConfigError(f"{source}: recipe extends itself ({' -> '.join(chain + (source,))})")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not a valid TOML recipe ({exc})") from exc
    digest = hashlib.sha256(raw).hexdigest()
    parent_name = data.get("extends")
    if parent_name is None:
        return data, source, digest
    if not isinstance(parent_name, str) or not parent_name:
        raise ConfigError(f"{source}: extends must name a recipe, got {parent_name!r}")
    here = Path(source).parent if not source.startswith("builtin:") else None
    parent, _, parent_digest = _read_merged(parent_name, chain + (source,), here)
    parent.pop("extends", None)
    merged = _merged(parent, data)
    # the parent's settings are part of this recipe: a change there must change the digest (--resume)
    return merged, source, hashlib.sha256(raw + parent_digest.encode()).hexdigest()


def _read_raw(text: str, base_dir: Path | None) -> tuple[bytes, str]:
    path = Path(text)
    if path.suffix == ".toml" or "/" in text or path.is_file():  # a folder named like a recipe (a run) is not one
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise ConfigError(f"{path}: recipe file not found")
        return path.read_bytes(), str(path.resolve())
    res = resources.files("fer_edge.recipes") / f"{text}.toml"
    if not res.is_file():
        raise ConfigError(f"unknown recipe {text!r}; built-in recipes: {', '.join(builtin_names())}")
    return res.read_bytes(), f"builtin:{text}"


PRECISIONS = ("float32", "mixed_bfloat16")  # [train] precision: the schema, --precision and the trainer read it here


def with_overrides(
    recipe: Recipe,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    protocol: str | None = None,
    weights: str | None = None,
    teachers: list[str] | None = None,
    precision: str | None = None,
) -> Recipe:
    """A copy with CLI overrides applied; the overrides are recorded in the recipe dict."""
    data = copy.deepcopy(recipe.data)
    train = data["train"]
    applied: dict[str, Any] = {}
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {epochs}")
        applied["epochs"] = epochs
        stages = train.get("stages")
        if stages:
            # Keep the head-only stages as written (capped), give the rest to the last stage.
            left = epochs
            for st in stages[:-1]:
                st["epochs"] = min(int(st["epochs"]), max(left - 1, 0))
                left -= st["epochs"]
            stages[-1]["epochs"] = left
            train["stages"] = [s for s in stages if int(s["epochs"]) > 0]
        train["epochs"] = epochs
    if batch_size is not None:
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
        train["batch_size"] = applied["batch_size"] = batch_size
    if lr is not None:
        if lr <= 0:
            raise ConfigError(f"--lr must be > 0, got {lr}")
        train["lr"] = applied["lr"] = lr
        for st in train.get("stages", []):
            st.pop("lr", None)  # one override wins over per-stage rates
    if seed is not None:
        train["seed"] = applied["seed"] = seed
    if precision is not None:
        if precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        train["precision"] = applied["precision"] = precision
    if protocol is not None:
        protocols = data["data"].get("protocols", {})
        if protocol not in protocols:
            raise ConfigError(
                f"recipe {recipe.name!r} has no protocol {protocol!r}; it has: {', '.join(protocols) or 'none'}"
            )
        data["data"]["protocol"] = applied["protocol"] = protocol
    if weights is not None:  # e.g. a local ResNet50 notop .h5 when offline
        data["model"]["weights"] = applied["weights"] = weights
    if teachers:  # --teacher RUN ...: distill from these runs (weight/temperature from [distill] or defaults)
        distill = data.setdefault("distill", {})
        distill["teachers"] = applied["teachers"] = [str(t) for t in teachers]
        distill.setdefault("weight", 0.5)
    if applied:
        data["overrides"] = applied
    return Recipe(name=recipe.name, data=data, source=recipe.source, sha256=recipe.sha256)
