"""What ``fer-edge data info`` and ``data prepare`` compute and print."""

from __future__ import annotations

import time
from pathlib import Path

from .cache import save_npz
from ..errors import DataError
from .dataset import FaceDataset
from .leakage import leakage_report
from .loader import load_dataset

MAX_BAD_LISTED = 50


def describe(ds: FaceDataset, near_dups: bool = False) -> dict:
    """A JSON-able summary: counts per split x class, subjects, leakage, bad files."""
    leak = leakage_report(ds, near=near_dups).summary(ds)
    out = {
        "name": ds.name,
        "kind": ds.info.get("kind", ds.name),
        "path": ds.root,
        "samples": len(ds),
        "image_shape": list(ds.images.shape[1:]),
        "label_names": list(ds.label_names),
        "roles": ds.roles,
        "counts": ds.counts(),
        "subjects": None if ds.subjects is None else len(set(ds.subjects.tolist())),
        "sequences": None if ds.sequences is None else len(set(ds.sequences.tolist())),
        "leakage": leak,
        "bad": {
            "count": len(ds.skipped),
            "items": [{"source": b.source, "problem": b.problem} for b in ds.skipped[:MAX_BAD_LISTED]],
        },
    }
    if ds.subjects is not None:
        out["leakage"]["note"] = "subject ids present: split by subject (see fer_edge.data.splits)"
    extra = {k: v for k, v in ds.info.items() if k not in ("kind",)}
    if extra:
        out["reader"] = extra
    return out


def dataset_info(path: str | Path, kind: str | None = None, skip_bad: bool = False,
                 near_dups: bool = False, **opts) -> dict:
    t0 = time.perf_counter()
    ds = load_dataset(path, kind=kind, skip_bad=skip_bad, **opts)
    load_s = time.perf_counter() - t0
    info = describe(ds, near_dups=near_dups)
    info["load_seconds"] = round(load_s, 3)
    return info


def prepare(path: str | Path, out: str | Path, kind: str | None = None, skip_bad: bool = False,
            overwrite: bool = False, **opts) -> dict:
    """Read a dataset and cache it as ``out`` (.npz + .json sidecar); returns a summary."""
    out = Path(out)
    if out.suffix != ".npz":
        raise DataError(f"{out}: cache file must end in .npz")
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; choose another output or pass --overwrite")
    t0 = time.perf_counter()
    ds = load_dataset(path, kind=kind, skip_bad=skip_bad, **opts)
    load_s = time.perf_counter() - t0
    npz = save_npz(ds, out)
    return {
        "out": str(npz),
        "name": ds.name,
        "kind": ds.info.get("kind", ds.name),
        "samples": len(ds),
        "image_shape": list(ds.images.shape[1:]),
        "counts": ds.counts(),
        "bytes": npz.stat().st_size,
        "skipped": len(ds.skipped),
        "load_seconds": round(load_s, 3),
    }


def prepare_shards(path: str | Path, out: str | Path, kind: str | None = None, skip_bad: bool = False,
                   overwrite: bool = False, shard_size: int = 4096, seed: int = 0, labels: str | None = None,
                   progress=None, **opts) -> dict:
    """Detect/crop/resize every face once into a sharded cache folder ``out`` (``shards.py``).

    Image folders, RAF-DB and AffectNet stream one face at a time (memory stays flat);
    other kinds are read whole first. Faces are stored in a seeded random order."""
    from ..labels import label_set
    from .loader import listing_for
    from .shards import dataset_faces, shuffled, write_shards

    out = Path(out)
    if out.suffix == ".npz":
        raise DataError(f"{out}: a shard cache is a folder; drop the .npz suffix (or leave out --shards)")
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; choose another output or pass --overwrite")
    t0 = time.perf_counter()
    listing = listing_for(path, kind, skip_bad, **opts)
    if listing is not None:
        if labels is not None:
            names = label_set(labels)
            listing.items = [it for it in listing.items if it.label in names]
            listing.label_names = names
            listing.info["labels"] = labels
        listing.items = shuffled(listing.items, seed)
        meta = write_shards(listing.faces(skip_bad), out, name=listing.name, root=listing.root,
                            label_names=listing.label_names, roles=listing.roles,
                            info=_cache_info(listing.info, seed), skipped=listing.skipped, shard_size=shard_size, overwrite=overwrite, progress=progress)
    else:
        ds = load_dataset(path, kind=kind, skip_bad=skip_bad, labels=labels, **opts)
        meta = write_shards(dataset_faces(ds, seed), out, name=ds.name, root=ds.root, label_names=ds.label_names,
                            roles=ds.roles, info=_cache_info(ds.info, seed), skipped=ds.skipped,
                            shard_size=shard_size, overwrite=overwrite, progress=progress)
    return {
        "out": str(out), "name": meta["name"], "kind": meta["info"].get("kind", meta["name"]),
        "samples": meta["num_samples"], "image_shape": meta["image_shape"], "counts": meta["counts"],
        "shards": len(meta["shards"]), "bytes": sum(f.stat().st_size for f in out.iterdir()),
        "skipped": len(meta["skipped"]), "load_seconds": round(time.perf_counter() - t0, 3),
    }


def _cache_info(info: dict, seed: int) -> dict:
    """Reader facts plus the storage-order seed and the face framing of what is cached (a model
    trained from the cache crops live faces as its source was cropped)."""
    from dataclasses import asdict

    from ..face.framing import dataset_framing

    return {**info, "order_seed": seed, "face": asdict(dataset_framing(info.get("kind", ""), info))}


def format_info(info: dict) -> str:
    """Human-readable table of ``dataset_info``."""
    lines = [
        f"{info['path']}",
        f"  kind: {info['kind']}   samples: {info['samples']}   image: {'x'.join(map(str, info['image_shape']))} uint8"
        f"   loaded in {info.get('load_seconds', 0):.1f} s",
    ]
    if info["roles"]:
        lines.append("  roles: " + ", ".join(f"{k}={v}" for k, v in info["roles"].items()))
    if info["subjects"] is not None:
        seq = f", {info['sequences']} sequences" if info.get("sequences") else ""
        lines.append(f"  subjects: {info['subjects']}{seq}")
    labels = info["label_names"]
    width = max(8, *(len(s) for s in info["counts"]))
    lines.append("  " + "split".ljust(width) + "".join(f"{n[:8]:>9}" for n in labels) + f"{'total':>9}")
    for split, counts in info["counts"].items():
        lines.append("  " + split.ljust(width) + "".join(f"{counts[n]:>9}" for n in labels)
                     + f"{sum(counts.values()):>9}")
    leak = info["leakage"]
    ex = leak["exact"]
    lines.append(
        f"  exact duplicates: {ex['groups']} groups ({ex['rows']} rows), {ex['cross_split_groups']} span splits, "
        f"{ex['conflicting_label_groups']} with conflicting labels"
    )
    if ex["cross_split_pairs"]:
        lines.append("    across splits: " + ", ".join(f"{k} {v}" for k, v in ex["cross_split_pairs"].items()))
    if "near" in leak:
        nr = leak["near"]
        lines.append(
            f"  near duplicates (dHash <= {nr['max_hamming_distance']} bits): {nr['groups']} groups ({nr['rows']} rows), "
            f"{nr['cross_split_groups']} span splits, {nr['conflicting_label_groups']} with conflicting labels"
        )
    lines.append(f"  near-blank images: {leak['near_blank']['rows']}")
    if leak.get("note"):
        lines.append(f"  note: {leak['note']}")
    reader = info.get("reader")
    if reader:
        lines.append("  reader: " + ", ".join(f"{k}={v}" for k, v in reader.items()))
    bad = info["bad"]
    lines.append(f"  bad/skipped files: {bad['count']}")
    for item in bad["items"]:
        lines.append(f"    {item['source']}: {item['problem']}")
    if bad["count"] > len(bad["items"]):
        lines.append(f"    ... and {bad['count'] - len(bad['items'])} more (--json lists the first {MAX_BAD_LISTED})")
    return "\n".join(lines)
