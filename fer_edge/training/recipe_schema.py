"""The typed schema of a recipe file (pydantic): every table and key a recipe may hold.

Unknown or misspelled keys are rejected with the file and the key's dotted path
(``train.epochz``), so a typo can never be silently ignored. Values keep their TOML types;
the trainer reads the validated dict, so the provenance stores the recipe exactly as written.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from .recipes import PRECISIONS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Holdout(_Strict):
    fraction: float = Field(gt=0, lt=1)
    seed: int = 0
    part: Literal["holdout", "rest"] = "holdout"


class Selector(_Strict):  # fer_edge.data.dataset.select
    split: Optional[str] = None
    subjects: Optional[list[str]] = None
    exclude_subjects: Optional[list[str]] = None
    holdout: Optional[Holdout] = None


class Protocol(_Strict):
    type: Literal["fixed", "loso", "augment_then_split"] = "fixed"
    label: Optional[str] = None
    train: Optional[Selector] = None
    val: Optional[Selector] = None
    test: Optional[Selector] = None
    copies: Optional[int] = Field(default=None, ge=1)  # offline augmentation (JAFFE paper)
    folds: Optional[Union[int, Literal["all"], list[str]]] = None
    val_fraction: Optional[float] = None
    val_from: Literal["holdout", "next_subject"] = "holdout"  # loso: a holdout of the training
    # subjects' images, or the next subject in sorted order (never trained on)
    test_fraction: Optional[float] = None

    @model_validator(mode="after")
    def _keys_of_its_type(self):  # a key the protocol type never reads would be ignored without a word
        given = self.model_fields_set - {"type", "label"}
        unused = sorted(given - PROTOCOL_KEYS[self.type])
        if unused:
            raise ValueError(f"protocol type {self.type!r} does not use {', '.join(unused)} "
                             f"(it reads {', '.join(sorted(PROTOCOL_KEYS[self.type]))})")
        if self.type == "fixed" and not {"train", "val", "test"} <= given:
            raise ValueError("protocol type 'fixed' needs train, val and test selectors")
        return self


# The keys each protocol type reads (fer_edge/training/protocols.py), besides type and label.
PROTOCOL_KEYS = {
    "fixed": {"train", "val", "test"},
    "loso": {"folds", "val_fraction", "val_from", "copies"},
    "augment_then_split": {"copies", "val_fraction", "test_fraction"},
}


class Data(_Strict):
    kind: Optional[str] = None
    labels: Optional[Union[str, list[str]]] = None
    drop_labels: Optional[list[str]] = None
    protocol: str = "official"
    protocols: dict[str, Protocol]


class Input(_Strict):
    size: tuple[int, int] = (48, 48)
    crop: Optional[tuple[int, int]] = None
    color: Literal["gray", "rgb", "bgr"] = "gray"
    interpolation: Literal["nearest", "bilinear", "bicubic", "area"] = "bilinear"
    scale: float = 1.0
    offset: list[float] = [0.0]
    tta: Literal["none", "flip", "ten_crop"] = "none"

    @model_validator(mode="after")
    def _crop_fits(self):  # the same rules as bundle.InputSpec, checked here so the error names the recipe
        if self.crop and not all(0 < c <= s for c, s in zip(self.crop, self.size)):
            raise ValueError(f"crop {list(self.crop)} must fit inside size {list(self.size)}")
        if self.tta == "ten_crop" and tuple(self.crop or self.size) == tuple(self.size):
            raise ValueError("tta 'ten_crop' needs a crop smaller than size")
        return self


class Model(_Strict):
    builder: str
    name: Optional[str] = None
    weights: Optional[str] = None
    normalize: Literal["none", "unit", "tanh", "caffe"] = "none"
    head: Literal["linear", "dense", "resnet_mlp"] = "linear"
    dropout: float = 0.0
    units: Optional[list[int]] = None
    # mobilenetv2 / efficientnet / resnet50
    alpha: Optional[float] = None
    variant: Optional[str] = None
    freeze_bn: Optional[bool] = None
    bn_recalibrate: Optional[bool] = None
    bn_momentum: Optional[float] = None
    substitute: Optional[dict[str, Any]] = None
    substitution: Optional[str] = None
    # custom_cnn
    kernel: Optional[int] = None
    filters: Optional[list[int]] = None
    dense: Optional[list[int]] = None
    dense_dropout: Optional[float] = None
    # plain_cnn
    widths: Optional[list[int]] = None
    convs: Optional[int] = Field(default=None, ge=1)


_Schedule = Literal["constant", "cosine", "step"]
_Optimizer = Literal["adam", "adamw", "sgd"]


class Stage(_Strict):
    epochs: int = Field(ge=0)
    trainable: str = "all"
    lr: Optional[float] = Field(default=None, gt=0)
    schedule: Optional[_Schedule] = None
    warmup_epochs: Optional[float] = None
    optimizer: Optional[_Optimizer] = None
    decay_every_epochs: Optional[int] = None
    decay_rate: Optional[float] = None


class Train(_Strict):
    seed: int = 0
    epochs: Optional[int] = Field(default=None, ge=1)
    stages: Optional[list[Stage]] = None
    trainable: Optional[str] = None
    batch_size: int = Field(default=64, ge=1)
    precision: Literal[PRECISIONS] = "float32"
    optimizer: _Optimizer = "adam"
    lr: Optional[float] = Field(default=None, gt=0)
    momentum: Optional[float] = None
    nesterov: Optional[bool] = None
    weight_decay: Optional[float] = Field(default=None, ge=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    class_balance: Literal["none", "balanced", "sqrt"] = "none"
    schedule: _Schedule = "constant"
    warmup_epochs: Optional[float] = None
    decay_every_epochs: Optional[int] = None
    decay_rate: Optional[float] = None
    early_stopping_patience: Optional[int] = None  # epochs without a val accuracy gain; 100% ends it at once (fitloop)
    cache_features: Optional[bool] = None
    strategy: Literal["auto", "none", "mirrored", "multiworker"] = "auto"  # training/distribute.py
    replica_scaling: Literal["linear", "none"] = "linear"  # how batch and lr follow the replica count


class Augment(_Strict):
    hflip: bool = False
    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0
    stretch: float = 0.0
    shear: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    fill: Literal["nearest", "reflect", "constant", "wrap"] = "nearest"
    random_crop: bool = False
    erasing: float = Field(default=0.0, ge=0, le=1)


class Report(_Strict):
    tsne_samples: int = Field(default=1500, ge=0)  # 0: no t-SNE plot
    notes: list[str] = []


class Cross(_Strict):
    name: str
    path: str
    kind: Optional[str] = None
    drop: list[str] = []
    test: Optional[Selector] = None


class Eval(_Strict):
    cross: list[Cross] = []


class FerPlus(_Strict):
    weight: float = Field(gt=0, lt=1)
    votes: str = "ferplus/fer2013new.csv"


class Distill(_Strict):
    teachers: list[str] = []
    weight: float = Field(default=0.5, gt=0, lt=1)
    temperature: float = Field(default=2.0, gt=0)
    tta: Literal["none", "flip", "ten_crop"] = "flip"


class RecipeFile(_Strict):
    name: str
    description: Optional[str] = None
    paper: Optional[str] = None
    claim: Optional[str] = None
    data: Data
    input: Input
    model: Model
    train: Train
    augment: Augment = Augment()
    report: Report = Report()
    eval: Eval = Eval()
    ferplus: Optional[FerPlus] = None
    distill: Optional[Distill] = None
    extends: Optional[str] = None  # the parent recipe this variant was merged onto (recipes.py)
    overrides: Optional[dict[str, Any]] = None  # written by with_overrides (CLI flags), recorded in provenance
    distribute: Optional[dict[str, Any]] = None  # written by distribute.scaled (replicas, batch), recorded in provenance


def validate_recipe(data: dict[str, Any], source: str) -> None:
    """Raise a ConfigError naming ``source`` and the first bad key (dotted path) of ``data``."""
    try:
        RecipeFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:3]:
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key {where}")
            elif err["type"] == "missing":
                problems.append(f"missing key {where}")
            else:
                problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise ConfigError(f"{source}: " + "; ".join(problems) + more) from None
