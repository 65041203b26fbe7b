"""Evaluation protocols named in a recipe's ``[data.protocols.*]`` tables.

Types:
  fixed               train/val/test selectors (FER2013's official split, 4-class subset...)
  loso                leave-one-subject-out; validation on another subject (``val_from =
                      "next_subject"``) or a seeded holdout of the training fold; optional offline
                      augmentation (``copies``) of the training fold only
  augment_then_split  the JAFFE paper's protocol: augment every image, then split the augmented
                      set at random. Copies of one source image (and one person) land in both
                      train and test: it LEAKS, and is labelled so.
Each protocol yields Tasks: the arrays to train on plus the selectors stored in provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..bundle import InputSpec
from ..data.dataset import FaceDataset, select
from ..errors import ConfigError, DataError
from .data import to_input


@dataclass
class Part:
    x: np.ndarray  # uint8 resized faces (N,h,w,c): the model input, or what its crop is cut from
    y: np.ndarray  # int labels
    faces: FaceDataset | None = None  # the selected samples (sources, original images) for soft targets


@dataclass
class Task:
    name: str
    train: Part
    val: Part
    test: Part
    selectors: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def protocol_config(recipe_data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    data = recipe_data["data"]
    name = data.get("protocol", "official")
    protocols = data.get("protocols", {})
    if name not in protocols:
        raise ConfigError(f"recipe protocol {name!r} is not defined; defined: {', '.join(protocols) or 'none'}")
    return name, protocols[name]


def tasks(recipe_data: dict[str, Any], ds: FaceDataset, spec: InputSpec, seed: int, limit: int | None = None,
          cache: Path | None = None) -> Iterator[Task]:
    """``limit`` caps each split (quick runs and tests) with a seeded stratified holdout
    selector, so the reduced split is still re-creatable from provenance. ``cache``: where offline
    augmented copies are kept for a resume."""
    _, cfg = protocol_config(recipe_data)
    kind = cfg.get("type", "fixed")
    subset = None
    if limit:
        roles = [cfg[r] for r in ("train", "val", "test") if r in cfg]
        if kind == "fixed" and not any("holdout" in sel for sel in roles):
            cfg = {**cfg, **{r: _limited(ds, cfg[r], limit, seed) for r in ("train", "val", "test")}}
        else:
            # Shrink the whole dataset first (recorded as data.subset: apply it before the selectors).
            subset = _limited(ds, {}, limit * 3, seed)
            ds = select(ds, subset) if subset else ds
    for task in _tasks(kind, cfg, recipe_data, ds, spec, seed, cache):
        if subset:
            task.selectors["subset"] = subset
            task.notes.append(f"quick run: dataset reduced first with selector {subset}")
        yield task


def _tasks(kind, cfg, recipe_data, ds, spec, seed, cache=None) -> Iterator[Task]:
    if kind == "fixed":
        yield _fixed(cfg, ds, spec)
    elif kind == "loso":
        yield from _loso(cfg, ds, spec, seed, recipe_data.get("augment", {}), cache)
    elif kind == "augment_then_split":
        yield _augment_then_split(cfg, ds, spec, seed, recipe_data.get("augment", {}), cache)
    else:
        raise ConfigError(f"unknown protocol type {kind!r}; choose fixed, loso or augment_then_split")


def _limited(ds: FaceDataset, sel: dict[str, Any], limit: int, seed: int) -> dict[str, Any]:
    n = len(select(ds, sel)) if sel else len(ds)
    if n <= limit:
        return sel
    return {**sel, "holdout": {"fraction": limit / n, "seed": seed, "part": "holdout"}}


def _part(ds: FaceDataset, spec: InputSpec) -> Part:
    return Part(to_input(ds, spec), ds.labels.astype(np.int64), ds)


def _fixed(cfg, ds, spec) -> Task:
    sel = {role: dict(cfg[role]) for role in ("train", "val", "test")}
    return Task("main", *(_part(select(ds, sel[r]), spec) for r in ("train", "val", "test")), selectors=sel)


def loso_subjects(cfg: dict[str, Any], ds: FaceDataset) -> list[str]:
    if ds.subjects is None:
        raise DataError(f"{ds.name}: has no subject ids; leave-one-subject-out needs them")
    all_subjects = sorted(set(ds.subjects.tolist()))
    want = cfg.get("folds", "all")
    if want == "all":
        return all_subjects
    if isinstance(want, int):
        return all_subjects[:want]
    missing = [s for s in want if s not in all_subjects]
    if missing:
        raise ConfigError(f"LOSO folds {missing} are not subjects of {ds.name} ({all_subjects})")
    return list(want)


def _loso(cfg, ds, spec, seed, augment, cache=None) -> Iterator[Task]:
    from .augment import augment_copies

    frac = float(cfg.get("val_fraction", 0.1))
    copies = int(cfg.get("copies", 0))
    everyone = sorted(set(ds.subjects.tolist())) if ds.subjects is not None else []
    folds = loso_subjects(cfg, ds)
    if cfg.get("val_from", "holdout") == "next_subject" and len(everyone) < 3:
        # one subject to test, one to validate, at least one to train on
        raise ConfigError(f"LOSO val_from = \"next_subject\" needs at least 3 subjects; {ds.name} has "
                          f"{len(everyone)} ({everyone}): use val_from = \"holdout\"")
    for subject in folds:
        if cfg.get("val_from", "holdout") == "next_subject":
            # validation on a person the model never trains on either: a holdout of the training
            # subjects' own images scores person-dependent accuracy and stops training too early
            other = everyone[(everyone.index(subject) + 1) % len(everyone)]
            sel = {
                "train": {"exclude_subjects": [subject, other]},
                "val": {"subjects": [other]},
                "test": {"subjects": [subject]},
            }
        else:
            hold = {"fraction": frac, "seed": seed}
            sel = {
                "train": {"exclude_subjects": [subject], "holdout": {**hold, "part": "rest"}},
                "val": {"exclude_subjects": [subject], "holdout": {**hold, "part": "holdout"}},
                "test": {"subjects": [subject]},
            }
        train = _part(select(ds, sel["train"]), spec)
        notes = [f"test subject {subject} never seen in training"]
        if "subjects" in sel["val"]:
            notes.append(f"validation subject {sel['val']['subjects'][0]} never seen in training either")
        if copies:
            x, src = augment_copies(train.x, augment, copies, seed, cache=cache)
            train = Part(x, train.y[src])
            notes.append(f"training fold augmented offline: {copies} copies per image ({len(x)} images)")
        yield Task(f"loso-{subject}", train, _part(select(ds, sel["val"]), spec),
                   _part(select(ds, sel["test"]), spec), selectors=sel, notes=notes)


def _augment_then_split(cfg, ds, spec, seed, augment, cache=None) -> Task:
    from .augment import augment_copies

    copies = int(cfg.get("copies", 40))
    test_fraction = float(cfg.get("test_fraction", 0.1))
    val_fraction = float(cfg.get("val_fraction", 0.1))
    base = _part(ds, spec)
    x, src = augment_copies(base.x, augment, copies, seed, cache=cache)
    y = base.y[src]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    n_val = int(round((len(x) - n_test) * val_fraction))
    te, va, tr = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    shared = len(set(src[te].tolist()) & set(src[tr].tolist()))
    everything = {"split": ds.splits[0]} if len(set(ds.splits.tolist())) == 1 else {}
    sel = {
        "train": everything,
        "val": everything,
        "test": everything,
        "note": (
            f"paper protocol: {copies} augmented copies of every image, then a random "
            f"{1 - test_fraction:.0%}/{test_fraction:.0%} split of the copies (seed {seed}); the test set "
            "is augmented copies and cannot be re-created by a selector"
        ),
    }
    notes = [
        f"LEAKS: {shared} of {len(base.x)} source images have copies in both train and test; every "
        "test subject is also a training subject"
    ]
    return Task("main", Part(x[tr], y[tr]), Part(x[va], y[va]), Part(x[te], y[te]), selectors=sel, notes=notes)
