"""A dataset as a list of items plus one function that reads one face.

Readers of large datasets (RAF-DB, AffectNet, image folders) first list what they will
read, which is cheap (file names, csv rows, labels); the pixels come later, one item at
a time. ``materialize`` turns a listing into the in-memory ``FaceDataset`` every other
reader returns; the sharded cache (``fer-edge data prepare --shards``) streams the same
listing to disk without ever holding the whole dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..errors import DataError
from .dataset import BadItem, FaceDataset


@dataclass(frozen=True)
class Item:
    source: str  # the image file
    label: str  # canonical label name
    split: str
    where: str = ""  # the list/csv line that named it, for error messages
    box: tuple[int, int, int, int] | None = None  # (x, y, w, h) face box given by the dataset
    subject: str | None = None


@dataclass
class Listing:
    name: str
    root: str
    items: list[Item]
    label_names: tuple[str, ...]
    read: Callable[[Item], np.ndarray]  # one item -> uint8 (h, w) gray face; DataError when it cannot
    roles: dict[str, str] = field(default_factory=dict)
    skipped: list[BadItem] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def faces(self, skip_bad: bool) -> Iterator[tuple[Item, np.ndarray]]:
        """(item, face) in listing order; a face that cannot be read raises, or with
        ``skip_bad`` is added to ``skipped`` and left out."""
        for item in self.items:
            try:
                face = self.read(item)
            except DataError as exc:
                if not skip_bad:
                    raise
                self.skipped.append(BadItem(item.where or item.source, str(exc)))
                continue
            yield item, face


def materialize(listing: Listing, skip_bad: bool) -> FaceDataset:
    """Read every face of ``listing`` into one in-memory ``FaceDataset``."""
    images, kept = [], []
    for item, face in listing.faces(skip_bad):
        if images and face.shape != images[0].shape:
            raise DataError(f"{item.source}: face is {face.shape[1]}x{face.shape[0]} but {kept[0].source} is "
                            f"{images[0].shape[1]}x{images[0].shape[0]}; pass a size")
        images.append(face)
        kept.append(item)
    if not images:
        raise DataError(f"{listing.root}: none of its {len(listing.items)} listed images could be read")
    index = {n: i for i, n in enumerate(listing.label_names)}
    subjects = [it.subject for it in kept]
    return FaceDataset(
        name=listing.name,
        images=np.stack(images),
        labels=np.asarray([index[it.label] for it in kept], np.int64),
        label_names=listing.label_names,
        splits=np.asarray([it.split for it in kept]),
        sources=np.asarray([it.source for it in kept]),
        subjects=None if any(s is None for s in subjects) else np.asarray(subjects),
        roles=dict(listing.roles),
        skipped=listing.skipped,
        root=listing.root,
        info=dict(listing.info),
    )


def fail(bad: list[BadItem], skip_bad: bool, where: str, problem: str) -> None:
    """A bad list line or row: an error naming ``where``, or with ``skip_bad`` a listed bad item."""
    if not skip_bad:
        raise DataError(f"{where}: {problem}")
    bad.append(BadItem(where, problem))
