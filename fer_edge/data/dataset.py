"""The one in-memory form every dataset reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class BadItem:
    """A file or row that could not be read (reported with --skip-bad)."""

    source: str
    problem: str


@dataclass
class FaceDataset:
    """Face images with canonical labels.

    images:      (N, H, W) uint8 grayscale or (N, H, W, 3) uint8 RGB, already face crops
                 (or whole images for datasets that are pre-cropped).
    labels:      (N,) int64 indices into ``label_names``; -1 marks "no hard label"
                 (only possible in FER+ soft-label mode).
    label_names: canonical names (see ``fer_edge.labels``), in index order.
    splits:      (N,) str, the dataset's own split names ("Training", "PublicTest",
                 "PrivateTest" for FER2013; folder names for image folders; "all" for
                 datasets without an official split, e.g. JAFFE and CK+).
    roles:       maps protocol roles "train"/"val"/"test" to split names where the
                 dataset defines them (FER2013: train=Training, val=PublicTest,
                 test=PrivateTest).
    subjects:    (N,) str subject/identity ids, or None where the dataset has none.
    sources:     (N,) str, where each sample came from ("path/file.png" or "fer2013.csv.gz:row 17").
    soft_labels: (N, K) float32 vote distributions (FER+), or None.
    sequences:   (N,) str clip/sequence ids where frames come from one recording (CK+:
                 "S005_001"), or None; frames of one sequence are near-identical.
    info:        reader facts for reports, e.g. FER+ rows dropped and why (JSON-able).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    splits: np.ndarray
    sources: np.ndarray
    subjects: np.ndarray | None = None
    soft_labels: np.ndarray | None = None
    roles: dict[str, str] = field(default_factory=dict)
    skipped: list[BadItem] = field(default_factory=list)
    root: str = ""
    sequences: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        for attr in ("labels", "splits", "sources"):
            if len(getattr(self, attr)) != n:
                raise ValueError(f"{attr} has {len(getattr(self, attr))} entries for {n} images")
        if self.subjects is not None and len(self.subjects) != n:
            raise ValueError("subjects length does not match images")
        if self.sequences is not None and len(self.sequences) != n:
            raise ValueError("sequences length does not match images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else self.images.shape[-1]

    def subset(self, mask_or_index: np.ndarray, name: str | None = None) -> "FaceDataset":
        idx = np.asarray(mask_or_index)
        return FaceDataset(
            name=name or self.name,
            images=self.images[idx],
            labels=self.labels[idx],
            label_names=self.label_names,
            splits=self.splits[idx],
            sources=self.sources[idx],
            subjects=None if self.subjects is None else self.subjects[idx],
            soft_labels=None if self.soft_labels is None else self.soft_labels[idx],
            roles=dict(self.roles),
            skipped=list(self.skipped),
            root=self.root,
            sequences=None if self.sequences is None else self.sequences[idx],
            info=dict(self.info),
        )

    def split(self, name_or_role: str) -> "FaceDataset":
        """Samples of one split, by split name or by role ("train"/"val"/"test")."""
        name = self.roles.get(name_or_role, name_or_role)
        mask = self.splits == name
        if not mask.any():
            have = sorted(set(self.splits.tolist()))
            roles = ", ".join(f"{k}={v}" for k, v in self.roles.items())
            raise DataError(
                f"{self.name}: no samples in split {name_or_role!r}; splits are {have}"
                + (f" (roles: {roles})" if roles else "")
            )
        return self.subset(mask)

    def with_labels(self, names: tuple[str, ...]) -> "FaceDataset":
        """Keep only samples whose label is in ``names`` and re-index to that order.

        Used for the 4-class subset and for cross-dataset tests (e.g. CK+ without contempt
        against a FER2013 model).
        """
        unknown = [n for n in names if n not in self.label_names]
        if unknown:
            raise DataError(f"{self.name}: labels {unknown} are not in this dataset ({self.label_names})")
        old_to_new = np.full(len(self.label_names) + 1, -1, dtype=np.int64)
        for new, label in enumerate(names):
            old_to_new[self.label_names.index(label)] = new
        mapped = old_to_new[self.labels]  # -1 stays -1 via the extra slot
        keep = mapped >= 0
        out = self.subset(keep)
        out.labels = mapped[keep]
        out.label_names = tuple(names)
        if out.soft_labels is not None:
            cols = [self.label_names.index(n) for n in names]
            soft = out.soft_labels[:, cols]
            out.soft_labels = soft / np.clip(soft.sum(1, keepdims=True), 1e-8, None)
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {label: count}} in label order."""
        out: dict[str, dict[str, int]] = {}
        for split in dict.fromkeys(self.splits.tolist()):
            labels = self.labels[self.splits == split]
            out[split] = {name: int((labels == i).sum()) for i, name in enumerate(self.label_names)}
        return out


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a stratified holdout (e.g. validation carved from training), fixed by seed."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"holdout fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        take = int(round(len(idx) * fraction))
        mask[idx[:take]] = True
    return mask


def select(ds: FaceDataset, selector: dict) -> FaceDataset:
    """Pick the samples a protocol names; selectors are stored in bundle provenance.

    Forms (keys combine with AND):
      {"split": "PrivateTest"} or {"split": "test"}   a split name or role
      {"subjects": ["KA", "KL"]}                       these subjects only
      {"exclude_subjects": ["KA"]}                     all but these subjects
      {"holdout": {"fraction": 0.1, "seed": 0, "part": "holdout"|"rest"}}
                                                        stratified holdout of what is selected so far
    """
    known = {"split", "subjects", "exclude_subjects", "holdout"}
    extra = set(selector) - known
    if extra:
        raise DataError(f"unknown selector keys {sorted(extra)}; known: {sorted(known)}")
    out = ds
    if "split" in selector:
        out = out.split(selector["split"])
    for key, keep_listed in (("subjects", True), ("exclude_subjects", False)):
        if key in selector:
            if out.subjects is None:
                raise DataError(f"{ds.name}: has no subject ids, cannot select by {key}")
            listed = np.isin(out.subjects, np.asarray(selector[key], dtype=str))
            out = out.subset(listed if keep_listed else ~listed)
    if "holdout" in selector:
        h = selector["holdout"]
        mask = stratified_holdout(out.labels, float(h["fraction"]), int(h.get("seed", 0)))
        part = h.get("part", "holdout")
        if part not in ("holdout", "rest"):
            raise DataError(f"holdout part must be 'holdout' or 'rest', not {part!r}")
        out = out.subset(mask if part == "holdout" else ~mask)
    if len(out) == 0:
        raise DataError(f"{ds.name}: selector {selector} selects no samples")
    return out


def select_role(ds: FaceDataset, data: dict, role: str) -> FaceDataset:
    """The samples a bundle's provenance (``provenance["data"]``) names for ``role``
    ("train"/"val"/"test"): its quick-run ``subset`` first (a ``--limit`` run reduced the
    dataset before selecting), then the role's selector (default: the split of that name).
    Training, eval, convert and bench all pick their faces here."""
    if data.get("subset"):
        ds = select(ds, data["subset"])
    return select(ds, data.get(role) or {"split": role})
